"""`--server`: solve, voting and eval through a real OpenAI-compatible server (llama-cpp-python's
own, started here on 127.0.0.1 with SmolLM2), and retries / error records through a scripted
local server that fails on purpose. Subprocesses, so exit codes and streams are what a user
sees. Only loopback addresses; every wait has a deadline."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import run_mathsolve
from fakeserver import FakeServer

from mathsolve.config import SamplingConfig
from mathsolve.engine.local.native import LLAMA_SERVER
from mathsolve.engine.protocol import BudgetHit, GenerationInterrupted
from mathsolve.engine.remote.server import ServerEngine, normalise_url
from mathsolve.engine.remote.sse import retry_after
from mathsolve.errors import EngineError, UsageError

SECRET = "sk-mathsolve-test-9f3c1e7a5b"  # distinctive: grep-able anywhere it must not be
FAST = ["--max-tokens", "24", "--seed", "5"]
START_DEADLINE = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MATHSOLVE_API_KEY", "OPENAI_API_KEY", "MATHSOLVE_SERVER", "MATHSOLVE_SERVER_MODEL")}
    return {**env, **extra}


def mathsolve(*args: str, key: str | None = SECRET, stdin: bytes = b"",
              timeout: int = 300) -> subprocess.CompletedProcess:
    return run_mathsolve(*args, stdin=stdin, timeout=timeout,
                         env=clean_env(MATHSOLVE_API_KEY=key) if key else clean_env())


def records(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def assert_no_secret(proc: subprocess.CompletedProcess, *files: Path) -> None:
    for where, data in (("stdout", proc.stdout), ("stderr", proc.stderr),
                        *((str(f), f.read_bytes()) for f in files)):
        assert SECRET.encode() not in data, f"the API key leaked into {where}"


@pytest.fixture(scope="session")
def llama_server(smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    """llama-cpp-python's OpenAI-compatible server on a free loopback port, key required.
    --interrupt_requests False: by default it ends a running stream when another request
    arrives, which would cut concurrent samples short."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [sys.executable, "-c", LLAMA_SERVER, "--model", str(smollm2_gguf),
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
           "--model_alias", "smollm2", "--api_key", SECRET, "--interrupt_requests", "False"]
    with open(log, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=clean_env())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_DEADLINE
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}: "
                            f"{log.read_text(errors='replace')[-1500:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within {START_DEADLINE:.0f} s")
            try:
                req = urllib.request.Request(url + "/v1/models",
                                             headers={"Authorization": f"Bearer {SECRET}"})
                with urllib.request.urlopen(req, timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


# ---------------------------------------------------------------- the real server


def test_solve_json_through_real_server_records_model_finish_and_tokens(llama_server):
    proc = mathsolve("--server", llama_server + "/v1", "--json", *FAST, "What is 2+3?")
    rows = records(proc)
    assert len(rows) == 1
    row = rows[0]
    assert row["model"] == {"path": None, "source": llama_server, "name": "smollm2"}
    assert row["finish_reason"] in ("stop", "length")
    assert 0 < row["completion_tokens"] <= 24
    assert row["completion"].strip() and row["error"] is None
    assert row["sampling"] == {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 0.0,
                               "seed": 5, "max_tokens": 24, "thinking_budget": None,
                               "time_limit": None}
    assert proc.returncode == (0 if row["answer"] is not None else 3)
    assert_no_secret(proc)


def test_same_seed_gives_same_completion_through_the_server(llama_server):
    first = records(mathsolve("--server", llama_server, "--json", *FAST, "Compute 6*7."))
    again = records(mathsolve("--server", llama_server, "--json", *FAST, "Compute 6*7."))
    assert first[0]["completion"] == again[0]["completion"]


def test_samples_vote_through_real_server_with_concurrent_requests(llama_server):
    proc = mathsolve("--server", llama_server, "--json", *FAST, "--samples", "3", "What is 7-4?")
    row = records(proc)[0]
    assert row["error"] is None
    assert [s["seed"] for s in row["samples"]] == [5, 6, 7]
    # Every sample ran to a real finish: none was cut off by another request.
    assert all(s["finish_reason"] in ("stop", "length") for s in row["samples"])
    assert all(0 < s["completion_tokens"] <= 24 for s in row["samples"])
    assert row["completion_tokens"] == sum(s["completion_tokens"] for s in row["samples"])
    assert sum(v["count"] for v in row["votes"]) == sum(1 for s in row["samples"] if s["answer"])
    assert_no_secret(proc)


def test_eval_through_real_server_writes_records_and_summary_without_the_key(llama_server, tmp_path):
    data = tmp_path / "five.jsonl"
    rows = [{"id": f"p{i}", "problem": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(1, 6)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "results.jsonl"
    proc = mathsolve("eval", str(data), "--out", str(out), "--server", llama_server,
                     "--max-tokens", "16", "--seed", "1", "--json", "--concurrency", "2")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in results) == ["p1", "p2", "p3", "p4", "p5"]
    for r in results:
        assert r["error"] is None and r["n"] == 1
        assert r["model"]["source"] == llama_server and r["model"]["name"] == "smollm2"
        assert 0 < r["completion_tokens"] <= 16
    summary = json.loads(proc.stdout)
    assert summary["problems"] == 5 and summary["errors"] == 0
    assert_no_secret(proc, out)


def test_wrong_api_key_is_a_one_line_error_that_does_not_echo_the_key(llama_server):
    wrong = "sk-wrong-4d2b8e61"
    proc = mathsolve("--server", llama_server, "--json", *FAST, "What is 1+1?", key=wrong)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "refused the API key" in err and len(err.strip().splitlines()) == 1
    assert wrong not in err and wrong not in proc.stdout.decode()


def test_unreachable_server_is_a_one_line_error():
    url = f"http://127.0.0.1:{free_port()}"
    proc = mathsolve("--server", url, "What is 1+1?", timeout=60)
    assert proc.returncode == 1
    err = proc.stderr.decode().strip()
    assert err.startswith(f"mathsolve: error: cannot reach the server at {url}")
    assert err.endswith("is it running?") and len(err.splitlines()) == 1


# ---------------------------------------------------------------- scripted failures


def batch_on(mode: str, lines: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[dict], FakeServer]:
    """`mathsolve -f FILE --json` against a fake server in `mode`: the run, its records, the server."""
    problems = tmp_path / "p.txt"
    problems.write_text(lines)
    with FakeServer(mode) as fake:
        proc = mathsolve("--server", fake.url, "-f", str(problems), "--json", *FAST, timeout=120)
    return proc, records(proc), fake


def test_retries_get_through_a_server_that_fails_every_other_request(tmp_path):
    proc, rows, fake = batch_on("flaky", "What is 2+2?\nWhat is 3+1?\nWhat is 1+3?\n", tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert [r["answer"] for r in rows] == ["4", "4", "4"]
    assert all(r["error"] is None and r["finish_reason"] == "stop" for r in rows)
    assert fake.failures == ["500", "429", "cut"]  # one of each, each followed by a success
    assert len(fake.posts()) == 6
    assert proc.stderr.decode().count("retrying") == 3
    assert rows[0]["completion"].startswith("<think>")  # only the successful attempt's text
    assert rows[0]["completion"].count("Two and two") == 1
    assert rows[0]["prompt_tokens"] == 31 and rows[0]["completion_tokens"] == 12  # usage


def test_a_problem_whose_requests_keep_failing_is_an_error_record_and_the_batch_goes_on(tmp_path):
    proc, rows, fake = batch_on("fail-marked", "What is 2+2?\nFAIL this one\nWhat is 1+3?\n", tmp_path)
    assert proc.returncode == 1
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["answer"] == rows[2]["answer"] == "4"
    assert "failed 5 times" in rows[1]["error"] and "HTTP 503" in rows[1]["error"]
    assert rows[1]["answer"] is None
    assert fake.failures == ["503"] * ServerEngine.max_tries


def test_request_carries_sampling_key_and_no_think_flag():
    with FakeServer("ok") as fake:
        proc = mathsolve("--server", fake.url, "--json", "--max-tokens", "99", "--seed", "11",
                         "--temperature", "1.0", "--top-p", "1", "--top-k", "0", "--min-p", "0.05",
                         "--no-think", "What is 2+2?", timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    (post,) = fake.posts()
    body, headers = post["body"], post["headers"]
    assert body["messages"] == [
        {"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."},
        {"role": "user", "content": "What is 2+2?"}]
    want = {"model": "fake-model", "stream": True, "max_tokens": 99, "seed": 11, "temperature": 1.0,
            "top_p": 1.0, "top_k": 0, "min_p": 0.05, "chat_template_kwargs": {"enable_thinking": False},
            "stream_options": {"include_usage": True}}
    assert {k: body[k] for k in want} == want
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert_no_secret(proc)


def test_a_server_that_refuses_stream_options_gets_the_request_again_without_them():
    with FakeServer("strict") as fake:
        proc = mathsolve("--server", fake.url, "--json", *FAST, "--samples", "2", "What is 2+2?",
                         timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert records(proc)[0]["answer"] == "4"
    sent = [p["body"] for p in fake.posts()]
    assert sum(1 for b in sent if "stream_options" in b) in (1, 2)  # both samples may race
    assert sum(1 for b in sent if "stream_options" not in b) == 2
    assert "does not take stream_options" in proc.stderr.decode()


CONCURRENCY = {"default-all-samples": ([], 3), "capped-at-1": (["--concurrency", "1"], 1),
               "capped-at-2": (["--concurrency", "2"], 2)}


@pytest.mark.parametrize("extra,expected", CONCURRENCY.values(), ids=CONCURRENCY.keys())
def test_samples_are_sent_at_once_up_to_the_concurrency_limit(extra, expected):
    with FakeServer("ok", pace=0.02) as fake:
        proc = mathsolve("--server", fake.url, "--json", *FAST, "--samples", "3", *extra,
                         "What is 2+2?", timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert records(proc)[0]["support"] == "3/3 samples"
    assert fake.max_in_flight == expected


def test_reasoning_content_deltas_become_a_think_block_and_reasoning_events():
    with FakeServer("reasoning") as fake:
        proc = mathsolve("--server", fake.url, "--show-reasoning", *FAST, "What is 2+2?", timeout=60)
        as_json = mathsolve("--server", fake.url, "--json", *FAST, "What is 2+2?", timeout=60)
    assert proc.returncode == 0 and proc.stdout.decode() == "4\n"
    assert "Two and two make four." in proc.stderr.decode()  # streamed as reasoning
    assert records(as_json)[0]["completion"] == (
        "<think>Two and two make four.</think>The answer is \\boxed{4}.")


def test_oversized_answer_is_an_error_record_not_a_memory_blowup():
    with FakeServer("huge") as fake:
        proc = mathsolve("--server", fake.url, "--json", *FAST, "What is 2+2?", timeout=60)
    row = records(proc)[0]
    assert proc.returncode == 1 and "over 4 MB" in row["error"]
    assert len(fake.posts()) == 1  # a size violation is not retried


def test_ctrl_c_raises_generation_interrupted_with_partial_samples_promptly():
    seen = []

    def on_event(event):
        seen.append(event)
        if len(seen) == 20:
            raise KeyboardInterrupt

    with FakeServer("slow") as fake:
        engine = ServerEngine.connect(fake.url)
        prompt = engine.render("What is 2+2?")
        start = time.monotonic()
        with pytest.raises(GenerationInterrupted) as info:
            engine.generate_many(prompt, [SamplingConfig(seed=s, max_tokens=500) for s in (1, 2)],
                                 on_event=on_event)
        assert time.monotonic() - start < 10  # the 18 s streams were abandoned
    done = info.value.completions
    assert [c.sample for c in done] == [0, 1] and [c.seed for c in done] == [1, 2]
    assert all(c.finish_reason == "interrupted" for c in done)
    assert any(c.text.startswith("<think>thinking") for c in done)


# ---------------------------------------------------------------- small pieces

URLS = {
    "v1-suffix": ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000", 8000, ""),
    "plain": ("http://localhost:8080", "http://localhost:8080", 8080, ""),
    "https-prefix": ("https://gpu.example/llm/v1", "https://gpu.example/llm", 443, "/llm"),
}


@pytest.mark.parametrize("url,display,port,prefix", URLS.values(), ids=URLS.keys())
def test_server_url_is_normalised(url, display, port, prefix):
    shown, _, _, got_port, got_prefix = normalise_url(url)
    assert (shown, got_port, got_prefix) == (display, port, prefix)


BAD_URLS = {"no-scheme": "127.0.0.1:8000", "ftp": "ftp://host/", "bad-port": "http://h:99999",
            "credentials": "http://user:sk-123@host:8000"}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_bad_server_url_is_a_usage_error_that_never_echoes_credentials(url):
    with pytest.raises(UsageError) as info:
        normalise_url(url)
    assert "sk-123" not in str(info.value)


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after("3") == 3.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after("soon") is None and retry_after(None) is None


def test_render_rejects_an_empty_problem_and_generate_rejects_a_text_prompt():
    engine = ServerEngine("http://127.0.0.1:9")
    with pytest.raises(Exception, match="empty"):
        engine.render("   ")
    with pytest.raises(EngineError):
        engine.generate("<|im_start|>user\nhi", SamplingConfig())


EVAL_CONCURRENCY = {"one-at-a-time": (["--concurrency", "1"], 1),
                    "four-problems-at-once": (["--concurrency", "4"], 4)}


@pytest.mark.parametrize("extra,expected", EVAL_CONCURRENCY.values(), ids=EVAL_CONCURRENCY.keys())
def test_eval_keeps_several_problems_in_flight_on_a_server(tmp_path, extra, expected):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": f"p{i}", "problem": "What is 2+2?", "answer": "4"}) + "\n"
                            for i in range(8)))
    out = tmp_path / "out.jsonl"
    with FakeServer("ok", pace=0.02) as fake:
        proc = mathsolve("eval", str(data), "--out", str(out), "--server", fake.url, *FAST,
                         *extra, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    ids = sorted(json.loads(line)["id"] for line in out.read_text().splitlines())
    assert ids == sorted(f"p{i}" for i in range(8))
    assert fake.max_in_flight == expected
    assert "accuracy (pass@1, mean over samples): 100.00%" in proc.stdout.decode()


def test_stop_when_decided_cancels_the_samples_the_vote_no_longer_needs():
    # One request at a time: after three equal answers out of five, 3 > 0 + 2 unfinished.
    with FakeServer("ok") as fake:
        proc = mathsolve("--server", fake.url, "--json", *FAST, "--samples", "5",
                         "--concurrency", "1", "--stop-when-decided", "What is 2+2?", timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    row = records(proc)[0]
    assert row["answer"] == "4" and row["support"] == "3/5 samples"
    reasons = sorted(s["finish_reason"] for s in row["samples"])  # the slot order is the OS's
    assert reasons == ["cancelled"] * 2 + ["stop"] * 3
    # The fifth is never sent; the fourth may start in the moment between the third answer
    # arriving and the vote being counted, and is then cut off.
    assert 3 <= len(fake.posts()) <= 4


def test_eval_rerun_retries_the_problems_that_errored_and_keeps_one_record_each(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": f"p{i}", "problem": text, "answer": "4"}) + "\n"
                            for i, text in enumerate(["What is 2+2?", "FAIL: what is 1+3?", "What is 3+1?"])))
    out = tmp_path / "out.jsonl"
    with FakeServer("fail-marked") as fake:
        first = mathsolve("eval", str(data), "--out", str(out), "--server", fake.url, *FAST, timeout=120)
    assert first.returncode == 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["p0", "p1", "p2"]
    assert [r["id"] for r in rows if r["error"]] == ["p1"]
    with FakeServer("ok") as fake:  # the server is healthy again: a rerun retries p1 only
        again = mathsolve("eval", str(data), "--out", str(out), "--server", fake.url, *FAST, timeout=120)
        asked = [p["body"]["messages"][-1]["content"] for p in fake.posts()]
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert "retrying 1 problem(s) that errored" in again.stderr.decode()
    assert asked == ["FAIL: what is 1+3?"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["p0", "p1", "p2"]  # exactly one record per problem
    assert all(r["error"] is None and r["correct"] for r in rows)
    assert "problems: 3 (3 samples, 0 errored)" in again.stdout.decode()


# ---------------------------------------------------------------- budgets, client side


def test_a_thinking_budget_through_the_real_server_ends_in_a_box_within_the_bound(llama_server):
    from mathsolve.config import ANSWER_ALLOWANCE, BUDGET_ANSWER_CUE

    proc = mathsolve("--server", llama_server, "--json", "--seed", "5", "--max-tokens", "400",
                     "--samples", "2", "--thinking-budget", "10",
                     "Tell me a very long story about a dragon.")
    row = records(proc)[0]
    assert row["error"] is None, row
    for sample in row["samples"]:
        assert sample["budget"] == {"hit": "thinking_budget", "at": 10, "in_think": False}
        assert sample["completion_tokens"] <= 10 + ANSWER_ALLOWANCE
    assert BUDGET_ANSWER_CUE in row["completion"]
    assert row["completion"].index(BUDGET_ANSWER_CUE) > 0  # after the first request's text


def test_a_budget_of_zero_through_a_server_asks_for_the_answer_at_once():
    from mathsolve.config import ANSWER_ALLOWANCE, BUDGET_ANSWER_CUE

    with FakeServer() as fake:
        engine = ServerEngine.connect(fake.url)
        prompt = engine.render("What is 2+2?")
        c = engine.generate(prompt, SamplingConfig(seed=1, thinking_budget=0))
        (post,) = [r for r in fake.requests if r["body"] is not None]  # no chat request: only the continuation
        assert post["path"].endswith("/v1/completions")
        assert post["body"]["prompt"].endswith("<|im_start|>assistant\n" + BUDGET_ANSWER_CUE)
        assert post["body"]["max_tokens"] == ANSWER_ALLOWANCE
        assert c.text.startswith(BUDGET_ANSWER_CUE) and c.budget == BudgetHit("thinking_budget", 0, False)


def test_a_time_limit_through_a_server_leaves_the_stream_and_steers_inside_think():
    from mathsolve.config import BUDGET_THINK_CUE

    with FakeServer("slow") as fake:  # "<think>thinking thinking ..." a chunk every 50 ms
        engine = ServerEngine.connect(fake.url)
        prompt = engine.render("What is 2+2?")
        start = time.perf_counter()
        c = engine.generate(prompt, SamplingConfig(seed=1, time_limit=0.5))
        posts = [r for r in fake.requests if r["body"] is not None]
        steered = posts[1]  # the continuation, sent while the first stream still ran
        assert steered["path"].endswith("/v1/completions")
        assert steered["at"] - start < 0.5 + 1.0  # the slow first stream lasts 18 s
        assert steered["body"]["max_tokens"] == 64
        assert c.budget is not None and c.budget.hit == "time_limit" and c.budget.in_think
        cont = steered["body"]["prompt"]
        assert "<|im_start|>assistant\n<think>th" in cont  # 0.5 s of one-character chunks
        assert cont.endswith(BUDGET_THINK_CUE + "The final answer is $\\boxed{")
        assert BUDGET_THINK_CUE in c.text


def test_a_server_that_advertises_its_own_budget_is_sent_it_and_steers_the_sample_itself():
    from mathsolve.config import ANSWER_ALLOWANCE
    from mathsolve.engine.remote.chat import SERVER_BUDGET_MESSAGE, SERVER_BUDGET_ROOM

    with FakeServer("budget") as fake:  # llama.cpp's /props and reasoning_budget_tokens
        engine = ServerEngine.connect(fake.url)
        assert engine.budget_field == "reasoning_budget_tokens"
        c = engine.generate(engine.render("What is 2+2?"), SamplingConfig(seed=1, thinking_budget=10,
                                                                          max_tokens=400))
        (post,) = [r for r in fake.requests if r["body"] is not None]  # no continuation was needed
        assert post["path"].endswith("/v1/chat/completions")
        assert post["body"]["reasoning_budget_tokens"] == 10
        assert post["body"]["reasoning_budget_message"] == SERVER_BUDGET_MESSAGE
        assert post["body"]["max_tokens"] == 10 + SERVER_BUDGET_ROOM + ANSWER_ALLOWANCE
        assert c.budget == BudgetHit("thinking_budget", 10, True)
        assert c.finish_reason == "stop" and c.text.endswith("\\boxed{4}.")
        assert c.text.index(SERVER_BUDGET_MESSAGE.strip()) < c.text.index("</think>")


def test_a_server_that_ignores_its_advertised_budget_gets_the_client_side_one_from_then_on():
    from mathsolve.config import BUDGET_THINK_CUE

    notes: list[str] = []
    with FakeServer("budget-ignored") as fake:
        engine = ServerEngine.connect(fake.url, warn=notes.append)
        sampling = SamplingConfig(seed=1, thinking_budget=10, max_tokens=400)
        first = engine.generate(engine.render("What is 2+2?"), sampling)
        assert engine.budget_field is None and any("did not apply its reasoning budget" in n for n in notes)
        assert first.budget and first.budget.hit == "thinking_budget"
        assert BUDGET_THINK_CUE in first.text  # steered client side
        second = engine.generate(engine.render("What is 3+3?"), sampling)
        chats = [r["body"] for r in fake.posts()]
        assert "reasoning_budget_tokens" in chats[0] and "reasoning_budget_tokens" not in chats[1]
        assert chats[1]["max_tokens"] == 10  # capped at the budget, as for any server
        assert second.budget == BudgetHit("thinking_budget", 10, True)


def test_a_server_without_props_gets_no_budget_fields():
    with FakeServer() as fake:
        engine = ServerEngine.connect(fake.url)
        assert engine.budget_field is None
        engine.generate(engine.render("What is 2+2?"), SamplingConfig(seed=1, thinking_budget=5))
        assert all("reasoning_budget_tokens" not in r["body"] for r in fake.posts())
