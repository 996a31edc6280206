"""Command line: pull, models, doctor and convert. Registered by cli/__init__.py; light."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from mathsolve.config import DEFAULT_MODEL, DEFAULT_QUANT, QUANT_CHOICES
from mathsolve.errors import ExitStatus, UsageError

if TYPE_CHECKING:
    from types import TracebackType

    from rich.progress import Progress

# mathsolve_convert.OUTTYPES, spelled out: importing the converter would slow every --help
# (tests/test_cli_basics.py checks the two agree).
CONVERT_OUTTYPES = ("bf16", "f16", "q8_0", "q4_k_m", "q5_k_m", "q6_k")


def note(message: str) -> None:
    """One diagnostic line on stderr."""
    print(f"mathsolve: {message}", file=sys.stderr, flush=True)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


@click.command()
@click.argument("model", required=False)
@click.option("--quant", type=click.Choice(QUANT_CHOICES), default=DEFAULT_QUANT, show_default=True)
@click.option("--revision", help="Branch, tag or commit sha to download (recorded as a sha).")
@click.option("--force", is_flag=True, help="Convert again even if the model is cached.")
@click.option("--keep-source", is_flag=True,
              help="Keep the downloaded safetensors (a later re-quantisation needs no download).")
@click.option("--offline", is_flag=True, help="Use only files already downloaded.")
def pull(model: str | None, quant: str, revision: str | None, force: bool, keep_source: bool,
         offline: bool) -> ExitStatus:
    """Download MODEL (a Hugging Face repo id), convert it to GGUF and quantise it.

    \b
    Default MODEL: jaygala24/Qwen3-4B-RLOO-math-reasoning. Needs about 19 GB of free
    disk at the peak for q4_k_m (8 GB download + 8 GB bf16 GGUF + the result); only the
    result (about 2.5 GB) stays. An interrupted pull resumes with the files already
    downloaded. Prints the path of the GGUF.
    """
    from mathsolve.models.pull import pull as pull_model
    from mathsolve.output.progress import live_stages

    repo = model or DEFAULT_MODEL
    with live_stages() as stages:  # a terminal: a live display per phase; else 10 % lines
        resolved = pull_model(repo, quant, revision=revision, force=force,
                                  keep_source=keep_source, offline=offline, progress=note,
                                  stages=stages)
    click.echo(str(resolved.path))
    return ExitStatus.OK


@click.group(invoke_without_command=True)
@click.pass_context
def models(ctx: click.Context) -> ExitStatus:
    """List cached models; `models rm` removes one, `models verify` hashes them."""
    if ctx.invoked_subcommand is not None:
        return ExitStatus.OK
    from mathsolve.models import cache

    found = cache.list_models()
    if not found:
        note(f"no cached models in {cache.cache_root()}; run `mathsolve pull`")
        return ExitStatus.OK
    rows = [(m.name, m.quant, _size(m.size), str(m.path)) for m in found]
    widths = [max(len(r[i]) for r in rows + [("name", "quant", "size", "path")]) for i in range(3)]
    click.echo(f"{'name':<{widths[0]}}  {'quant':<{widths[1]}}  {'size':>{widths[2]}}  path")
    for name, quant, size, path in rows:
        click.echo(f"{name:<{widths[0]}}  {quant:<{widths[1]}}  {size:>{widths[2]}}  {path}")
    return ExitStatus.OK


@models.command("rm")
@click.argument("model")
@click.option("--quant", type=click.Choice(QUANT_CHOICES), default=None,
              help="Remove only this quantisation [default: all of MODEL].")
def models_rm(model: str, quant: str | None) -> ExitStatus:
    """Remove a cached MODEL (name or repo id)."""
    from mathsolve.models import cache

    for path in cache.remove(model, quant):
        note(f"removed {path}")
    return ExitStatus.OK


@models.command("verify")
@click.argument("model", required=False)
@click.option("--quant", type=click.Choice(QUANT_CHOICES), default=None,
              help="Verify only this quantisation [default: all of MODEL].")
def models_verify(model: str | None, quant: str | None) -> ExitStatus:
    """Hash every cached GGUF (or MODEL's) against its manifest's sha256.

    \b
    MODEL is a cached name or repo id. Loading a cached model hashes it only when its
    size, mtime, ctime, inode or device differ from the manifest's record; this always
    hashes. Prints an `ok` line per match on stdout and one error line per mismatch on
    stderr; exit code 1 if any file does not match.
    """
    from mathsolve.models import cache

    with _HashProgress() as progress:
        checked = cache.verify(model, quant, on_start=progress.start)
    if not checked:
        note(f"no cached models in {cache.cache_root()}; run `mathsolve pull`")
    for item in checked:
        if item.error is None:
            click.echo(f"ok  {item.name}  {item.quant}  {item.path}")
        else:
            print(f"mathsolve: error: {item.error}", file=sys.stderr, flush=True)
    return ExitStatus.ERROR if any(item.error for item in checked) else ExitStatus.OK


class _HashProgress:
    """A rich bar on a colour terminal; plain lines on stderr when piped or NO_COLOR is set."""

    def __init__(self) -> None:
        import os

        self._rich = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        self._bar: Progress | None = None

    def __enter__(self) -> _HashProgress:
        if self._rich:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True),
                                 transient=True)
            self._bar.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)

    def start(self, name: str, quant: str, size: int) -> Callable[[int], None]:
        """The callback that is told each chunk's bytes as the hash of one file goes on."""
        bar = self._bar
        if bar is not None:
            task = bar.add_task(f"sha256 {name} {quant}", total=size)
            return lambda n: bar.advance(task, n)
        note(f"hashing {name} {quant} ({_size(size)})")
        shown = {"done": 0, "quarter": 0}

        def plain(n: int) -> None:
            shown["done"] += n
            quarter = shown["done"] * 4 // max(size, 1)
            if quarter > shown["quarter"] and quarter < 4:
                shown["quarter"] = quarter
                note(f"hashing {name} {quant}: {quarter * 25}%")

        return plain


@click.command()
def doctor() -> ExitStatus:
    """Show the llama.cpp build, GPU offload, threads, cache and cached models."""
    from mathsolve.cli import diagnostics as checks

    info = checks.collect()
    for key, value in info.items():
        if isinstance(value, (list, tuple)):
            click.echo(f"{key}:" + ("" if value else " (none)"))
            for item in value:
                click.echo(f"  {item}")
        elif key != "reinstall":
            click.echo(f"{key}: {value}")
    if info.get("reinstall"):
        click.echo("\nThis llama.cpp build is CPU-only but a GPU is present. Reinstall with:")
        click.echo(f"  {info['reinstall']}")
    return ExitStatus.OK


@click.command("convert")
@click.argument("hf_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="The GGUF file to write.")
@click.option("--outtype", type=click.Choice(CONVERT_OUTTYPES),
              default="bf16", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def convert_cmd(hf_dir: str, out: str, outtype: str, force: bool) -> ExitStatus:
    """Convert a Hugging Face Qwen3/Qwen2 checkpoint directory HF_DIR to GGUF."""
    from mathsolve.errors import MathsolveError
    from mathsolve.output.progress import live_stages
    from mathsolve_convert import ConversionError, convert

    def lines(stage: str, done: int, total: int) -> None:  # piped or NO_COLOR
        if total and (done == total or done % max(1, total // 10) == 0):
            note(f"{stage}: {done}/{total}")

    try:
        with live_stages() as stages:
            path = convert(hf_dir, out, outtype, force=force, progress=stages or lines)
    except ConversionError as exc:
        raise MathsolveError(str(exc)) from exc
    except FileExistsError as exc:
        raise UsageError(str(exc)) from exc
    click.echo(str(path))
    return ExitStatus.OK
