"""`mathsolve` end to end on real small models: SmolLM2-135M-Instruct (real text) and a tiny
Qwen3 made by our converter (Qwen's template and stop tokens). Subprocesses, so stdout, stderr
and exit codes are exactly what a user or a script sees."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import pty_chunks, run_mathsolve

FAST = ["--max-tokens", "48", "--threads", "2", "--seed", "7"]
JSON_KEYS = {"id", "problem", "answer", "completion", "finish_reason", "prompt_tokens",
             "completion_tokens", "seconds", "model", "sampling", "check", "error"}
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def run(args: list[str], stdin: bytes = b"", env: dict | None = None, timeout: int = 300,
        unset: tuple[str, ...] = ()):
    """The CLI in a child with os.environ plus `env`, minus the variables in `unset`."""
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset}
    return run_mathsolve(*args, stdin=stdin, env=full_env, timeout=timeout)


def records(stdout: bytes) -> list[dict]:
    return [json.loads(line) for line in stdout.decode().splitlines()]


def expected_status(rows: list[dict]) -> int:
    if any(r["error"] for r in rows):
        return 1
    return 0 if all(r["answer"] is not None for r in rows) else 3


def test_json_record_schema_and_sampling_recorded(smollm2_gguf):
    proc = run(["--model", str(smollm2_gguf), "--json", *FAST, "--temperature", "0.7",
                "--top-k", "30", "What is 2+3?"])
    rows = records(proc.stdout)
    assert len(rows) == 1
    row = rows[0]
    assert JSON_KEYS <= row.keys()
    assert row["id"] == "1" and row["problem"] == "What is 2+3?"
    assert row["sampling"] == {"temperature": 0.7, "top_p": 0.95, "top_k": 30, "min_p": 0.0,
                               "seed": 7, "max_tokens": 48, "thinking_budget": None,
                               "time_limit": None}
    assert row["model"]["path"] == str(smollm2_gguf) and row["model"]["source"] == "file"
    assert row["finish_reason"] in ("stop", "length")
    assert 0 < row["completion_tokens"] <= 48 and row["prompt_tokens"] > 10
    assert row["completion"].strip()
    assert proc.returncode == expected_status(rows)


def test_same_seed_same_completion_and_seed_is_recorded_when_random(smollm2_gguf):
    first = records(run(["--model", str(smollm2_gguf), "--json", *FAST, "Compute 6*7."]).stdout)
    again = records(run(["--model", str(smollm2_gguf), "--json", *FAST, "Compute 6*7."]).stdout)
    assert first[0]["completion"] == again[0]["completion"]
    no_seed = [a for a in FAST if a not in ("--seed", "7")]
    rnd = records(run(["--model", str(smollm2_gguf), "--json", *no_seed, "Compute 6*7."]).stdout)
    assert isinstance(rnd[0]["sampling"]["seed"], int)


def test_piped_output_is_one_line_per_problem_in_order(smollm2_gguf, tmp_path):
    problems = tmp_path / "p.txt"
    problems.write_text("What is 2+3?\n\nSolve x+1=3.\nWhat is 10/2?\n")
    plain = run(["--model", str(smollm2_gguf), "-f", str(problems), *FAST])
    lines = plain.stdout.decode().split("\n")
    assert lines[-1] == "" and len(lines) == 4  # three results, each ending in a newline
    as_json = run(["--model", str(smollm2_gguf), "-f", str(problems), "--json", *FAST])
    rows = records(as_json.stdout)
    assert [r["id"] for r in rows] == ["1", "3", "4"]  # ids are line numbers
    assert [r["answer"] or "" for r in rows] == lines[:3]  # the same seeds give the same answers
    missing = sum(1 for r in rows if r["answer"] is None)
    assert plain.stderr.decode().count("no final answer") == missing
    assert plain.returncode == as_json.returncode == expected_status(rows)
    assert ANSI_COLOUR.search(plain.stdout.decode() + plain.stderr.decode()) is None


def test_stdin_jsonl_bad_record_errors_alone_and_batch_goes_on(smollm2_gguf):
    data = b'{"id": "a", "problem": "What is 1+1?"}\n{not json}\n{"question": "What is 2+2?"}\n'
    proc = run(["--model", str(smollm2_gguf), "--json", *FAST], stdin=data)
    rows = records(proc.stdout)
    assert [r["id"] for r in rows] == ["a", "2", "3"]
    assert rows[1]["error"].startswith("line 2 is not valid JSON")
    assert rows[0]["error"] is None and rows[2]["error"] is None and rows[2]["completion"]
    assert proc.returncode == 1


def test_blank_line_blocks_from_stdin_dash(smollm2_gguf):
    data = b"A farmer has 3 cows\nand buys 2 more.\nHow many cows?\n\nWhat is 5-1?\n"
    proc = run(["--model", str(smollm2_gguf), "-", "--blank-lines", "--json", *FAST], stdin=data)
    rows = records(proc.stdout)
    assert [r["problem"] for r in rows] == ["A farmer has 3 cows\nand buys 2 more.\nHow many cows?",
                                            "What is 5-1?"]


def test_show_reasoning_sends_the_text_to_stderr_only(smollm2_gguf):
    proc = run(["--model", str(smollm2_gguf), "--show-reasoning", *FAST, "What is 3+4?"])
    again = run(["--model", str(smollm2_gguf), "--json", *FAST, "What is 3+4?"])
    completion = records(again.stdout)[0]["completion"]
    assert completion[:30] in proc.stderr.decode()
    assert completion[:30] not in proc.stdout.decode()


def test_token_limit_is_finish_length_and_exit_3(smollm2_gguf):
    proc = run(["--model", str(smollm2_gguf), "--json", "--max-tokens", "1", "--seed", "1",
                "Explain in detail how to integrate x^2."])
    row = records(proc.stdout)[0]
    assert row["finish_reason"] == "length" and row["completion_tokens"] == 1
    assert row["answer"] is None
    assert proc.returncode == 3


def test_problem_longer_than_the_context_is_a_one_line_error(smollm2_gguf):
    long_problem = "What is " + " + ".join(["1"] * 400) + "?"
    proc = run(["--model", str(smollm2_gguf), "--ctx", "256", *FAST, long_problem])
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "context" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a gguf at all, just text\n", "not a GGUF"),
        (os.urandom(4096), "not a GGUF"),
        (None, "truncated"),
    ],
    ids=["text-file", "random-bytes", "truncated-gguf"],
)
def test_bad_model_files_are_one_line_errors(tmp_path, smollm2_gguf, content, message):
    bad = tmp_path / "bad.gguf"
    if content is None:
        bad.write_bytes(smollm2_gguf.read_bytes()[: 2_000_000])
    else:
        bad.write_bytes(content)
    proc = run(["--model", str(bad), *FAST, "What is 1+1?"])
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert message.lower() in err.lower() and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_tiny_qwen3_runs_with_its_template_and_stop_tokens(tiny_qwen3_gguf):
    proc = run(["--model", str(tiny_qwen3_gguf), "--json", "--samples", "3", *FAST, "x^2=4"])
    row = records(proc.stdout)[0]
    assert row["prompt_tokens"] > 0
    assert [s["seed"] for s in row["samples"]] == [7, 8, 9]
    assert all(s["finish_reason"] in ("stop", "length") for s in row["samples"])
    assert "<|im_end|>" not in row["completion"]
    assert sum(v["count"] for v in row["votes"]) == sum(1 for s in row["samples"] if s["answer"])
    assert proc.returncode == expected_status([row])


def _run_on_tty(args: list[str], env: dict | None = None, timeout: float = 300) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal, as a person at a terminal would."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mathsolve", *args], stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower, env={**os.environ, **(env or {})})
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    for data in pty_chunks(leader):
        chunks.append(data)
        if time.monotonic() > deadline:
            break
    os.close(leader)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def test_terminal_shows_reasoning_then_answer_panel_and_stats(smollm2_gguf):
    code, screen = _run_on_tty(["--model", str(smollm2_gguf), *FAST, "What is 2+3?"],
                               env={"COLUMNS": "100", "TERM": "xterm-256color"})
    text = ANSI_COLOUR.sub("", screen)
    assert "Answer" in text
    assert re.search(r"finish: (stop|length) · \d+ prompt \+ \d+ generated tokens · [\d.]+ tokens/s", text)
    assert "model load" in text
    assert code in (0, 3)


def test_no_color_on_a_terminal_means_no_colour_codes(smollm2_gguf):
    code, screen = _run_on_tty(["--model", str(smollm2_gguf), *FAST, "What is 2+3?"],
                               env={"NO_COLOR": "1", "TERM": "xterm-256color"})
    assert "Answer" in screen
    assert ANSI_COLOUR.search(screen) is None


@pytest.mark.parametrize("extra", [[], ["--samples", "3", "--confidence", "0.9", "--kv-budget", "0.012"]],
                         ids=["one-sample", "votes-in-turns"])  # 0.012 GB: two streams for three samples
def test_ctrl_c_in_a_batch_keeps_finished_records_and_exits_130(smollm2_gguf, tmp_path,
                                                              sigint_default, extra):
    texts = ["What is 1+1?"] + ["Write a very long essay about the number seven."] * 5
    problems = tmp_path / "p.txt"
    problems.write_text("".join(t + "\n" for t in texts))
    proc = subprocess.Popen([sys.executable, "-m", "mathsolve", "--model", str(smollm2_gguf),
                             "-f", str(problems), "--json", "--max-tokens", "200", "--parallel", "2",
                             "--ctx", "1024", "--seed", "1", "--temperature", "1.0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=sigint_default)
    # The event to wait for: the first record is out, so the batch is past problem 1 with two
    # problems in flight and at least three more of up to 200 tokens to come. Ctrl-C at once.
    first = proc.stdout.readline()
    assert first.endswith(b"\n"), (first, proc.stderr.read().decode()[-2000:])
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    output = first + rest
    assert output.endswith(b"\n")  # the last record is whole: nothing cut off
    rows = records(output)  # every line written is a whole JSON record
    ids = [row["id"] for row in rows]
    # The finished records are kept: problem 1's at least, each problem at most once, in input
    # order (those that finished out of order are printed after, sorted), and not all six.
    assert 1 <= len(rows) < len(texts), ids
    assert ids[0] == "1"
    assert ids == sorted(set(ids), key=int) and set(ids) <= {str(i) for i in range(1, 7)}
    for row in rows:
        assert JSON_KEYS <= row.keys()
        assert row["problem"] == texts[int(row["id"]) - 1]
        assert row["error"] is None
        assert row["finish_reason"] in ("stop", "length")  # finished, not cut short by Ctrl-C
        assert isinstance(row["completion"], str)
        assert all(s["completion_tokens"] <= 200 for s in row.get("samples") or [row])  # a vote's: the sum


def test_offline_missing_model_fails_at_once_with_the_pull_command(tmp_path):
    env = {"MATHSOLVE_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    start = time.monotonic()
    proc = run(["What is 1+1?"], env=env, unset=("MATHSOLVE_MODEL", "MATHSOLVE_SERVER"))
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "mathsolve pull jaygala24/Qwen3-4B-RLOO-math-reasoning --quant q4_k_m" in err
    assert len(err.strip().splitlines()) == 1
    assert time.monotonic() - start < 30


def test_terminal_with_samples_shows_a_line_per_sample_and_the_vote(smollm2_gguf):
    code, screen = _run_on_tty(["--model", str(smollm2_gguf), *FAST, "--samples", "3",
                                "What is 2+3?"], env={"COLUMNS": "100", "NO_COLOR": "1"})
    assert re.search(r"sample\s+tokens\s+answer", screen)
    for row in ("1", "2", "3"):
        assert re.search(rf"^\s*{row}\s+\d+\s", screen, re.M), screen[-2000:]
    assert "Answer" in screen and "finish:" in screen
    assert code in (0, 3)
