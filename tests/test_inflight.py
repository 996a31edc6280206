"""Problems in flight: several problems' samples in one batch give each problem what it gets
alone, keep --parallel sequences, and lose nothing to Ctrl-C or a kill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from mathsolve.config import EngineConfig, SamplingConfig
from mathsolve.engine.local.engine import Engine, Job
from mathsolve.output.records import result_json
from mathsolve.solving.inputs import Problem
from mathsolve.solving.loading import ModelInfo
from mathsolve.solving.solve import SolveOptions, solve, solve_many

PROBLEMS = ["What is 2+3?", "Write a long story about a dragon.", "Name three prime numbers.",
            "What is the capital of France? Answer in one word.", "Count from one to ten."]
MODELS = {"smollm2": "smollm2_gguf", "tiny-qwen3": "tiny_qwen3_gguf"}
MODEL = ModelInfo("model.gguf", "file")  # what the records say was loaded


@pytest.fixture(scope="module", params=list(MODELS), ids=list(MODELS))
def engine(request):
    e = Engine.load(EngineConfig(str(request.getfixturevalue(MODELS[request.param])), n_ctx=512,
                                 gpu=False))
    yield e
    e.close()


def _comparable(result) -> dict:
    data = result_json(result)
    del data["seconds"]
    return data


@pytest.mark.parametrize("parallel", [4, 15], ids=["slots-freed-and-reused", "all-at-once"])
def test_each_problem_in_flight_gets_what_it_gets_alone(engine, parallel):
    problems = [Problem(str(i), text) for i, text in enumerate(PROBLEMS)]
    options = SolveOptions(samples=3, check=False)
    seeding = {p.id: SamplingConfig(temperature=1.0, top_k=40, top_p=0.95, seed=70 + 10 * i,
                                    max_tokens=8 + 9 * i) for i, p in enumerate(problems)}
    together: dict[int, object] = {}
    solve_many(engine, problems, lambda p: seeding[p.id], options, MODEL,
               lambda i, r: together.__setitem__(i, r), parallel=parallel)
    alone = [solve(engine, p, seeding[p.id], options, MODEL) for p in problems]
    assert sorted(together) == list(range(len(problems)))
    for i, one in enumerate(alone):
        assert _comparable(together[i]) == _comparable(one)
        assert together[i].texts == one.texts  # every sample's text, not only the vote's
    assert len(engine.kv_sequence_lengths()) == parallel


def test_jobs_finish_in_the_order_they_end_and_report_each_once(engine):
    prompt = engine.tokenize(engine.render("Tell me a story."))
    long_job = Job(prompt, [SamplingConfig(temperature=0.0, max_tokens=30)] * 2, tag="long")
    short_job = Job(prompt, [SamplingConfig(temperature=0.0, max_tokens=3)] * 2, tag="short")
    order: list[str] = []
    engine.run([long_job, short_job], lambda job: order.append(job.tag), parallel=4)
    assert order == ["short", "long"]
    assert [c.completion_tokens for c in short_job.completions()] == [3, 3]


def test_eval_ctrl_c_keeps_finished_records_and_a_rerun_completes_them(smollm2_gguf, tmp_path):
    data = tmp_path / "d.jsonl"
    rows = [{"id": f"q{i}", "problem": PROBLEMS[i % len(PROBLEMS)] + f" (case {i})", "answer": "5"}
            for i in range(8)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    args = [sys.executable, "-m", "mathsolve", "eval", str(data), "--out", str(out), "--model",
            str(smollm2_gguf), "--samples", "2", "--parallel", "4", "--max-tokens", "150",
            "--temperature", "1.0", "--seed", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # The event to wait for: the first record is in the file (a poll of it, with a deadline).
    deadline = time.monotonic() + 300
    while not (out.exists() and out.read_text().count("\n") >= 1):
        assert time.monotonic() < deadline and proc.poll() is None, "no record was written"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    assert out.read_bytes().endswith(b"\n")  # not cut off mid-record
    kept = [json.loads(line) for line in out.read_text().splitlines()]  # whole records only
    assert 1 <= len(kept) < len(rows)
    by_id = {r["id"]: r for r in rows}
    assert len({r["id"] for r in kept}) == len(kept) and {r["id"] for r in kept} <= by_id.keys()
    for record in kept:  # each a finished problem's full record
        assert record["problem"] == by_id[record["id"]]["problem"] and record["reference"] == "5"
        assert record["error"] is None and record["n"] == 2 and len(record["samples"]) == 2
        assert all(s["finish_reason"] in ("stop", "length") for s in record["samples"])
    again = subprocess.run(args, capture_output=True, timeout=600)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    final = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(final) == sorted(r["id"] for r in rows)  # each problem exactly once
    assert f"resuming: {len(kept)} of {len(rows)}" in again.stderr.decode()
