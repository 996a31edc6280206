"""`eval` and `grade` end to end: the pipeline on the tiny Qwen3, resume after SIGKILL, summary."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_mathsolve

from mathsolve.evaluation.evaluate import finished_ids, read_records, summarise

EVAL_ARGS = ["--samples", "2", "--max-tokens", "24", "--seed", "3", "--threads", "2"]


mathsolve = run_mathsolve


@pytest.fixture()
def five_problems(tmp_path: Path, shared_data_dir: Path) -> Path:
    """Three MATH-500 rows (subjects in their ids) and two GSM8K rows, real data."""
    math_rows = [json.loads(l) for l in (shared_data_dir / "math500_test.jsonl").open()][:3]
    gsm_rows = [json.loads(l) for l in (shared_data_dir / "gsm8k_test.jsonl").open()][:2]
    path = tmp_path / "five.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in math_rows + gsm_rows))
    return path


def test_eval_pipeline_writes_one_record_per_problem_and_a_summary(tiny_qwen3_gguf, five_problems, tmp_path):
    out = tmp_path / "results.jsonl"
    proc = mathsolve("eval", str(five_problems), "--out", str(out), "--model", str(tiny_qwen3_gguf),
                     *EVAL_ARGS)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    data_ids = [json.loads(l)["id"] for l in five_problems.read_text().splitlines()]
    assert [r["id"] for r in rows] == data_ids
    for r in rows:
        assert r["n"] == 2 and len(r["samples"]) == 2
        assert r["c"] == sum(1 for s in r["samples"] if s["correct"] is True)
        assert [s["seed"] for s in r["samples"]] == [r["sampling"]["seed"], r["sampling"]["seed"] + 1]
    summary = proc.stdout.decode()
    for text in ("accuracy (pass@1", "pass@2", "maj@2", "no answer", "per problem"):
        assert text in summary
    assert "precalculus" in summary or "algebra" in summary  # the per-subject table


def test_eval_resume_skips_finished_problems_without_loading_the_model(tiny_qwen3_gguf, five_problems, tmp_path):
    out = tmp_path / "results.jsonl"
    first = mathsolve("eval", str(five_problems), "--out", str(out), "--model", str(tiny_qwen3_gguf),
                      "--limit", "2", *EVAL_ARGS)
    assert first.returncode == 0
    assert len(out.read_text().splitlines()) == 2
    # A model path that does not exist proves nothing is loaded when nothing is left to do.
    again = mathsolve("eval", str(five_problems), "--out", str(out), "--model", "/nonexistent.gguf",
                      "--limit", "2", *EVAL_ARGS)
    assert again.returncode == 0, again.stderr.decode()
    assert "resuming: 2 of 2" in again.stderr.decode()
    assert len(out.read_text().splitlines()) == 2


def whole_lines(path: Path) -> int:
    """Records in a results file that a kill cannot have torn: the newline-ended lines."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_for_more_records(path: Path, than: int, proc: subprocess.Popen, timeout: float) -> None:
    """Until the file holds more than `than` whole records, or the run has ended."""
    deadline = time.monotonic() + timeout
    while whole_lines(path) <= than and proc.poll() is None:
        assert time.monotonic() < deadline, f"no new record in {timeout} s"
        time.sleep(0.01)  # a poll of the file, not a guess at how long the run takes


def test_eval_killed_repeatedly_resumes_to_exactly_the_same_set(tiny_qwen3_gguf, five_problems, tmp_path):
    out = tmp_path / "results.jsonl"
    args = [sys.executable, "-m", "mathsolve", "eval", str(five_problems), "--out", str(out),
            "--model", str(tiny_qwen3_gguf), *EVAL_ARGS, "--max-tokens", "96",
            "--parallel", "4"]  # two problems in flight: records come in pairs, waves apart
    data_ids = [json.loads(l)["id"] for l in five_problems.read_text().splitlines()]
    killed_mid_eval = 0
    for _ in range(4):  # SIGKILL several times, each run just after it has appended a record
        before = whole_lines(out)
        if before == len(data_ids):
            break  # all done: nothing left to kill
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_more_records(out, before, proc, timeout=300)
        proc.send_signal(signal.SIGKILL)
        killed = proc.wait(timeout=30) == -signal.SIGKILL
        kept = [json.loads(line)["id"] for line in out.read_bytes().split(b"\n")[:-1]]
        assert len(kept) > before  # the records written before the kill are all there, whole
        assert len(kept) == len(set(kept)) and set(kept) <= set(data_ids)
        killed_mid_eval += killed and len(kept) < len(data_ids)
        with open(out, "ab") as fh:  # a kill mid-write leaves a torn line: simulate the worst
            fh.write(b'{"id": "torn')
    assert killed_mid_eval >= 1  # at least one run was killed with problems still to do
    final = subprocess.run(args, capture_output=True, timeout=600)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    lines = out.read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]  # every line parses: none truncated
    assert sorted(ids) == sorted(data_ids)  # no duplicates, nothing missing
    assert finished_ids(out) == set(data_ids)


EVAL_KEYS = ["id", "problem", "reference", "answer", "correct", "n", "c", "no_answer",
             "budget_hits", "samples", "votes", "confidence", "completion_tokens",
             "prompt_tokens", "seconds", "sampling", "model", "error"]


