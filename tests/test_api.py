"""The Python API (`from mathsolve import Solver`) on the real small models: the same results as
the CLI, results as problems finish, streamed events, early stops that leave the solver usable,
clear errors, the server backend, and the examples of README and docs/python.md run as written."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fakeserver import ANSWER, FakeServer

import mathsolve
from mathsolve import (
    GenerationInterrupted,
    InputError,
    ModelError,
    Result,
    Solver,
    TextEvent,
    UsageError,
    extract_answer,
    grade,
)
from mathsolve.solving.loading import ModelInfo

REPO = Path(__file__).resolve().parent.parent
FAST = {"max_tokens": 24, "threads": 2, "seed": 7}


def cli_json(*args: str) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "mathsolve", "--json", *args],
                          capture_output=True, timeout=300)
    assert proc.returncode in (0, 3), proc.stderr.decode()
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "seconds"}


def solver_threads() -> list[str]:
    """The API's own threads (a background solve, a server batch's pool), joined on close."""
    return [t.name for t in threading.enumerate()
            if t.name.startswith(("mathsolve-solve", "mathsolve-problem"))]


def request_threads_end(seconds: float = 5.0) -> bool:
    """A server engine's request threads have all reported back when a call returns; they
    end a moment later."""
    deadline = time.monotonic() + seconds
    while any(t.name.startswith("mathsolve-server") for t in threading.enumerate()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def assert_usable(solver: Solver, problems: list[str]) -> None:
    """After a stop: every slot holds at most a prompt, the solver takes work again, and the
    engine decodes (a short generation: the solver's own runs are 3000 tokens long)."""
    from mathsolve.config import SamplingConfig

    engine = solver.engine
    longest = max(len(engine.prompt_tokens(engine.render(p))) for p in problems)
    assert all(n <= longest for n in engine.kv_sequence_lengths())
    assert [r.error is not None for r in solver.solve_many(["  "])] == [True]
    assert engine.generate(engine.render("4+4"), SamplingConfig(max_tokens=4)).completion_tokens


@pytest.fixture(scope="module")
def smol(smollm2_gguf: Path):
    with Solver(model=str(smollm2_gguf), **FAST) as solver:
        yield solver


# ---------------------------------------------------------------- solve


@pytest.mark.parametrize("samples", [1, 3], ids=["one-sample", "three-samples-vote"])
def test_solve_gives_the_cli_json_record_for_the_same_seed(smollm2_gguf, samples):
    problem = "Compute 6*7."
    (row,) = cli_json("--model", str(smollm2_gguf), "--max-tokens", "24", "--threads", "2",
                      "--seed", "7", "--samples", str(samples), problem)
    with Solver(model=str(smollm2_gguf), samples=samples, **FAST) as solver:
        result = solver.solve(problem)
    assert isinstance(result, Result)
    assert comparable(result.to_json()) == comparable(row)
    assert result.completion and result.completion_tokens > 0 and result.seconds > 0
    if samples > 1:  # every sample's answer and the vote, as in the CLI's record
        assert [s.seed for s in result.samples] == [7, 8, 9]
        assert len(result.texts) == 3


# A JSON record's keys, in the order mathsolve has always written them (issue 17); the
# optional ones (no reference, K = 1, no answer) are left out when None.
RECORD_KEYS = ["id", "problem", "answer", "completion", "finish_reason", "prompt_tokens",
               "completion_tokens", "seconds", "model", "sampling", "fallback", "check", "error",
               "reference", "correct", "support", "confidence", "budget", "samples", "votes"]
SAMPLE_KEYS = ["sample", "seed", "answer", "fallback", "completion_tokens", "finish_reason",
               "budget"]


def test_the_json_of_the_typed_parts_is_the_record_in_its_old_key_order(smollm2_gguf):
    """K = 2 with a thinking budget: model, sampling, check, budget, samples and votes are
    dataclasses in a Result; their JSON is the record the CLI prints, key for key, in order."""
    import dataclasses

    args = ("--max-tokens", "24", "--threads", "2", "--seed", "7", "--samples", "2",
            "--thinking-budget", "5")
    (row,) = cli_json("--model", str(smollm2_gguf), *args, "What is 2+2?")
    with Solver(model=str(smollm2_gguf), samples=2, thinking_budget=5, **FAST) as solver:
        result = solver.solve("What is 2+2?")
    data = result.to_json()
    assert list(data) == list(row) == [k for k in RECORD_KEYS if k in data]
    assert set(RECORD_KEYS) - set(data) <= {"reference", "correct", "support", "confidence"}
    assert comparable(data) == comparable(row) and json.loads(json.dumps(data)) == data
    assert data["model"] == {"path": str(smollm2_gguf), "source": "file", "quant": None}
    assert list(data["model"]) == ["path", "source", "quant"]
    assert list(data["sampling"]) == [f.name for f in dataclasses.fields(result.sampling)]
    assert data["sampling"] == dataclasses.asdict(result.sampling)
    assert result.samples is not None and result.votes is not None
    assert [list(s) for s in data["samples"]] == [SAMPLE_KEYS] * 2
    assert data["samples"] == [
        {"sample": s.sample, "seed": s.seed, "answer": s.answer, "fallback": s.fallback,
         "completion_tokens": s.completion_tokens, "finish_reason": s.finish_reason,
         "budget": s.budget and {"hit": s.budget.hit, "at": s.budget.at,
                                 "in_think": s.budget.in_think}}
        for s in result.samples]
    assert all(s["budget"] == {"hit": "thinking_budget", "at": 5, "in_think": False}
               for s in data["samples"])
    assert data["votes"] == [{"answer": g.answer, "count": g.count, "samples": list(g.samples)}
                             for g in result.votes]
    assert data["check"] == (result.check and {"status": result.check.status,
                                               "reason": result.check.reason})
    assert result.check is not None  # a 2+2 answer is checked (refuted or verified)


def test_a_seed_passed_to_solve_wins_and_is_recorded(smol):
    again = smol.solve("What is 2+3?", seed=11)
    assert again.sampling.seed == 11
    assert smol.solve("What is 2+3?", seed=11).completion == again.completion
    assert smol.solve("What is 2+3?").sampling.seed == 7  # the Solver's own seed


def test_ctrl_c_in_solve_raises_generation_interrupted_and_the_solver_goes_on(tiny_qwen3_gguf):
    seen: list[TextEvent] = []

    def on_event(event: TextEvent) -> None:  # where Ctrl-C lands: between two tokens
        seen.append(event)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with Solver(model=str(tiny_qwen3_gguf), max_tokens=3000, temperature=1.0, top_k=0,
                top_p=1.0, check=False, seed=3) as solver:
        with pytest.raises(GenerationInterrupted) as info:
            solver.solve("What is 2+2?", on_event=on_event)
        (partial,) = info.value.completions
        assert partial.finish_reason == "interrupted" and partial.completion_tokens < 10
        assert_usable(solver, ["What is 2+2?"])


def test_without_a_seed_a_solver_draws_one_and_records_it(smollm2_gguf):
    with Solver(model=str(smollm2_gguf), max_tokens=4, threads=2) as solver:
        seeds = {solver.solve("1+1").sampling.seed, solver.solve("2+2").sampling.seed}
    (seed,) = seeds
    assert isinstance(seed, int) and seed == solver.settings.sampling.seed


def test_notes_go_to_on_note_else_to_the_mathsolve_logger(smollm2_gguf, caplog):
    notes: list[str] = []
    with Solver(model=str(smollm2_gguf), verbose=True, on_note=notes.append):
        pass
    assert any(n.startswith("engine: CPU") or n.startswith("engine: GPU") for n in notes), notes
    with caplog.at_level("INFO", logger="mathsolve"), Solver(model=str(smollm2_gguf), verbose=True):
        pass
    assert any(r.name == "mathsolve" and r.getMessage().startswith("engine: ")
               for r in caplog.records)


def test_pull_true_pulls_a_repo_that_is_not_cached(tiny_qwen3_dir, tmp_path, monkeypatch):
    import shutil

    from mathsolve.models import cache as models
    from mathsolve.models import pull as pulling

    def fake_hub(repo, revision, dest, offline, *, before_fetch=None):  # the Hub: a local copy
        dest.mkdir(parents=True, exist_ok=True)
        for f in tiny_qwen3_dir.iterdir():
            shutil.copy2(f, dest / f.name)
        return dest, "0123456789abcdef0123456789abcdef01234567"

    monkeypatch.setenv("MATHSOLVE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(pulling, "_download", fake_hub)
    for kwargs in ({}, {"pull": True, "offline": True}):  # offline never pulls
        with pytest.raises(models.ModelNotCached, match="mathsolve pull tiny/qwen3"):
            Solver(model="tiny/qwen3", quant="q8_0", **kwargs)
    notes: list[str] = []
    with Solver(model="tiny/qwen3", quant="q8_0", pull=True, max_tokens=4, check=False,
                on_note=notes.append) as solver:
        assert solver.model_info == ModelInfo(str(tmp_path / "home/models/tiny--qwen3/q8_0.gguf"),
                                              "tiny/qwen3", quant="q8_0")
        assert solver.solve("1+1").completion_tokens > 0
    assert any("pulling it now" in n for n in notes) and any(n.startswith("wrote ") for n in notes)


def test_an_empty_problem_is_an_input_error(smol):
    with pytest.raises(InputError, match="empty"):
        smol.solve("   ")


def test_solver_keywords_are_the_solve_options_with_their_defaults(monkeypatch):
    import inspect

    from mathsolve.cli import solve as solve_command

    for var in ("MATHSOLVE_MODEL", "MATHSOLVE_SERVER", "MATHSOLVE_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    parsed = solve_command.make_context("solve", ["1+1"]).params  # every option at its default

    renamed = {"no_think": ("think", False), "no_check": ("check", False), "cpu": ("gpu", False)}
    # --card is a preset of four of these keywords (samples, temperature, top_p, top_k)
    cli_only = {"problem", "file", "blank_lines", "as_json", "hide_reasoning", "show_reasoning", "card"}
    keywords = inspect.signature(Solver).parameters
    for option, cli_default in parsed.items():
        if option in cli_only:
            continue
        name, negated = renamed.get(option, (option, None))
        default = (not cli_default) if negated is not None else cli_default
        assert name in keywords, option
        assert keywords[name].default == default, (name, keywords[name].default, default)


def test_with_a_server_the_api_key_defaults_to_the_environment(monkeypatch):
    monkeypatch.setenv("MATHSOLVE_API_KEY", "sk-from-env")
    with FakeServer("ok") as fake, Solver(server=fake.url, seed=1) as solver:
        assert solver.solve("What is 2+2?").answer == "4"
    assert fake.posts()[0]["headers"]["Authorization"] == "Bearer sk-from-env"


# ---------------------------------------------------------------- solve_many


def test_solve_many_yields_every_problem_once_with_what_solve_gives(smol):
    problems = ["What is 2+3?", "   ", "Solve x+1=3.", "What is 10/2?"]
    got = list(smol.solve_many(problems))
    assert sorted(r.id for r in got) == ["1", "2", "3", "4"]
    by_id = {r.id: r for r in got}
    assert "empty" in by_id["2"].error and by_id["2"].answer is None  # the batch went on
    assert len(smol.engine.kv_sequence_lengths()) >= 3  # the three decoded in one batch
    for pid in ("1", "3", "4"):
        alone = smol.solve(problems[int(pid) - 1])
        assert by_id[pid].error is None
        assert comparable(by_id[pid].to_json()) == comparable({**alone.to_json(), "id": pid})
    assert solver_threads() == []


def test_solve_many_closed_early_stops_the_batch_and_the_solver_goes_on(tiny_qwen3_gguf):
    long = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "check": False, "seed": 3}
    with Solver(model=str(tiny_qwen3_gguf), max_tokens=30, **long) as probe:
        start = time.monotonic()
        probe.solve("1+1")  # 30 tokens alone: the pace of this machine
        per_token = (time.monotonic() - start) / 30
    with Solver(model=str(tiny_qwen3_gguf), max_tokens=3000, **long) as solver:
        stream = solver.solve_many(["  ", "1+1", "2+2", "3+3"])
        first = next(stream)  # the empty problem's error, while the others are decoding
        assert first.id == "1" and first.error
        time.sleep(20 * per_token)
        start = time.monotonic()
        stream.close()
        took = time.monotonic() - start
        # The batch is 3000 tokens long; stopping waits for about one step of it.
        assert took < 100 * per_token + 0.5, (took, per_token)
        assert solver_threads() == []
        assert_usable(solver, ["1+1", "2+2", "3+3"])


# ---------------------------------------------------------------- stream


def test_stream_events_reassemble_each_samples_completion(tiny_qwen3_gguf):
    with Solver(model=str(tiny_qwen3_gguf), samples=2, max_tokens=40, seed=5, check=False) as s:
        items = list(s.stream("What is 2+2?"))
        alone = s.solve("What is 2+2?")
    *events, result = items
    assert isinstance(result, Result) and all(isinstance(e, TextEvent) for e in events)
    assert {e.kind for e in events} <= {"reasoning", "answer", "tag"}
    for sample in (0, 1):
        text = "".join(e.text for e in events if e.sample == sample)
        assert text == result.texts[sample] == alone.texts[sample]
    assert comparable(result.to_json()) == comparable(alone.to_json())


def test_stream_closed_early_returns_at_once_and_frees_nothing_in_use(tiny_qwen3_gguf):
    with Solver(model=str(tiny_qwen3_gguf), max_tokens=3000, temperature=1.0, top_k=0,
                top_p=1.0, check=False, seed=3) as solver:
        stream = solver.stream("What is 2+2?")
        stamps = []
        for _ in range(12):
            next(stream)
            stamps.append(time.monotonic())
        per_event = (stamps[-1] - stamps[1]) / 10
        start = time.monotonic()
        stream.close()
        took = time.monotonic() - start
        # A full run is 3000 tokens; stopping waits for about one of them.
        assert took < 100 * per_event + 0.5, (took, per_event)
        assert solver_threads() == []
        assert_usable(solver, ["What is 2+2?"])


_CTRL_C = r"""
import sys, threading
from mathsolve import Solver
with Solver(model=sys.argv[1], max_tokens=3000, temperature=1.0, top_k=0, top_p=1.0,
            check=False, seed=3) as solver:
    if sys.argv[2] == "stream":
        items = solver.stream("What is 2+2?")
    else:  # the empty problem's error comes first, while the others decode
        items = solver.solve_many(["  ", "What is 2+2?", "What is 3+3?"])
    try:
        for n, item in enumerate(items):
            if n == (5 if sys.argv[2] == "stream" else 0):
                print("ready", flush=True)
    except KeyboardInterrupt:
        alive = [t.name for t in threading.enumerate() if t.name.startswith("mathsolve-")]
        print("interrupted", alive, flush=True)
    print("after", [r.error is not None for r in solver.solve_many(["  "])], flush=True)
"""


@pytest.mark.parametrize("how", ["stream", "solve_many"])
def test_ctrl_c_while_reading_results_stops_the_work_and_the_solver_goes_on(tiny_qwen3_gguf,
                                                                          sigint_default, how):
    child = subprocess.Popen([sys.executable, "-c", _CTRL_C, str(tiny_qwen3_gguf), how],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=sigint_default)
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    assert out.splitlines() == ["interrupted []", "after [True]"], out + err


# ---------------------------------------------------------------- text, errors, closing


@pytest.mark.parametrize(("text", "answer"), [
    ("so the answer is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
    ("x is \\boxed{2} or \\boxed{-2}", "2, -2"),
    ("The final answer is 7", "7"),
    ("no answer here", None),
], ids=["box", "two-boxes", "final-answer-line", "none"])
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


def test_grade_compares_with_an_answer_or_a_whole_solution():
    assert grade("thus \\boxed{0.5}", "\\frac12").correct is True
    assert grade("thus \\boxed{3}", "so 2+2 is 4\n#### 4").correct is False
    verdict = grade("thus \\boxed{4}", "so 2+2 is 4\n#### 4")
    assert verdict.correct is True and verdict.reference == "4" and verdict.extracted == "4"
    assert verdict.fallback is False and grade("Answer: 4", "4").fallback is True
    assert grade("nothing", "4").correct is None


def test_the_context_manager_frees_the_model(smollm2_gguf):
    with Solver(model=str(smollm2_gguf), **FAST) as solver:
        engine = solver.engine
        assert engine._model is not None
    assert engine._model is None  # llama_model_free ran
    with pytest.raises(UsageError, match="closed"):
        solver.solve("1+1")
    solver.close()  # closing twice is harmless


@pytest.mark.parametrize(("model", "message"), [
    ("/nonexistent/model.gguf", "/nonexistent/model.gguf"),
    ("not-a-gguf", "is not a GGUF file"),
    ("owner/never-pulled", "mathsolve pull owner/never-pulled"),
], ids=["missing-path", "not-gguf", "not-cached-repo"])
def test_a_bad_model_raises_a_one_line_model_error(tmp_path, model, message):
    if model == "not-a-gguf":
        model = str(tmp_path / "junk.gguf")
        Path(model).write_bytes(b"not a model at all" * 10)
    with pytest.raises(ModelError) as info:
        Solver(model=model)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, mathsolve.MathsolveError)


@pytest.mark.parametrize("bad", [{"temperature": -1}, {"top_p": 0}, {"samples": 0},
                                 {"max_tokens": 0}, {"ctx": 16}, {"sampler": "fast"},
                                 {"quant": "q3"}, {"seed": -5}],
                         ids=lambda b: next(iter(b)))
def test_out_of_range_options_are_usage_errors_before_anything_loads(bad):
    with pytest.raises(UsageError) as info:
        Solver(model="/nonexistent/model.gguf", **bad)
    assert next(iter(bad)) in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------- a server as the engine


def test_a_server_through_the_api_solves_streams_and_batches():
    with FakeServer("ok", pace=0.01) as fake, Solver(server=fake.url, api_key="sk-test",
                                                     samples=2, seed=3) as solver:
        result = solver.solve("What is 2+2?")
        *events, last = list(solver.stream("What is 2+2?"))
        many = list(solver.solve_many(["What is 2+2?", "What is 1+3?", "What is 3+1?"]))
    assert result.answer == "4" and result.support == "2/2 samples"
    assert result.model == ModelInfo(None, fake.url, name="fake-model", server=True)
    assert result.to_json()["model"] == {"path": None, "source": fake.url, "name": "fake-model"}
    assert [s.seed for s in result.samples] == [3, 4]
    for sample in (0, 1):
        assert "".join(e.text for e in events if e.sample == sample) == last.texts[sample] == ANSWER
    assert sorted(r.id for r in many) == ["1", "2", "3"] and {r.answer for r in many} == {"4"}
    assert fake.max_in_flight > 2  # more than one problem's two samples at once
    assert all(p["headers"]["Authorization"] == "Bearer sk-test" for p in fake.posts())
    assert "sk-test" not in json.dumps(result.to_json()) + repr(solver) + repr(solver.settings)


def test_a_server_batch_closed_early_cancels_its_requests_and_the_solver_goes_on():
    with FakeServer("slow") as fake, Solver(server=fake.url, max_tokens=500, seed=1,
                                            concurrency=4) as solver:
        unread = solver.solve_many(["What is 2+2?"])
        unread.close()  # never started: nothing was sent
        assert fake.posts() == []
        for stream in (solver.solve_many(["  ", "p1", "p2", "p3"]), solver.stream("2+2")):
            next(stream)  # the empty problem's error / the first piece of text
            start = time.monotonic()
            stream.close()
            assert time.monotonic() - start < 10  # each slow stream would take 18 s
            assert solver_threads() == [] and request_threads_end()
        fake.mode, fake.pace = "ok", 0.0
        assert solver.solve("What is 2+2?").answer == "4"  # requests are accepted again


# ---------------------------------------------------------------- the examples in README and docs/


def python_example(page: str) -> str:
    text = (REPO / page).read_text("utf-8")
    found = re.search(r"```python\n(.*?)```", text, re.S)
    assert found, f"{page} has no python block"
    return found.group(1)


@pytest.mark.parametrize("page", ["README.md", "docs/python.md"])
def test_the_python_examples_run_as_written(smollm2_gguf, tmp_path, page):
    env = {**os.environ, "MATHSOLVE_MODEL": str(smollm2_gguf)}
    proc = subprocess.run([sys.executable, "-c", python_example(page)], capture_output=True,
                          text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("answer: ") and "support:" in lines[0]
    assert lines[-1] == "grade: True"
    assert sum(1 for line in lines if line.startswith("problem ")) == 3


@pytest.mark.parametrize("check, samples, started", [(True, 1, True), (False, 2, True), (False, 1, False)])
def test_the_checking_worker_starts_with_the_solver_not_in_the_first_record(tiny_qwen3_gguf, check,
                                                                          samples, started):
    """A fresh process: with a check (or a vote) the sympy worker is ready once the Solver is,
    and a solve uses that worker; K = 1 without a check starts none."""
    script = (
        "import json, sys\n"
        "from mathsolve import Solver\n"
        "from mathsolve.answers.limits import shared_worker\n"
        "from mathsolve.answers.verify import check\n"
        f"s = Solver(model=sys.argv[1], check={check}, samples={samples}, max_tokens=4, threads=2, seed=1)\n"
        "w = shared_worker()\n"
        "before = (w.pid, w._ready)\n"
        "s.solve('What is 1+1?')\n"
        "c = check('Solve x^2=4', '2', timeout=10) if before[0] else None\n"
        "print(json.dumps({'pid': before[0], 'ready': before[1], 'after': w.pid,\n"
        "                  'status': c.status if c else None}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tiny_qwen3_gguf)], capture_output=True,
                          timeout=300, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if started:
        assert got["pid"] is not None and got["ready"] is True
        assert got["after"] == got["pid"]  # the check ran in the worker started with the Solver
        assert got["status"] == "refuted"  # x = -2 is missed: the worker really checks
    else:
        assert got["pid"] is None
