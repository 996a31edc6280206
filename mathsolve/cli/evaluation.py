"""Command line: `mathsolve eval` and `mathsolve grade`. Registered by cli/__init__.py; light."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mathsolve.cli.admin import note
from mathsolve.config import CHECK_TIMEOUT_S, EVAL_SEED_STRIDE, seed_for
from mathsolve.errors import ExitStatus, InputError, UsageError

if TYPE_CHECKING:  # imported where they run: `mathsolve --help` stays light
    from mathsolve.api import Solver
    from mathsolve.cli.options import EvalRequest
    from mathsolve.config import SamplingConfig, Settings
    from mathsolve.evaluation.evaluate import ResultsFile
    from mathsolve.solving.inputs import Problem
    from mathsolve.solving.solve import Result


def eval_command(decorate: Callable[[Callable[..., Any]], Callable[..., Any]]) -> click.Command:
    """The eval command, with cli/__init__.py's model and sampling options (`decorate`) added."""
    @click.command("eval")
    @click.argument("data", required=False, metavar="DATA")
    @click.option("-o", "--out", type=click.Path(dir_okay=False),
                  help="Results file (JSON lines), required unless --list. Rerunning with the same file resumes.")
    @click.option("--list", "list_benchmarks", is_flag=True,
                  help="List the benchmark names DATA may be (rows, pinned source, cached or not).")
    @click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N rows.")
    @click.option("--save-completions", is_flag=True, help="Keep every sample's full text.")
    @click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
    @decorate
    def eval_cmd(**opts: Any) -> ExitStatus:
        """Measure accuracy on DATA: a benchmark name or a JSON lines file.

        \b
        A name (gsm8k, math500, aime24, aime25, amc23, minerva, olympiadbench;
        see --list) is a file of a Hugging Face dataset pinned to a commit:
        downloaded once into the HF cache, then read offline (--offline or
        HF_HUB_OFFLINE=1 never touch the network). A file has `problem` and
        `answer` per line, optional `id`; a file of that name wins over a name.

        \b
        Prints accuracy (mean over samples = pass@1), unbiased pass@k for k = 1, 2,
        4, ... K, maj@K, the share of samples with no answer, tokens and time per
        problem, and a per-subject table for MATH ids (test/algebra/...). The card's
        protocol: --card (--samples 32 --temperature 1.0 --top-p 1 --top-k 0).
        """
        from mathsolve.cli.options import EvalRequest, settings_from

        if opts["list_benchmarks"]:
            from mathsolve.evaluation.benchmarks import listing

            click.echo(listing())
            return ExitStatus.OK
        if not opts["data"]:
            raise UsageError("give DATA: a benchmark name (see `mathsolve eval --list`) or a JSON lines file")
        if not opts["out"]:
            raise UsageError("Missing option '-o' / '--out': the results file (rerunning with it resumes)")
        return _run_eval(EvalRequest.from_options(opts), settings_from(opts, check=False))

    return eval_cmd


def eval_problems(data: str, offline: bool) -> list[Problem]:
    """DATA's problems: a file that exists wins, else a benchmark name, else a one-line error."""
    from mathsolve.evaluation import benchmarks
    from mathsolve.solving.inputs import parse_problems, read_source

    path = Path(data)
    if path.is_dir():
        raise InputError(f"{data} is a directory: give a JSON lines file or a benchmark name")
    if path.is_file():
        return parse_problems(read_source(data), where=data)
    bench = benchmarks.BENCHMARKS.get(data)
    if bench is None:
        raise benchmarks.unknown_name(data)
    problems = benchmarks.load_problems(bench, offline=offline, note=note)
    note(f"{bench.name}: {len(problems)} problems from {bench.source}")
    return problems


