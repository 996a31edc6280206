"""--thinking-budget and --time-limit: a sample at its budget is steered to a boxed answer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import run_mathsolve

from mathsolve.config import ANSWER_ALLOWANCE, BUDGET_ANSWER_CUE, BUDGET_THINK_CUE, EngineConfig, SamplingConfig
from mathsolve.engine.local.engine import Engine
from mathsolve.engine.protocol import BudgetHit
from mathsolve.solving.loading import ModelInfo

LONG = "Tell me a very long story about a dragon, with many chapters."
SAMPLING = dict(temperature=1.0, top_k=0, top_p=1.0)


@pytest.fixture(scope="module")
def smol_engine(smollm2_gguf: Path):
    with Engine.load(EngineConfig(model_path=str(smollm2_gguf), n_ctx=1024, n_threads=2)) as engine:
        yield engine


def within_bound(engine: Engine, completion, budget: int, in_think: bool) -> None:
    """The sample was steered at `budget` tokens, the cue follows, the answer fits its allowance."""
    cue = engine.cue_tokens(in_think, budget == 0)
    assert completion.budget == BudgetHit("thinking_budget", budget, in_think)
    assert completion.completion_tokens <= budget + len(cue) + ANSWER_ALLOWANCE
    drawn = [t for t in completion.tokens if not engine.is_stop(t)]
    assert drawn[budget:budget + len(cue)] == cue  # the cue, token for token, right at the budget
    assert "\\boxed{" in completion.text


@pytest.mark.parametrize("budget", [0, 7, 40], ids=["zero-answers-at-once", "short", "longer"])
def test_a_budget_ends_every_sample_in_a_box_within_the_bound(smol_engine, budget):
    prompt = smol_engine.render(LONG)
    samplings = [SamplingConfig(**SAMPLING, seed=11 + i, max_tokens=600, thinking_budget=budget)
                 for i in range(3)]
    for c in smol_engine.generate_many(prompt, samplings):
        within_bound(smol_engine, c, budget, in_think=False)
        if budget == 0:
            assert c.text.startswith(BUDGET_ANSWER_CUE)


def test_inside_an_open_think_block_the_cue_closes_it_with_qwens_sentence(smol_engine):
    prompt = smol_engine.render(LONG) + "<think>\n"
    sampling = SamplingConfig(**SAMPLING, seed=3, max_tokens=600, thinking_budget=12)
    (c,) = smol_engine.generate_many(prompt, [sampling])
    within_bound(smol_engine, c, 12, in_think=True)
    assert BUDGET_THINK_CUE + BUDGET_ANSWER_CUE in c.text


def test_without_a_budget_nothing_is_steered(smol_engine):
    prompt = smol_engine.render(LONG)
    (c,) = smol_engine.generate_many(prompt, [SamplingConfig(**SAMPLING, seed=3, max_tokens=60)])
    assert c.budget is None
    assert BUDGET_ANSWER_CUE not in c.text


def test_a_time_limit_steers_the_running_samples(smol_engine):
    prompt = smol_engine.render(LONG)
    # 2 s: far less than 800 tokens take (~9 s here), far more than the prompt's prefill even on
    # a loaded machine (with 0.2 s a descheduled prefill left the second sample unstarted)
    samplings = [SamplingConfig(**SAMPLING, seed=5 + i, max_tokens=800, time_limit=2.0)
                 for i in range(2)]
    start = time.perf_counter()
    out = smol_engine.generate_many(prompt, samplings)
    assert time.perf_counter() - start < 30
    for c in out:
        assert c.budget is not None and c.budget.hit == "time_limit"
        assert c.budget.at is not None and c.budget.at < 800
        cue = smol_engine.cue_tokens(False, c.budget.at == 0)
        assert c.completion_tokens <= c.budget.at + len(cue) + ANSWER_ALLOWANCE
        assert "\\boxed{" in c.text


def test_the_cue_never_splits_a_character():
    from mathsolve.engine.local.samples import incomplete_utf8

    euro = "€".encode()
    assert incomplete_utf8(euro[:1]) and incomplete_utf8(euro[:2]) and not incomplete_utf8(euro)
    assert not incomplete_utf8(b"abc") and not incomplete_utf8(b"")
    assert incomplete_utf8(b"x" + "𝄞".encode()[:3]) and not incomplete_utf8("𝄞".encode())


# ---- the CLI, eval and the API --------------------------------------------------------------

mathsolve = run_mathsolve


def test_solve_json_records_where_the_budget_was_hit(smollm2_gguf):
    proc = mathsolve("--json", "--model", str(smollm2_gguf), "--threads", "2", "--seed", "2",
                     "--samples", "3", "--thinking-budget", "16", LONG)
    assert proc.returncode in (0, 3), proc.stderr.decode()
    record = json.loads(proc.stdout)
    assert record["sampling"]["thinking_budget"] == 16
    for sample in record["samples"]:
        assert sample["budget"] == {"hit": "thinking_budget", "at": 16, "in_think": False}
        assert sample["completion_tokens"] <= 16 + 20 + ANSWER_ALLOWANCE
    assert record["budget"] == {"hit": "thinking_budget", "at": 16, "in_think": False}


def test_without_a_budget_the_record_says_none_was_hit(smollm2_gguf):
    proc = mathsolve("--json", "--model", str(smollm2_gguf), "--threads", "2", "--seed", "2",
                     "--max-tokens", "8", "Compute 6*7.")
    record = json.loads(proc.stdout)
    assert record["budget"] is None and record["sampling"]["thinking_budget"] is None


def test_the_panel_says_the_budget_was_hit_in_words(smollm2_gguf):
    from io import StringIO

    from mathsolve.output.render import TerminalRenderer
    from mathsolve.solving.inputs import Problem
    from mathsolve.solving.solve import SolveOptions, solve

    with Engine.load(EngineConfig(model_path=str(smollm2_gguf), n_ctx=1024, n_threads=2)) as engine:
        out = StringIO()
        renderer = TerminalRenderer(out=out, err=out)
        result = solve(engine, Problem("1", LONG), SamplingConfig(seed=1, thinking_budget=10),
                       SolveOptions(check=False), ModelInfo(str(smollm2_gguf), "file"))
        renderer.end(result)
    assert "budget: reached the thinking budget after 10 tokens; steered to an answer" in out.getvalue()


def test_eval_reports_the_share_of_samples_that_hit_the_budget(smollm2_gguf, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "problem": f"What is {i} + {i}?",
                                        "answer": str(2 * i)}) + "\n" for i in range(1, 3)))
    out = tmp_path / "out.jsonl"
    proc = mathsolve("eval", str(data), "-o", str(out), "--model", str(smollm2_gguf), "--threads", "2",
                     "--seed", "1", "--samples", "2", "--thinking-budget", "0", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    summary = json.loads(proc.stdout)
    assert summary["budget_hit"] == 1.0
    assert summary["samples_per_problem"] == 2.0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["budget_hits"] == 2 for r in rows)


def test_the_api_takes_a_budget_and_records_it(smollm2_gguf):
    from mathsolve import Solver

    with Solver(str(smollm2_gguf), thinking_budget=5, seed=4, threads=2, ctx=1024) as solver:
        result = solver.solve(LONG)
    assert result.budget == BudgetHit("thinking_budget", 5, False)
    assert result.to_json()["budget"] == {"hit": "thinking_budget", "at": 5, "in_think": False}
    assert result.sampling.thinking_budget == 5
    assert result.completion is not None and BUDGET_ANSWER_CUE in result.completion


@pytest.mark.parametrize(("args", "message"), [
    (["--thinking-budget", "-1"], "--thinking-budget"),
    (["--confidence", "1.5"], "--confidence"),
    (["--confidence", "0.5"], "--confidence"),
    (["--time-limit", "0"], "--time-limit"),
    (["--thinking-budget", "9000"], "thinking budget 9000 leaves no room"),
    (["--ctx", "512", "--thinking-budget", "500"], "context of 512 tokens"),
], ids=["negative-budget", "confidence-above-1", "confidence-one-half", "zero-time-limit",
        "budget-beyond-the-context", "budget-beyond-a-small-context"])
def test_bad_budget_values_get_one_line_and_exit_2(smollm2_gguf, args, message):
    proc = mathsolve("--model", str(smollm2_gguf), *args, "1+1")
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and proc.stdout == b""


def test_api_bad_budget_values_are_usage_errors():
    from mathsolve import Solver
    from mathsolve.errors import UsageError

    for kwargs in ({"thinking_budget": -1}, {"confidence": 1.0}, {"time_limit": 0.0},
                   {"thinking_budget": 8190}):
        with pytest.raises(UsageError):
            Solver("no-such-model.gguf", **kwargs)


def test_samples_not_started_by_the_time_limit_are_skipped(smollm2_gguf):
    with Engine.load(EngineConfig(model_path=str(smollm2_gguf), n_ctx=1024, n_threads=2,
                                  parallel=1)) as engine:  # one slot: the samples run one by one
        prompt = engine.render(LONG)
        samplings = [SamplingConfig(**SAMPLING, seed=5 + i, max_tokens=800, time_limit=0.05)
                     for i in range(3)]
        out = engine.generate_many(prompt, samplings)
    assert out[0].budget and out[0].budget.hit == "time_limit" and "\\boxed{" in out[0].text
    assert [c.finish_reason for c in out[1:]] == ["cancelled", "cancelled"]
    assert all(c.completion_tokens == 0 for c in out[1:])
