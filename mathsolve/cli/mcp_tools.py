"""Command line: the tools `mathsolve mcp` serves (solve, grade, check) and its stdio transport.

The MCP SDK reads each tool's input schema off its signature and its output schema off the
pydantic model it returns, so this module imports `mcp` and pydantic at module level;
mathsolve.cli.mcp_server imports it only once the command runs. The tool defaults are the
options `mathsolve mcp` was started with (the CLI's defaults unless given); the solves run on
mathsolve.cli.mcp_host's engine.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, cast

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.stdio import stdio_server
from mcp_types import CallToolResult, InputRequiredResult
from pydantic import BaseModel, Field, ValidationError

from mathsolve import __version__
from mathsolve.answers.verify import Check
from mathsolve.api import validate
from mathsolve.cli.mcp_host import EngineHost, Note
from mathsolve.config import CHECK_TIMEOUT_S, OPTIONS, Settings, settings_from
from mathsolve.errors import MathsolveError
from mathsolve.solving.inputs import Problem, check_text
from mathsolve.solving.solve import Result

_log = logging.getLogger("mathsolve")


def _option_field(name: str) -> Any:
    """The tool's field for config.OPTIONS[name]: the CLI's range as pydantic bounds (ge/gt,
    le/lt) and its help, flags named as fields (`--thinking-budget` reads `thinking_budget`),
    so the tool and the CLI say the same."""
    option, field = OPTIONS[name], dict[str, Any]()
    if option.low is not None:
        field["gt" if option.low_open else "ge"] = option.low
    if option.high is not None:
        field["lt" if option.high_open else "le"] = option.high
    if option.help:
        field["description"] = re.sub(r"--([a-z][a-z-]*)", lambda m: m[1].replace("-", "_"), option.help)
    return Field(**field)


CheckStatus = Literal["verified", "refuted", "unchecked"]


class CheckOutcome(BaseModel):
    """What the sympy check found: `verified` only after a real substitution or evaluation."""

    status: CheckStatus
    reason: str = Field(description="Why, in a few words.")

    @classmethod
    def of(cls, found: Check) -> CheckOutcome:
        return cls(status=cast(CheckStatus, found.status), reason=found.reason)


class VoteCount(BaseModel):
    answer: str
    count: int = Field(description="Samples whose answer is equivalent to this one.")


class Solved(BaseModel):
    """A solved problem: the answer, how sure the vote is, and what the check found."""

    answer: str | None = Field(description="The final answer (the last \\boxed{}; with several samples, "
                                            "the vote's winner); null when no sample gave one.")
    support: str | None = Field(None, description="Samples > 1: how many gave the answer, e.g. '3/4 samples'.")
    confidence: float | None = Field(None, description="Samples > 1: the Beta posterior that the answer is "
                                                       "the majority of all the samples that could be drawn.")
    check: CheckOutcome | None = Field(None, description="The sympy check of the answer against the problem; "
                                                         "null when there is no answer or check was false.")
    finish_reason: str | None = Field(description="How the shown completion ended: 'stop', or 'length' (the "
                                                  "token limit; its answer, if any, may be cut).")
    fallback: bool = Field(description="True when the answer came from a 'final answer is' line, not a box.")
    samples: int = Field(description="Samples drawn.")
    votes: list[VoteCount] | None = Field(None, description="Samples > 1: the answers and their votes.")
    prompt_tokens: int
    completion_tokens: int = Field(description="Tokens generated, all samples together.")
    seconds: float = Field(description="Time the solve took on the engine.")
    queued_seconds: float = Field(description="Time the request waited for the engine (the model's load, the "
                                              "solves before it: one runs at a time).")
    seed: int = Field(description="Seed of sample 1 (sample i used seed + i - 1): pass it again to redraw.")
    sampling: dict[str, Any] = Field(description="Every sampling setting used.")
    completion: str | None = Field(None, description="The shown completion's text (include_completion).")

    @classmethod
    def of(cls, result: Result, queued: float, with_text: bool) -> Solved:
        from mathsolve.output.records import sampling_json

        votes = [VoteCount(answer=v.answer, count=v.count) for v in result.votes or []]
        return cls(answer=result.answer, support=result.support, confidence=result.confidence,
                   check=CheckOutcome.of(result.check) if result.check else None,
                   finish_reason=result.finish_reason, fallback=result.fallback,
                   samples=len(result.samples) if result.samples else 1,
                   votes=votes if result.votes is not None else None, prompt_tokens=result.prompt_tokens,
                   completion_tokens=result.completion_tokens, seconds=result.seconds,
                   queued_seconds=round(queued, 4), seed=result.sampling.seed, sampling=sampling_json(result.sampling),
                   completion=result.completion if with_text else None)


class Graded(BaseModel):
    """A completion graded against a reference."""

    extracted: str | None = Field(description="The completion's final answer; null when it has none.")
    correct: bool | None = Field(description="null: no answer, or not comparable within the time limit.")
    fallback: bool = Field(description="True when the answer came from a 'final answer is' line, not a box.")
    reference_used: str | None = Field(description="The reference answer compared with (a solution's final "
                                                    "box, GSM8K's '#### X').")


class StdinLines:
    """stdin's lines read in the event loop, not in a thread: a cancelled read ends at once, so
    Ctrl-C ends the server while the client keeps stdin open (the SDK's reader thread would
    block in readline until the next line). For pipes, sockets and terminals on POSIX."""

    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._buffer = b""
        self._eof = False

    @staticmethod
    def usable(fd: int = 0) -> bool:
        if os.name != "posix":
            return False
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            return False
        return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)  # epoll refuses files, /dev/null

    def __aiter__(self) -> StdinLines:
        return self

    async def __anext__(self) -> str:
        while b"\n" not in self._buffer and not self._eof:
            await anyio.wait_readable(self._fd)
            try:
                chunk = os.read(self._fd, 1 << 16)  # readable: returns what is there
            except BlockingIOError:
                continue
            self._eof = not chunk
            self._buffer += chunk
        if not self._buffer:
            raise StopAsyncIteration
        line, newline, self._buffer = self._buffer.partition(b"\n")
        return (line + newline).decode("utf-8", "replace")


class ToolServer(MCPServer[Any]):
    """MCPServer whose argument errors are one line (the SDK's are pydantic's multi-line text),
    reading stdin with StdinLines where it can."""

    async def run_stdio_async(self) -> None:
        stdin = cast(Any, StdinLines()) if StdinLines.usable() else None
        async with stdio_server(stdin=stdin) as (read_stream, write_stream):  # stdout claimed as the SDK does
            lowlevel = self._lowlevel_server
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context[Any, Any] | None = None) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(f"Error executing tool {name}: {argument_error(exc.__cause__)}") from None
            raise


def argument_error(error: ValidationError) -> str:
    """`bad argument samples: Input should be greater than or equal to 1 (got 0)`, one line."""
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "arguments"
        got = "" if item["type"] == "missing" else f" (got {_short(item.get('input'))})"
        parts.append(f"bad argument {where}: {item['msg']}{got}")
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = repr(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def build_server(settings: Settings, default_seed: int | None, note: Note) -> tuple[ToolServer, EngineHost]:
    """The server with its three tools; the host loads the model when the server starts."""
    host = EngineHost(settings, note)
    s, o = settings.sampling, settings.solve

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Any]) -> AsyncIterator[None]:
        host.start()
        try:
            yield None
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(host.close)

    server = ToolServer("mathsolve", version=__version__, lifespan=lifespan,
                        log_level="INFO" if settings.engine.verbose else "WARNING",
                        instructions="A local math reasoning model (Qwen3-4B-RLOO-math-reasoning) with votes "
                                     "over samples, a sympy check and a confidence. `solve` takes seconds to "
                                     "minutes; `grade` and `check` need no model.")

    async def solve_tool(
        problem: Annotated[str, Field(min_length=1, description="The problem, as text (LaTeX welcome).")],
        ctx: Context,
        samples: Annotated[int, _option_field("samples")] = o.samples,
        temperature: Annotated[float, _option_field("temperature")] = s.temperature,
        top_p: Annotated[float, _option_field("top_p")] = s.top_p,
        top_k: Annotated[int, _option_field("top_k")] = s.top_k,
        min_p: Annotated[float, _option_field("min_p")] = s.min_p,
        seed: Annotated[int | None, _option_field("seed")] = default_seed,
        max_tokens: Annotated[int, _option_field("max_tokens")] = s.max_tokens,
        thinking_budget: Annotated[int | None, _option_field("thinking_budget")] = s.thinking_budget,
        time_limit: Annotated[float | None, _option_field("time_limit")] = s.time_limit,
        confidence: Annotated[float | None, _option_field("confidence")] = o.confidence,
        stop_when_decided: Annotated[bool, Field(description="Samples > 1: stop once the vote cannot change.")]
        = o.stop_when_decided,
        think: Annotated[bool, Field(description="false renders the prompt with enable_thinking=False.")]
        = o.think,
        check: Annotated[bool, Field(description="Run the sympy check of the answer.")] = o.check,
        include_completion: Annotated[bool, Field(description="Return the shown completion's text too.")]
        = False,
    ) -> Solved:
        """Solve a math problem with the local model: reason, box an answer, vote over `samples`,
        check it with sympy. Progress notifications while it decodes; cancel to stop it."""
        try:
            item = Problem("1", check_text(problem))
            asked = settings_from(dict(temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
                                       max_tokens=max_tokens, thinking_budget=thinking_budget,
                                       time_limit=time_limit, seed=seed, samples=samples, confidence=confidence,
                                       stop_when_decided=stop_when_decided, think=think, check=check),
                                  base=settings)
            validate(asked)
            sampling, options = asked.sampling, asked.solve
        except MathsolveError as exc:
            raise ToolError(one_line(exc)) from None
        try:
            result, queued = await host.solve(item, sampling, options,
                                              lambda done, message: ctx.report_progress(done, None, message))
        except MathsolveError as exc:
            raise ToolError(one_line(exc)) from None
        except (ToolError, anyio.get_cancelled_exc_class()):
            raise
        except Exception as exc:
            _log.exception("solve failed")
            raise ToolError(f"the engine failed: {type(exc).__name__}: {one_line(exc)}") from None
        return Solved.of(result, queued, include_completion)

    async def grade_tool(
        completion: Annotated[str, Field(description="Any model's output; its final answer is its last "
                                                     "\\boxed{}, else a 'final answer is X' line.")],
        reference: Annotated[str, Field(min_length=1, description="The expected answer, or a whole solution "
                                                                  "(MATH's with a box, GSM8K's '#### X').")],
        timeout: Annotated[float, Field(ge=0.1, le=60, description="Hard limit of the comparison, seconds.")]
        = CHECK_TIMEOUT_S,
    ) -> Graded:
        """Grade a completion against a reference answer (equivalence, not string match)."""
        from mathsolve.api import grade

        if not reference.strip():
            raise ToolError("reference is empty: give the expected answer")
        found = await anyio.to_thread.run_sync(lambda: grade(completion, reference, timeout=timeout))
        return Graded(extracted=found.extracted, correct=found.correct, fallback=found.fallback,
                      reference_used=found.reference)

    async def check_tool(
        problem: Annotated[str, Field(min_length=1, description="The problem the answer is for.")],
        answer: Annotated[str, Field(description="The answer to check, e.g. 'x = 2, x = -2'.")],
        timeout: Annotated[float, Field(ge=0.1, le=60, description="Hard limit of the check, seconds.")]
        = CHECK_TIMEOUT_S,
    ) -> CheckOutcome:
        """Check an answer against the problem with sympy (substitution into its equations, or
        evaluation of its arithmetic): `verified` only after a real check."""
        from mathsolve.answers.verify import check

        try:
            text = check_text(problem)
        except MathsolveError as exc:
            raise ToolError(one_line(exc)) from None
        found = await anyio.to_thread.run_sync(lambda: check(text, answer, timeout=timeout))
        return CheckOutcome.of(found)

    for tool in (solve_tool, grade_tool, check_tool):  # the schemas' titles: solveArguments, ...
        tool.__name__ = tool.__name__.removesuffix("_tool")
    server.add_tool(solve_tool, name="solve", title="Solve a math problem")
    server.add_tool(grade_tool, name="grade", title="Grade a completion")
    server.add_tool(check_tool, name="check", title="Check an answer")
    return server, host