def _run_eval(request: EvalRequest, settings: Settings) -> ExitStatus:
    import json

    from mathsolve.api import Solver
    from mathsolve.cli.run import can_pull
    from mathsolve.engine.protocol import GenerationInterrupted
    from mathsolve.evaluation import evaluate
    from mathsolve.output.progress import live_stages
    from mathsolve.output.records import summary_json

    problems = eval_problems(request.data, settings.model.offline)
    missing = [p.id for p in problems if p.reference is None and not p.error]
    if missing:
        raise InputError(f"{request.data}: row {missing[0]} has no 'answer' to grade against")
    out_path = Path(request.out)
    finished, retried = evaluate.prepare_resume(out_path)
    todo = evaluate.pending(problems, finished, request.limit)
    total = min(len(problems), request.limit or len(problems))
    if len(todo) < total:
        note(f"resuming: {total - len(todo)} of {total} problems already in {out_path}")
    if retried:
        note(f"retrying {retried} problem(s) that errored in {out_path}")
    out = evaluate.ResultsFile(out_path)
    try:
        if todo:
            with live_stages() as stages:
                solver = Solver.from_settings(settings, note=note, pull=can_pull(), stages=stages)
            with solver:
                positions = {p.id: i for i, p in enumerate(problems)}
                _eval_loop(solver, todo, out, request, positions, total)
    except GenerationInterrupted:
        note(f"interrupted: finished problems are in {out_path}; rerun to resume")
        raise
    finally:
        out.close()
    summary = evaluate.summarise(evaluate.read_records(out_path))
    if request.as_json:
        click.echo(json.dumps(summary_json(summary)))
    else:
        click.echo(evaluate.format_summary(summary, settings.solve.samples))
    return ExitStatus.ERROR if summary.errors else ExitStatus.OK


def _eval_loop(solver: Solver, todo: list[Problem], out: ResultsFile, request: EvalRequest,
               positions: dict[str, int], total: int) -> None:
    """Each problem's seeds depend on its position in DATA, so a resumed run samples alike.

    The local engine keeps several problems' samples in one batch (problems in flight); a
    server engine gets several problems at once from threads. Each record is appended as its
    problem finishes.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from mathsolve.evaluation import evaluate
    from mathsolve.output.records import eval_record_json

    sampling, options = solver.settings.sampling, solver.settings.solve

    def seeded(problem: Problem) -> SamplingConfig:
        return sampling.with_seed(seed_for(sampling.seed, problem=positions[problem.id],
                                           per_problem=EVAL_SEED_STRIDE))

    correct, scored = 0.0, 0
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True),
                  transient=False) as bar:
        task = bar.add_task("eval", total=total, completed=total - len(todo))

        def finished(_index: int, result: Result) -> None:
            nonlocal correct, scored
            rec = evaluate.eval_record(result, options.samples, options.check_timeout,
                                       request.save_completions, result.texts)
            out.append(eval_record_json(rec))
            if not rec.error and rec.n:
                correct += rec.c / rec.n
                scored += 1
            acc = correct / scored if scored else 0.0
            bar.update(task, advance=1, description=f"eval · accuracy {acc:.1%}")

        solver.solve_all(todo, finished, seeding=seeded)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="Write graded JSON lines here instead of stdout.")
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=CHECK_TIMEOUT_S, show_default=True,
              help="Hard time limit per comparison, in seconds.")
def grade(file: str, out: str | None, timeout: float) -> ExitStatus:
    """Grade completions of any model: FILE rows have `completion` and `reference`.

    A reference may be an answer or a whole solution: one holding \\boxed{} (MATH's
    `solution`) is graded against its final box, one with a `#### X` line (GSM8K's
    `answer`) against X. A row may say how it ended in `finish_reason` ("stop", "length").

    Thinking is not an answer: text before the last </think>, or after a <think> that never
    closes, is not read. The completion's answer is its last \\boxed{}, or a "final answer
    is X" line after it (the Minerva format); without a box, "final answer is X", "#### X",
    "Answer: X" or "The answer is X", only when it is the final statement (more reasoning
    after it, "But wait, ...", means it was not). A text that ends inside an unclosed box, or
    a row that ended by "length" without a closed box, has no answer.

    Writes JSON lines with `id`, `extracted`, `fallback` (true when not from a box),
    `reference_used` (the reference answer compared with), `correct` (true, false, or null
    when not comparable) and prints the accuracy on stderr.
    """
    import json

    from mathsolve.evaluation import evaluate
    from mathsolve.solving.inputs import json_rows, read_source, split_lines

    text = read_source(file)
    if not text.strip():
        raise InputError(f"{file} is empty: nothing to grade")
    sink = open(out, "w", encoding="utf-8") if out else sys.stdout
    right = wrong = unknown = errors = 0
    try:
        for row in evaluate.grade_rows(json_rows(split_lines(text)), timeout):
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            sink.flush()
            if row.get("error"):
                errors += 1
                note(f"{row['id']}: {row['error']}")
            elif row["correct"] is True:
                right += 1
            elif row["correct"] is None:
                unknown += 1
            else:
                wrong += 1
    finally:
        if out:
            sink.close()
    graded = right + wrong + unknown
    share = right / graded if graded else 0.0
    note(f"accuracy: {right}/{graded} = {share:.2%} ({unknown} not comparable, {errors} bad rows)")
    return ExitStatus.ERROR if errors else ExitStatus.OK
