"""Model flow: `pull`, download (hub) -> our converter -> llama.cpp's quantiser -> the cache."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from mathsolve.errors import ModelError, PullError
from mathsolve.models.cache import (
    GB,
    PARTIAL_PREFIX,
    Phase,
    Progress,
    ResolvedModel,
    Stages,
    _check_quant,
    _gguf_path,
    _load_cached,
    _manifest_path,
    _model_lock,
    _pull_cmd,
    _stat_record,
    _write_json_atomic,
    cache_root,
    repo_to_name,
    sha256_file,
)
from mathsolve.models.hub import SOURCE_MARKER, offline_from_env
from mathsolve.models.hub import download as _download  # the process boundary tests replace

_DIRECT = ("bf16", "q8_0")  # written by the converter without an intermediate file


def _free_bytes(path: Path) -> int:
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def _check_disk(where: Path, need: int, what: str) -> None:
    have = _free_bytes(where)
    if need > have:
        raise PullError(
            f"not enough disk space in {where} for {what}: need {need / GB:.1f} GB, "
            f"have {have / GB:.1f} GB; free some space or set MATHSOLVE_HOME elsewhere"
        )


def conversion_need(source_bytes: int, quant: str) -> int:
    """Peak bytes written while converting: output, plus the bf16 intermediate of k-quants
    (the up-front disk check of `pull`, before anything is downloaded)."""
    from mathsolve_convert import SIZE_RATIO  # output size relative to bf16 source weights

    need = int(source_bytes * SIZE_RATIO[quant])
    return need if quant in _DIRECT else need + source_bytes


def _clean_partials(mdir: Path) -> list[Path]:
    """Leftovers of a killed pull: `.partial-*` files, and GGUFs that never got a manifest."""
    gone = list(mdir.glob("." + "*" + PARTIAL_PREFIX.lstrip(".") + "*"))  # also the converter's
    gone += [p for p in mdir.glob("*.gguf") if not _manifest_path(mdir, p.stem).exists()]
    for path in gone:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return gone


def _clean_stale_downloads(dest: Path) -> list[Path]:
    """huggingface-hub >= 2 downloads each file to a process-unique `*.incomplete` file, so a
    killed pull's partial file is never resumed: finished files are kept (the next pull skips
    them), the partial one restarts. Remove the orphans (up to a shard, ~4 GB) under our lock."""
    gone = list((dest / ".cache" / "huggingface" / "download").glob("**/*.incomplete"))
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def plain_stages(progress: Progress) -> Stages:
    """The converter's (stage, done, total) as a line per phase and per 10 % (piped output)."""
    shown: dict[Phase, int] = {}

    def report(stage: Phase, done: int, total: int) -> None:
        step = done * 10 // total if total else 0
        if stage == "sha256" or shown.get(stage) == step:
            return
        shown[stage] = step
        if stage != "quantize":
            progress(f"{stage}: {step * 10}%")
        elif step == 0:  # the count of tensors comes from llama.cpp's log, once it started
            progress("quantising with llama.cpp (minutes for a 4B model; Ctrl-C stops it)")
        else:
            progress("quantised" if step == 10 else f"quantize: {step * 10}%")

    return report


def _convert(src: Path, out: Path, quant: str, stages: Stages | None) -> None:
    import mathsolve_convert

    try:
        mathsolve_convert.convert(src, out, outtype=quant, force=True, progress=stages)
    except mathsolve_convert.ConversionError as exc:
        raise PullError(f"converting {src} to {quant} failed: {exc}") from exc
    except OSError as exc:
        hint = "; free some disk space" if exc.errno == 28 else ""
        raise PullError(f"writing {out.parent} failed: {exc.strerror or exc}{hint}") from exc


def _bytes_of(stages: Stages | None, stage: Phase, total: int) -> Callable[[int], None] | None:
    """An `on_bytes(n)` callback that reports `stage` to `stages` as (done so far, total)."""
    if stages is None:
        return None
    done = 0

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        stages(stage, done, total)

    stages(stage, 0, total)
    return on_bytes


