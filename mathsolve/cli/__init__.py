"""Command line: parse options, call the library, pick the output. Nothing heavy at import."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from mathsolve import __version__
from mathsolve.cli.admin import convert_cmd, doctor, models, pull
from mathsolve.cli.evaluation import eval_command, grade
from mathsolve.cli.mcp_server import mcp_command
from mathsolve.config import DEFAULT_MODEL, OPTIONS
from mathsolve.errors import ExitStatus, MathsolveError

F = TypeVar("F", bound=Callable[..., Any])  # what a click decorator takes and gives back
EXIT_CODES_HELP = """\b
Exit codes:
  0    every problem answered
  1    error (model, file, engine); in a batch, a problem that errored
  2    usage: bad option, argument or value out of range
  3    at least one problem without a final answer (no box, or cut off)
  130  interrupted (Ctrl-C); results already printed stay printed
"""

class DefaultGroup(click.Group):
    """`mathsolve PROBLEM` means `mathsolve solve PROBLEM`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names
                        and args[0] not in ("--version",)):
            args = ["solve", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] PROBLEM... | COMMAND [ARGS]...")


@click.group(cls=DefaultGroup, epilog=EXIT_CODES_HELP,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="mathsolve")
def cli() -> None:
    """Solve math problems offline with Qwen3-4B-RLOO-math-reasoning on llama.cpp.

    \b
      mathsolve "solve x^2=4"             reason live, then the checked answer
      mathsolve -f problems.txt           one problem per line (or JSON lines)
      cat problems.jsonl | mathsolve --json
      mathsolve pull                      download and convert the model once
      mathsolve                           interactive: one problem per line

    Run `mathsolve solve --help` for every option of a solve.
    """


def table_option(name: str) -> Callable[[F], F]:
    """The click option of config.OPTIONS[name]: its flag, range or choices, default and help."""
    spec = OPTIONS[name]
    kind: click.ParamType[Any]
    if spec.choices:
        kind = click.Choice(spec.choices)
    elif spec.type is int:
        low, high = (None if b is None else int(b) for b in (spec.low, spec.high))
        kind = click.IntRange(low, high, min_open=spec.low_open, max_open=spec.high_open)
    else:
        kind = click.FloatRange(spec.low, spec.high, min_open=spec.low_open, max_open=spec.high_open)
    flags = (spec.short, spec.flag) if spec.short else (spec.flag,)
    return click.option(*flags, type=kind, default=spec.default, show_default=spec.show_default or None,
                        metavar=spec.metavar, help=spec.help)


def model_options(func: F) -> F:
    func = table_option("concurrency")(func)
    func = click.option("--api-key", envvar=["MATHSOLVE_API_KEY", "OPENAI_API_KEY"],
                        metavar="KEY", show_envvar=False,
                        help="With --server: bearer token [env MATHSOLVE_API_KEY or "
                             "OPENAI_API_KEY]; never printed or recorded.")(func)
    func = click.option("--server", envvar="MATHSOLVE_SERVER", metavar="URL",
                        help="Use an OpenAI-compatible server (vLLM, llama.cpp server) at URL "
                             "instead of the local engine [env MATHSOLVE_SERVER].")(func)
    func = click.option("--offline", is_flag=True,
                        help="Never touch the network (also HF_HUB_OFFLINE=1).")(func)
    func = table_option("quant")(func)
    func = click.option("-m", "--model", envvar="MATHSOLVE_MODEL", metavar="MODEL",
                        help="A cached model name, a Hugging Face repo id or a .gguf path "
                             f"[env MATHSOLVE_MODEL; default {DEFAULT_MODEL}].")(func)
    return func


def sampling_options(func: F) -> F:
    """Sampling and engine options shared by solve and eval."""
    for option in reversed(_SAMPLING_OPTIONS):
        func = option(func)
    return func


# The valued options come from config.OPTIONS (their ranges are api.validate's); the order
# here is the help's.
_SAMPLING_OPTIONS: list[Callable[[F], F]] = [
    click.option("--card", is_flag=True,
                 help="The model card's protocol: --samples 32 --temperature 1.0 --top-p 1 --top-k 0 "
                      "(one of those given with another value is a usage error)."),
    *map(table_option, ("temperature", "top_p", "top_k", "min_p", "seed", "max_tokens", "ctx", "samples")),
    click.option("--stop-when-decided", is_flag=True,
                 help="With --samples: stop the remaining samples once the leading answer "
                      "has more votes than the runner-up could still reach."),
    *map(table_option, ("confidence", "thinking_budget", "time_limit")),
    click.option("--no-think", is_flag=True, help="Render the prompt with enable_thinking=False."),
    table_option("threads"),
    click.option("--cpu", is_flag=True, help="Do not offload to a GPU."),
    *map(table_option, ("parallel", "kv_type", "kv_budget", "sampler")),
    click.option("-v", "--verbose", is_flag=True, help="Show llama.cpp's log and tracebacks."),
]


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("problem", nargs=-1)
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Read problems from FILE ('-' for stdin): one per line, or JSON lines "
                   "with a 'problem' (or 'question') field and optional 'id'.")
@click.option("--blank-lines", is_flag=True,
              help="Problems span several lines and are separated by blank lines.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per problem on stdout, flushed as each finishes.")
@model_options
@sampling_options
@click.option("--hide-reasoning", is_flag=True, help="Terminal: a spinner instead of the reasoning.")
@click.option("--show-reasoning", is_flag=True, help="Piped: reasoning to stderr.")
@click.option("--no-check", is_flag=True, help="Skip the sympy check of the answer.")
def solve(**opts: Any) -> ExitStatus:  # click passes every option
    """Solve PROBLEM (or problems from --file / stdin) and print the checked answer.

    \b
    On a terminal the reasoning streams live, then an answer panel. Piped, stdout
    carries one answer per line (empty when there is none, with a note on stderr).
    Sampling defaults are Qwen's for Qwen3 thinking mode; the model card sampled
    at --temperature 1.0 --top-p 1 --top-k 0, and --card adds its 32 samples.
    """
    from mathsolve.cli.options import SolveRequest, settings_from
    from mathsolve.cli.run import run_solve

    return run_solve(SolveRequest.from_options(opts), settings_from(opts))


def main(argv: list[str] | None = None) -> None:
    """Entry point: the only place exceptions become exit codes."""
    # llama.cpp's abort() would otherwise attach gdb to print a backtrace on the terminal;
    # set before llama_cpp is loaded (it reads this at load time and again on abort).
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")
    args = sys.argv[1:] if argv is None else argv
    debug = "--traceback" in args or "-v" in args or "--verbose" in args
    args = [a for a in args if a != "--traceback"]
    try:
        status = cli.main(args=args, prog_name="mathsolve", standalone_mode=False)
    except click.exceptions.Abort:
        status = ExitStatus.INTERRUPTED
    except KeyboardInterrupt:
        print("\nmathsolve: interrupted", file=sys.stderr)
        status = ExitStatus.INTERRUPTED
    except click.ClickException as exc:
        print(f"mathsolve: error: {exc.format_message()}", file=sys.stderr)
        status = exc.exit_code
    except MathsolveError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"mathsolve: error: {exc}", file=sys.stderr)
        status = exc.exit_status
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); nothing more to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = ExitStatus.ERROR
    sys.exit(int(status or 0))


for _command in (pull, models, doctor, convert_cmd, grade, eval_command(
        lambda f: model_options(sampling_options(f))), mcp_command(lambda f: model_options(sampling_options(f)))):
    cli.add_command(_command)
