"""Output: a live terminal stream, one plain line per problem, or JSON lines. Only this decides looks."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from mathsolve.output.records import result_json
from mathsolve.solving.inputs import Problem
from mathsolve.solving.solve import Result

if TYPE_CHECKING:
    from mathsolve.engine.stream import EventKind

REASONING_STYLE = "dim italic"
TAG_STYLE = "bold magenta"
EVENT_STYLES: dict[EventKind, str] = {"reasoning": REASONING_STYLE, "tag": TAG_STYLE}  # answers: plain


def _console(file: TextIO) -> Any:
    from rich.console import Console

    # rich writes no ANSI codes when the stream is not a terminal; with NO_COLOR it only drops
    # colours, so no colour system at all keeps bold/dim codes out too.
    plain: dict[str, Any] = {"color_system": None} if os.environ.get("NO_COLOR") else {}
    return Console(file=file, highlight=False, soft_wrap=True, **plain)


class Renderer:
    """Base: diagnostics go to stderr as one line each."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def begin(self, problem: Problem, samples: int) -> None:
        """A problem starts."""

    def event(self, event: Any) -> None:
        """A piece of generated text (engine.TextEvent)."""

    def end(self, result: Result) -> None:
        """A problem finished (answered or not)."""

    def interrupted(self) -> None:
        """Ctrl-C during a problem: close what is open, keep what was printed."""

    def note(self, message: str) -> None:
        print(f"mathsolve: {message}", file=self.err, flush=True)


def _no_answer_reason(result: Result) -> str:
    if result.error:
        return result.error
    if result.finish_reason == "length":
        return "no final answer: the output was cut off by the token limit (raise --max-tokens)"
    return "no final answer: the model gave no \\boxed{} answer"


def budget_words(result: Result) -> str | None:
    """What a budget did to this result, in words for the panel (None: no sample hit one)."""
    hits = [s.budget for s in result.samples if s.budget] if result.samples else \
        ([result.budget] if result.budget else [])
    if not hits:
        return None
    first = hits[0]
    what = ("time limit" if first.hit == "time_limit" else "thinking budget")
    where = f"after {first.at} tokens" + (" of reasoning" if first.in_think else "")
    if result.samples:
        return f"{len(hits)} of {len(result.samples)} samples reached the {what} and were steered to an answer"
    return f"reached the {what} {where}; steered to an answer"


def _one_line(text: str) -> str:
    return " ".join(text.split())


class PlainRenderer(Renderer):
    """stdout: one answer per line; stderr: diagnostics, and reasoning when asked."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None,
                 show_reasoning: bool = False) -> None:
        super().__init__(out, err)
        self.show_reasoning = show_reasoning

    def event(self, event: Any) -> None:
        if self.show_reasoning and getattr(event, "sample", 0) == 0:
            self.err.write(event.text)
            self.err.flush()

    def end(self, result: Result) -> None:
        if self.show_reasoning:
            self.err.write("\n")
        if not result.answered:
            self.note(f"problem {result.id}: {_no_answer_reason(result)}")
        self.out.write(_one_line(result.answer or "") + "\n")
        self.out.flush()


class JsonRenderer(PlainRenderer):
    """stdout: one JSON object per problem, flushed as each one finishes."""

    def end(self, result: Result) -> None:
        if self.show_reasoning:
            self.err.write("\n")
        self.out.write(json.dumps(result_json(result), ensure_ascii=False) + "\n")
        self.out.flush()


class TerminalRenderer(Renderer):
    """Live reasoning on a terminal, then an answer panel and a stats line.

    Text is appended as it arrives (no redraw of the growing text), so long outputs never
    flicker or duplicate; only the K-sample table is a rich Live display, and it is small.
    """

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None,
                 hide_reasoning: bool = False, load_seconds: float = 0.0) -> None:
        super().__init__(out, err)
        self.console = _console(self.out)
        self.hide_reasoning = hide_reasoning
        self.load_seconds = load_seconds
        self._live: Any = None
        self._status: Any = None
        self._samples: dict[int, dict[str, Any]] = {}

    def begin(self, problem: Problem, samples: int) -> None:
        if samples > 1:
            from rich.live import Live

            self._samples = {i: {"tokens": 0, "text": "", "answer": None} for i in range(samples)}
            # The table is built when Live refreshes (8 times a second), not on every token.
            self._live = Live(console=self.console, refresh_per_second=8,
                              get_renderable=self._table)
            self._live.start()
        elif self.hide_reasoning:
            self._status = self.console.status("Thinking…")
            self._status.start()

    def event(self, event: Any) -> None:
        if self._live is not None:
            self._sample_event(event)
        elif not self.hide_reasoning:
            style = EVENT_STYLES.get(event.kind)
            self.console.print(event.text, style=style, end="", markup=False)

    def _sample_event(self, event: Any) -> None:
        state = self._samples.setdefault(event.sample, {"tokens": 0, "text": "", "answer": None})
        state["tokens"] += 1
        state["text"] += event.text
        if "}" in event.text and "box" in state["text"]:
            from mathsolve.answers.extract import extract

            state["answer"] = extract(state["text"][-4000:], complete=False).answer

    def _table(self) -> Any:
        from collections import Counter

        from rich.table import Table

        from mathsolve.output.display import display

        table = Table(box=None, show_header=True, header_style="bold")
        for column in ("sample", "tokens", "answer"):
            table.add_column(column)
        for i, state in sorted(self._samples.items()):
            shown = display(state["answer"]) if state["answer"] else "…"
            table.add_row(str(i + 1), str(state["tokens"]), shown)
        counts = Counter(s["answer"] for s in self._samples.values() if s["answer"])
        if counts:
            lead, n = counts.most_common(1)[0]
            table.caption = f"leading: {display(lead)} ({n}/{len(self._samples)})"
        return table

    def _close_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._status is not None:
            self._status.stop()
            self._status = None

    def interrupted(self) -> None:
        self._close_live()
        self.console.print("\n[yellow]interrupted[/yellow]")

    def end(self, result: Result) -> None:
        from rich.panel import Panel
        from rich.text import Text

        from mathsolve.output.display import display

        self._close_live()
        if not self.hide_reasoning and result.samples is None:
            self.console.print()
        if result.error:
            self.console.print(f"[red]error:[/red] {result.error}", markup=True)
            return
        if result.answer is None:
            body, style = _no_answer_reason(result), "yellow"
        else:
            body, style = display(result.answer), "green"
        subtitle = []
        if result.support:
            subtitle.append(result.support if result.confidence is None
                            else f"{result.support} · confidence {result.confidence:.0%}")
        if result.check:
            subtitle.append(f"{result.check.status}: {result.check.reason}"
                            if result.check.reason else result.check.status)
        if result.fallback:
            subtitle.append("no \\boxed{}: taken from the text")
        self.console.print(Panel(Text(body), title="Answer", title_align="left", border_style=style,
                                 subtitle=" · ".join(subtitle) or None, subtitle_align="left"),
                           markup=False)
        rate = result.completion_tokens / result.seconds if result.seconds else 0.0
        self.console.print(
            f"finish: {result.finish_reason} · {result.prompt_tokens} prompt + "
            f"{result.completion_tokens} generated tokens · {rate:.1f} tokens/s · "
            f"{result.seconds:.1f} s · model load {self.load_seconds:.1f} s",
            style="dim", markup=False)
        budget = budget_words(result)
        if budget:
            self.console.print(f"budget: {budget}", style="yellow", markup=False)