def pull(
    repo: str,
    quant: str,
    *,
    revision: str | None = None,
    force: bool = False,
    keep_source: bool = False,
    offline: bool = False,
    progress: Progress | None = None,
    stages: Stages | None = None,
) -> ResolvedModel:
    """Download, convert and quantise `repo` into the cache; a finished model is reused.

    `progress` gets one-line notes; the conversion's phases go to `stages` (a live display),
    else to `progress` as a line per phase and per 10 %."""
    _check_quant(quant)
    name = repo_to_name(repo)
    offline = offline or offline_from_env()
    say = progress or (lambda _msg: None)
    root = cache_root()
    mdir, dest = root / "models" / name, root / "downloads" / name
    mdir.mkdir(parents=True, exist_ok=True)
    with _model_lock(root, name, _pull_cmd(repo, quant)):
        for left in _clean_partials(mdir) + _clean_stale_downloads(dest):
            say(f"removed {left.name} left by an interrupted pull")
        if not force:
            try:
                found = _load_cached(mdir, repo, quant, verify=False, locked=True)
            except ModelError:
                found = None  # damaged: pull again over it
            # _load_cached always reads a manifest (only a model given as a file has none)
            cached = cast("dict[str, Any]", found.manifest) if found is not None else {}
            if found is not None and revision in (
                None,
                cached["revision"],
                cached.get("requested_revision"),
            ):
                say(f"{repo} ({quant}) is already in the cache; --force pulls it again")
                return found

        def before_fetch(to_fetch: int, weights: int) -> None:
            need = to_fetch + conversion_need(weights, quant)
            say(
                f"{repo} ({quant}) needs about {need / GB:.1f} GB free at peak: "
                f"{to_fetch / GB:.1f} GB to download, then conversion; "
                f"have {_free_bytes(root) / GB:.1f} GB"
            )
            _check_disk(root, need, f"pulling {repo} ({quant})")

        if not offline:
            say(f"downloading {repo} into {dest}")
        src, sha = _download(repo, revision, dest, offline, before_fetch=before_fetch)
        ours = src.resolve() == dest.resolve()
        if ours:
            mark = {"repo": repo, "revision": sha, "requested_revision": revision}
            _write_json_atomic(dest / SOURCE_MARKER, mark)
        shown = stages or (plain_stages(progress) if progress is not None else None)
        final = _finish(src, mdir, repo, sha, revision, quant, say, shown)
        if ours and not keep_source:
            shutil.rmtree(dest, ignore_errors=True)
            say(f"removed the downloaded checkpoint {dest} (--keep-source keeps it)")
        return final


def _finish(
    src: Path, mdir: Path, repo: str, sha: str, revision: str | None, quant: str, say: Progress,
    stages: Stages | None,
) -> ResolvedModel:
    """Convert to a `.partial-` file, hash it, rename it into place, then write the manifest."""
    import mathsolve_convert

    tmp = mdir / f"{PARTIAL_PREFIX}{quant}-{os.getpid()}.gguf"
    gguf, mpath = _gguf_path(mdir, quant), _manifest_path(mdir, quant)
    say(f"converting {repo} to {quant} GGUF")
    try:
        _convert(src, tmp, quant, stages)
        size = tmp.stat().st_size
        digest = sha256_file(tmp, _bytes_of(stages, "sha256", size))
        manifest: dict[str, Any] = {
            "repo": repo,
            "revision": sha,
            "requested_revision": revision,
            "quant": quant,
            "size": size,
            "sha256": digest,
            "converter_version": str(getattr(mathsolve_convert, "CONVERTER_VERSION", "unknown")),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        mpath.unlink(missing_ok=True)  # the old GGUF stops counting as finished first
        os.replace(tmp, gguf)
        manifest["stat"] = _stat_record(gguf.stat())  # after the rename, which sets ctime
        _write_json_atomic(mpath, manifest)
    finally:
        tmp.unlink(missing_ok=True)
    say(f"wrote {gguf} ({size / GB:.2f} GB, sha256 {digest[:12]}...)")
    return ResolvedModel(gguf, repo, mdir.name, quant, manifest)
