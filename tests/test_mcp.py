"""`mathsolve mcp` started as a subprocess and driven by the MCP SDK's own stdio client: the
tools and their schemas, solve (the same answer as `mathsolve --json` with the same seed),
grade, check, progress, cancellation, order, bad arguments, a missing model, and the end of
the server on EOF and Ctrl-C with nothing on stdout but the protocol. Real models: SmolLM2
(real text) and the tiny Qwen3 of our converter."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp")

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

from mathsolve.config import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P, OPTIONS  # noqa: E402

THREADS = ["--threads", "2"]
LONG = {"problem": "Write a long story.", "seed": 1, "max_tokens": 1500, "check": False}  # runs to 1500


@asynccontextmanager
async def connect(*args: str, errlog: Path | None = None) -> AsyncIterator[ClientSession]:
    """A ClientSession on `python -m mathsolve mcp ARGS` (its stderr to `errlog`)."""
    env = {"MATHSOLVE_HOME": os.environ["MATHSOLVE_HOME"]}
    params = StdioServerParameters(command=sys.executable, args=["-m", "mathsolve", "mcp", *args], env=env)
    with open(errlog or os.devnull, "w") as err:
        async with stdio_client(params, errlog=err) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def drive(main: Any) -> Any:
    return anyio.run(main)


def error_text(result: Any) -> str:
    assert result.is_error, result
    (block,) = result.content
    return block.text


def cli_record(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "mathsolve", "--json", *args], capture_output=True, timeout=300)
    assert proc.returncode in (0, 3), proc.stderr.decode()
    return json.loads(proc.stdout)


def test_tools_are_listed_with_schemas_whose_defaults_are_the_servers_options(tiny_qwen3_gguf):
    async def main() -> dict:
        async with connect("--model", str(tiny_qwen3_gguf), *THREADS, "--samples", "3") as session:
            return {t.name: t for t in (await session.list_tools()).tools}

    tools = drive(main)
    assert set(tools) == {"solve", "grade", "check"}
    solve = tools["solve"].input_schema
    assert solve["required"] == ["problem"]
    props = solve["properties"]
    assert props["samples"]["default"] == 3 and props["samples"]["minimum"] == 1  # --samples 3
    assert props["samples"]["maximum"] == 64
    assert props["temperature"]["default"] == DEFAULT_TEMPERATURE and props["temperature"]["minimum"] == 0
    assert props["top_p"]["default"] == DEFAULT_TOP_P and props["top_k"]["default"] == DEFAULT_TOP_K
    assert props["max_tokens"]["default"] == DEFAULT_MAX_TOKENS
    assert {"seed", "thinking_budget", "time_limit", "confidence", "include_completion"} <= props.keys()
    assert all(p.get("description") or name in ("top_p", "min_p") for name, p in props.items())
    def words(text: str) -> list[str]:  # the flag --thinking-budget is the field thinking_budget
        return re.findall(r"[a-z0-9.]+", text.lower().replace("--", "").replace("_", "-").replace("-", " "))

    shared = [name for name in props if name in OPTIONS and OPTIONS[name].help]
    assert len(shared) >= 8
    for name in shared:  # the CLI's help, from the one table
        assert "--" not in props[name]["description"] and words(props[name]["description"]) == words(OPTIONS[name].help)
    out = tools["solve"].output_schema["properties"]
    assert {"answer", "support", "confidence", "check", "finish_reason", "completion", "seed"} <= out.keys()
    assert tools["grade"].input_schema["required"] == ["completion", "reference"]
    assert tools["check"].input_schema["required"] == ["problem", "answer"]
    assert tools["check"].output_schema["properties"]["status"]["enum"] == ["verified", "refuted", "unchecked"]


@pytest.mark.parametrize(("model", "problem", "samples"), [
    ("tiny_qwen3_gguf", "x^2=4", 1),
    ("smollm2_gguf", "Compute 6*7 and give the answer as \\boxed{N}.", 3),
], ids=["tiny-qwen3-one-sample", "smollm2-three-samples"])
def test_solve_gives_the_clis_answer_with_the_same_seed(model, problem, samples, request):
    path = str(request.getfixturevalue(model))
    fast = ["--max-tokens", "96", "--seed", "1", "--samples", str(samples)]  # SmolLM2 here: 43 (1/3), refuted
    expected = cli_record("--model", path, *THREADS, *fast, problem)

    async def main() -> Any:
        async with connect("--model", path, *THREADS) as session:
            return await session.call_tool("solve", {"problem": problem, "seed": 1, "max_tokens": 96,
                                                     "samples": samples, "include_completion": True})

    result = drive(main)
    assert not result.is_error, result.content
    got = result.structured_content
    assert got["seed"] == 1 and got["sampling"] == expected["sampling"]
    for key in ("answer", "completion", "finish_reason", "completion_tokens", "support", "confidence", "check"):
        assert got[key] == expected.get(key), key
    assert got["completion"]  # the tiny Qwen3's random weights draw newlines; SmolLM2 writes text
    if samples > 1:
        assert got["completion"].strip()
        assert got["samples"] == samples
        assert got["votes"] == [{"answer": v["answer"], "count": v["count"]} for v in expected["votes"]]
    assert json.loads(result.content[0].text)["answer"] == got["answer"]  # the text block says the same


def test_grade_and_check_answer_without_the_model_being_needed(tmp_path):
    async def main() -> list[Any]:
        async with connect("--model", str(tmp_path / "absent.gguf")) as session:
            return [await session.call_tool("grade", {"completion": "so the answer is \\boxed{\\frac{1}{2}}",
                                                      "reference": "0.5"}),
                    await session.call_tool("grade", {"completion": "I think \\boxed{3}",
                                                      "reference": "2 + 2 = 4\n#### 4"}),
                    await session.call_tool("grade", {"completion": "no answer here", "reference": "4"}),
                    await session.call_tool("check", {"problem": "Solve x^2 = 4", "answer": "x = 2, x = -2"}),
                    await session.call_tool("check", {"problem": "Solve x^2 = 4", "answer": "x = 3"})]

    right, wrong, none, verified, refuted = [r.structured_content for r in drive(main)]
    assert right == {"extracted": "\\frac{1}{2}", "correct": True, "fallback": False, "reference_used": "0.5"}
    assert wrong["correct"] is False and wrong["reference_used"] == "4"
    assert none["extracted"] is None and none["correct"] is None
    assert verified["status"] == "verified" and refuted["status"] == "refuted"


def test_progress_is_notified_while_a_solve_decodes(smollm2_gguf):
    seen: list[tuple[float, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, message))

    async def main() -> Any:
        async with connect("--model", str(smollm2_gguf), *THREADS) as session:
            return await session.call_tool("solve", {**LONG, "max_tokens": 200}, progress_callback=progress)

    result = drive(main)
    assert not result.is_error and result.structured_content["completion_tokens"] == 200
    assert seen and seen[0][1].startswith("sample 1 ")  # the first piece of text is notified at once
    drawn = [d for d, _ in seen]
    assert drawn == sorted(drawn) and drawn[0] > 0


def test_a_cancelled_solve_stops_its_decode_and_the_next_request_gets_the_engine(smollm2_gguf):
    async def main() -> tuple[bool, float, Any]:
        async with connect("--model", str(smollm2_gguf), *THREADS) as session:
            started = anyio.Event()
            finished = False

            async def progress(done: float, total: float | None, message: str | None) -> None:
                started.set()

            async def long(scope: anyio.CancelScope) -> None:
                nonlocal finished
                with scope:
                    await session.call_tool("solve", LONG, progress_callback=progress)
                    finished = True

            scope = anyio.CancelScope()
            async with anyio.create_task_group() as tg:
                tg.start_soon(long, scope)
                await started.wait()  # decoding now: 1500 tokens would take many seconds
                scope.cancel()
                begin = time.perf_counter()
                after = await session.call_tool("solve", {"problem": "What is 2+2?", "max_tokens": 1,
                                                          "check": False})
                return finished, time.perf_counter() - begin, after

    finished, wall, after = drive(main)
    assert not finished
    assert not after.is_error, after.content
    # One decode step of SmolLM2 is ~20 ms here; the rest of the long solve would take > 10 s.
    assert after.structured_content["queued_seconds"] < 2.0, after.structured_content
    assert wall < 5.0


def test_requests_at_once_are_served_one_at_a_time_in_arrival_order(smollm2_gguf):
    async def main() -> list[tuple[int, Any]]:
        done: list[tuple[int, Any]] = []
        async with connect("--model", str(smollm2_gguf), *THREADS) as session:
            async def one(i: int) -> None:
                done.append((i, await session.call_tool("solve", {"problem": f"What is {i}+1?", "seed": i,
                                                                 "max_tokens": 16, "check": False})))

            async with anyio.create_task_group() as tg:
                for i in range(4):
                    tg.start_soon(one, i)
        return done

    done = drive(main)
    assert [i for i, _ in done] == [0, 1, 2, 3]
    assert not any(r.is_error for _, r in done)
    waits = [r.structured_content["queued_seconds"] for _, r in done]
    assert waits == sorted(waits) and waits[3] > waits[0]
    assert [r.structured_content["seed"] for _, r in done] == [0, 1, 2, 3]


def test_through_a_server_the_answer_comes_back_and_a_cancel_stops_the_request():
    """--server: an OpenAI-compatible server (the scripted stand-in, a real HTTP process boundary)
    streaming a piece every 50 ms, about 1.2 s a solve."""
    from fakeserver import FakeServer

    async def main(url: str) -> tuple[Any, bool, Any]:
        async with connect("--server", url) as session:
            whole = await session.call_tool("solve", {"problem": "What is 2+2?", "seed": 1})
            started = anyio.Event()
            finished = False

            async def progress(done: float, total: float | None, message: str | None) -> None:
                started.set()

            async def first(scope: anyio.CancelScope) -> None:
                nonlocal finished
                with scope:
                    await session.call_tool("solve", {"problem": "What is 2+2?", "seed": 2},
                                            progress_callback=progress)
                    finished = True

            scope = anyio.CancelScope()
            async with anyio.create_task_group() as tg:
                tg.start_soon(first, scope)
                await started.wait()
                scope.cancel()
                after = await session.call_tool("solve", {"problem": "What is 2+2?", "seed": 3})
            return whole, finished, after

    with FakeServer("ok", pace=0.05) as fake:
        whole, finished, after = anyio.run(main, fake.url)
        assert fake.in_flight == 0
        assert len(fake.posts()) == 3
    assert whole.structured_content["answer"] == "4" and whole.structured_content["seed"] == 1
    assert not finished
    assert after.structured_content["answer"] == "4"
    assert after.structured_content["queued_seconds"] < 0.5  # the cancelled stream had ~1 s to go


@pytest.mark.parametrize(("arguments", "message"), [
    ({"problem": "x+1=2", "samples": 0}, "bad argument samples: Input should be greater than or equal to 1"),
    ({"problem": "x+1=2", "temperature": -1}, "bad argument temperature: Input should be greater than or equal"),
    ({"problem": ""}, "bad argument problem: String should have at least 1 character"),
    ({"problem": "   "}, "problem is empty"),
    ({}, "bad argument problem: Field required"),
    ({"problem": "x+1=2", "seed": "abc"}, "bad argument seed"),
    ({"problem": "x+1=2", "thinking_budget": 9000}, "thinking budget 9000 leaves no room for the answer"),
    ({"problem": "What is " + " + ".join(["1"] * 800) + "?"}, "tokens but the context holds 1024"),
], ids=["samples-0", "temperature-negative", "empty", "blank", "missing", "seed-text", "budget-over-ctx",
        "longer-than-the-context"])
def test_bad_arguments_are_one_line_tool_errors_and_the_server_lives_on(tiny_qwen3_gguf, tmp_path, arguments,
                                                                        message):
    errlog = tmp_path / "stderr.txt"

    async def main() -> tuple[Any, Any]:
        async with connect("--model", str(tiny_qwen3_gguf), *THREADS, "--ctx", "1024", errlog=errlog) as session:
            bad = await session.call_tool("solve", arguments)
            good = await session.call_tool("solve", {"problem": "x+1=2", "max_tokens": 4, "seed": 3})
            return bad, good

    bad, good = drive(main)
    text = error_text(bad)
    assert text.startswith("Error executing tool solve: ") and message in text, text
    assert "\n" not in text and len(text) < 300
    assert not good.is_error and good.structured_content["completion_tokens"] == 4
    assert "Traceback" not in errlog.read_text()


def test_a_missing_model_is_a_clear_tool_error_on_every_solve(tmp_path):
    missing = tmp_path / "no-such-model.gguf"

    async def main() -> list[Any]:
        async with connect("--model", str(missing)) as session:
            return [await session.call_tool("solve", {"problem": "What is 1+1?"}) for _ in range(2)]

    for result in drive(main):
        assert error_text(result) == f"Error executing tool solve: model file {missing} does not exist"


def test_without_the_mcp_package_the_command_is_a_one_line_hint():
    code = "import sys; sys.modules['mcp'] = None; from mathsolve.cli import main; main(['mcp'])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == "mathsolve: error: mathsolve mcp needs the mcp extra: pip install 'mathsolve[mcp]'\n"
    assert proc.stdout == ""


def _raw_server(model: Path, errlog: Any, *args: str, preexec: Any = None) -> subprocess.Popen:
    """The server on pipes (stderr to `errlog`, a file: a pipe nobody reads would fill), past
    initialize and into a long solve's decode."""
    proc = subprocess.Popen([sys.executable, "-m", "mathsolve", "mcp", "--model", str(model), *THREADS, *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog, preexec_fn=preexec)
    assert proc.stdin is not None and proc.stdout is not None

    def send(message: dict) -> None:
        proc.stdin.write((json.dumps({"jsonrpc": "2.0", **message}) + "\n").encode())
        proc.stdin.flush()

    send({"id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                                      "clientInfo": {"name": "test", "version": "0"}}})
    assert json.loads(proc.stdout.readline())["id"] == 1
    send({"method": "notifications/initialized"})
    send({"id": 2, "method": "tools/call", "params": {"name": "solve", "arguments": LONG,
                                                       "_meta": {"progressToken": "p"}}})
    first = json.loads(proc.stdout.readline())  # decoding now
    assert first["method"] == "notifications/progress" and first["params"]["progressToken"] == "p"
    return proc


def _only_protocol(stdout: bytes) -> list[dict]:
    messages = [json.loads(line) for line in stdout.decode().splitlines()]
    assert all(m["jsonrpc"] == "2.0" for m in messages)
    return messages


def test_eof_on_stdin_ends_the_server_during_a_solve_with_exit_0(smollm2_gguf, tmp_path):
    errlog = tmp_path / "stderr.txt"
    with open(errlog, "wb") as err:
        proc = _raw_server(smollm2_gguf, err, "--verbose")  # llama.cpp's log on: it must all go to stderr
        assert proc.stdin is not None and proc.stdout is not None
        begin = time.perf_counter()
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    assert time.perf_counter() - begin < 10  # not the 1500 tokens' time
    _only_protocol(proc.stdout.read())
    text = errlog.read_text()
    assert "Traceback" not in text and "model loaded" in text and "llama_model_loader" in text


def test_ctrl_c_ends_the_server_during_a_solve_with_exit_0(smollm2_gguf, sigint_default, tmp_path):
    errlog = tmp_path / "stderr.txt"
    with open(errlog, "wb") as err:
        proc = _raw_server(smollm2_gguf, err, preexec=sigint_default)
        assert proc.stdin is not None and proc.stdout is not None
        begin = time.perf_counter()
        proc.send_signal(signal.SIGINT)  # stdin stays open: the client is still there
        assert proc.wait(timeout=30) == 0
    assert time.perf_counter() - begin < 10
    _only_protocol(proc.stdout.read())
    assert "Traceback" not in errlog.read_text()
    proc.stdin.close()