def test_an_eval_record_is_the_json_of_its_typed_parts_and_resumes(smollm2_gguf, tmp_path):
    """The typed EvalRecord writes the line eval always wrote (keys in that order, each
    sample's graded form after solving's sample), and a resume reads it back."""
    from mathsolve import Solver
    from mathsolve.evaluation.evaluate import eval_record
    from mathsolve.output.records import eval_record_json
    from mathsolve.solving.inputs import Problem

    with Solver(model=str(smollm2_gguf), samples=2, max_tokens=24, threads=2, seed=7,
                thinking_budget=5) as solver:
        result = solver.solve(Problem("a", "What is 2+2?", reference="4"))
    record = eval_record(result, 2, 2.0, True, result.texts)
    data = eval_record_json(record)
    solved = result.to_json()
    assert list(data) == EVAL_KEYS
    assert data["samples"] == [{**s, "correct": g.correct, "completion": text} for s, g, text
                               in zip(solved["samples"], record.samples, result.texts)]
    assert [list(s)[-2:] for s in data["samples"]] == [["correct", "completion"]] * 2
    assert {k: data[k] for k in ("votes", "confidence", "sampling", "model")} == \
        {k: solved[k] for k in ("votes", "confidence", "sampling", "model")}
    assert data["n"] == 2 and data["c"] == sum(1 for s in data["samples"] if s["correct"] is True)
    assert data["budget_hits"] == 2 and data["correct"] is (result.answer == "4")
    plain = eval_record_json(eval_record(result, 2, 2.0, False, result.texts))
    assert all("completion" not in s for s in plain["samples"])  # only with --save-completions
    out = tmp_path / "results.jsonl"
    out.write_text(json.dumps(data, ensure_ascii=False) + "\n")
    assert finished_ids(out) == {"a"} and read_records(out) == [data]


def test_eval_rows_without_an_answer_are_rejected_up_front(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "1", "problem": "1+1", "answer": "2"}\n{"id": "2", "problem": "2+2"}\n')
    proc = mathsolve("eval", str(data), "--out", str(tmp_path / "o.jsonl"), "--model", "/x.gguf")
    assert proc.returncode == 1
    assert "row 2 has no 'answer'" in proc.stderr.decode()
    assert not (tmp_path / "o.jsonl").exists()


def test_summary_matches_hand_computed_pass_at_k_and_majority():
    # Problem a: 2 of 4 right; b: 0 of 4; c: 4 of 4. pass@2 for a = 1 - C(2,2)/C(4,2) = 5/6.
    rows = [
        {"id": "test/algebra/1.json", "n": 4, "c": 2, "correct": True, "no_answer": 1,
         "completion_tokens": 100, "seconds": 1.0},
        {"id": "test/geometry/2.json", "n": 4, "c": 0, "correct": False, "no_answer": 0,
         "completion_tokens": 200, "seconds": 2.0},
        {"id": "test/algebra/3.json", "n": 4, "c": 4, "correct": True, "no_answer": 0,
         "completion_tokens": 300, "seconds": 3.0},
    ]
    s = summarise(rows)
    assert s.accuracy == pytest.approx((0.5 + 0 + 1) / 3)
    assert s.pass_at[2] == pytest.approx((5 / 6 + 0 + 1) / 3)
    assert s.pass_at[4] == pytest.approx((1 + 0 + 1) / 3)
    assert s.maj == pytest.approx(2 / 3)
    assert s.no_answer == pytest.approx(1 / 12)
    assert s.subjects == {"algebra": (2, pytest.approx(0.75)), "geometry": (1, 0.0)}


def test_grade_writes_verdicts_and_accuracy(tmp_path):
    rows = [
        {"id": "a", "completion": "so the answer is \\boxed{\\frac{1}{2}}", "reference": "0.5"},
        {"id": "b", "completion": "#### 1,000", "reference": "1000"},
        {"id": "c", "completion": "\\boxed{-2}", "reference": "2"},
        {"id": "d", "completion": "I do not know", "reference": "7"},
    ]
    src = tmp_path / "g.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    proc = mathsolve("grade", str(src))
    out = [json.loads(l) for l in proc.stdout.decode().splitlines()]
    assert [(o["id"], o["extracted"], o["correct"]) for o in out[:4]] == [
        ("a", "\\frac{1}{2}", True), ("b", "1,000", True), ("c", "-2", False), ("d", None, False)]
    assert "not valid JSON" in out[4]["error"]
    assert "accuracy: 2/4 = 50.00%" in proc.stderr.decode()
    assert proc.returncode == 1  # a bad row is an error; the good rows are all graded


def test_grade_empty_file_is_a_one_line_error(tmp_path):
    src = tmp_path / "empty.jsonl"
    src.write_text("")
    proc = mathsolve("grade", str(src))
    assert proc.returncode == 1
    assert proc.stderr.decode().strip().count("\n") == 0 and "empty" in proc.stderr.decode()


def test_results_with_line_separators_inside_strings_read_back_whole(tmp_path):
    from mathsolve.evaluation.evaluate import ResultsFile, read_records

    out = tmp_path / "r.jsonl"
    results = ResultsFile(out)
    weird = "a\u2028b\u0085c\x0cd"  # str.splitlines would cut a JSON line at each of these
    results.append({"id": "1", "problem": weird, "error": None})
    results.append({"id": "2", "problem": "plain", "error": None})
    results.close()
    assert [r["problem"] for r in read_records(out)] == [weird, "plain"]
    assert finished_ids(out) == {"1", "2"}
