"""Command line: parse options, call the library, pick the output. Nothing heavy at import."""

from __future__ import annotations

import os
import sys

import click

from mathsolve import __version__
from mathsolve.cli.admin import convert_cmd, doctor, models, pull
from mathsolve.cli.evaluation import eval_command, grade
from mathsolve.cli.mcp_server import mcp_command
from mathsolve.config import (
    DEFAULT_CTX,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MIN_P,
    DEFAULT_MODEL,
    DEFAULT_QUANT,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_K,
    DEFAULT_TOP_P,
    KV_TYPES,
    QUANT_CHOICES,
    SAMPLERS,
)
from mathsolve.errors import ExitStatus, MathsolveError

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


def model_options(func):  # noqa: ANN001,ANN201 - click decorator
    func = click.option("--concurrency", type=click.IntRange(1, 256), default=None,
                        help="With --server: requests in flight [default: the K samples of a "
                             "problem; eval: 8 problems].")(func)
    func = click.option("--api-key", envvar=["MATHSOLVE_API_KEY", "OPENAI_API_KEY"],
                        metavar="KEY", show_envvar=False,
                        help="With --server: bearer token [env MATHSOLVE_API_KEY or "
                             "OPENAI_API_KEY]; never printed or recorded.")(func)
    func = click.option("--server", envvar="MATHSOLVE_SERVER", metavar="URL",
                        help="Use an OpenAI-compatible server (vLLM, llama.cpp server) at URL "
                             "instead of the local engine [env MATHSOLVE_SERVER].")(func)
    func = click.option("--offline", is_flag=True,
                        help="Never touch the network (also HF_HUB_OFFLINE=1).")(func)
    func = click.option("--quant", type=click.Choice(QUANT_CHOICES), default=DEFAULT_QUANT,
                        show_default=True, help="Quantisation of a cached model.")(func)
    func = click.option("-m", "--model", envvar="MATHSOLVE_MODEL", metavar="MODEL",
                        help="A cached model name, a Hugging Face repo id or a .gguf path "
                             f"[env MATHSOLVE_MODEL; default {DEFAULT_MODEL}].")(func)
    return func


def sampling_options(func):  # noqa: ANN001,ANN201 - click decorator
    """Sampling and engine options shared by solve and eval."""
    for option in reversed(_SAMPLING_OPTIONS):
        func = option(func)
    return func


_SAMPLING_OPTIONS = [
    click.option("--card", is_flag=True,
                 help="The model card's protocol: --samples 32 --temperature 1.0 --top-p 1 --top-k 0 "
                      "(one of those given with another value is a usage error)."),
    click.option("--temperature", type=click.FloatRange(0, 5), default=DEFAULT_TEMPERATURE,
                 show_default=True, help="0 is greedy (not advised for Qwen3); the card used 1.0."),
    click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=DEFAULT_TOP_P,
                 show_default=True),
    click.option("--top-k", type=click.IntRange(0), default=DEFAULT_TOP_K, show_default=True,
                 help="0 disables top-k."),
    click.option("--min-p", type=click.FloatRange(0, 1), default=DEFAULT_MIN_P,
                 show_default=True),
    click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=None,
                 help="Seed of sample 1 (sample i uses seed+i-1); default: random, recorded."),
    click.option("--max-tokens", type=click.IntRange(1), default=DEFAULT_MAX_TOKENS,
                 show_default=True, help="Generated tokens per sample (capped by the context)."),
    click.option("--ctx", type=click.IntRange(256), default=DEFAULT_CTX, show_default=True,
                 help="Context length per sample (prompt + generation); 8192 = training length."),
    click.option("-k", "--samples", type=click.IntRange(1, 64), default=1, show_default=True,
                 help="Draw K samples per problem and vote on the answer."),
    click.option("--stop-when-decided", is_flag=True,
                 help="With --samples: stop the remaining samples once the leading answer "
                      "has more votes than the runner-up could still reach."),
    click.option("--confidence", type=click.FloatRange(0.5, 1, min_open=True, max_open=True),
                 default=None, metavar="P",
                 help="With --samples: stop the remaining samples once the vote's confidence "
                      "(the Beta posterior that the leading answer is the majority) reaches P, "
                      "e.g. 0.95."),
    click.option("--thinking-budget", type=click.IntRange(0), default=None, metavar="N",
                 help="Tokens a sample may reason before it is steered to an answer (the cue "
                      "closes </think> and opens \\boxed{, then 64 tokens more); 0 answers at once."),
    click.option("--time-limit", type=click.FloatRange(0, min_open=True), default=None,
                 metavar="SECONDS",
                 help="Wall-clock seconds per problem; then its samples are steered to an answer "
                      "as with --thinking-budget."),
    click.option("--no-think", is_flag=True, help="Render the prompt with enable_thinking=False."),
    click.option("--threads", type=click.IntRange(1), default=None,
                 help="CPU threads [default: physical cores]."),
    click.option("--cpu", is_flag=True, help="Do not offload to a GPU."),
    click.option("--parallel", type=click.IntRange(1, 256), default=None,
                 help="Sequences decoded at once (problems x samples) [default: sized from "
                      "free memory and --ctx]."),
    click.option("--kv-type", type=click.Choice(KV_TYPES), default="f16", show_default=True,
                 help="Type of the KV cache: q8_0 takes about half the memory of f16 (with flash "
                      "attention)."),
    click.option("--kv-budget", type=click.FloatRange(0, min_open=True), default=None, metavar="GB",
                 help="Memory the KV cache may take; samples share one pool when they cannot all "
                      "have --ctx cells [default: one whole sample + 1024 tokens per other sample, "
                      "within half the free RAM or the GPU's free memory]."),
    click.option("--sampler", type=click.Choice(SAMPLERS),
                 default="auto", show_default=True,
                 help="Where tokens are drawn: inside llama.cpp's graph (auto on a GPU), "
                      "vectorised on the CPU (auto on a CPU), or llama.cpp's chain per sample."),
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
def solve(**opts) -> ExitStatus:  # noqa: ANN003 - click passes every option
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
