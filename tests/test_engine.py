"""The llama.cpp engine on real small models: loading, stopping, streaming, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mathsolve.config import EngineConfig, SamplingConfig
from mathsolve.engine.local.engine import Completion, Engine, GenerationInterrupted, TextEvent, physical_cores
from mathsolve.engine.stream import ThinkSplitter, Utf8Stream, think_open_at_end
from mathsolve.errors import InputError, ModelError

GREEDY = SamplingConfig(temperature=0.0, max_tokens=24)


@pytest.fixture(scope="module")
def smol(smollm2_gguf) -> Engine:
    engine = Engine.load(EngineConfig(str(smollm2_gguf), n_ctx=1024, gpu=False))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def qwen(tiny_qwen3_gguf) -> Engine:
    """The tiny Qwen3 GGUF made by our converter (Qwen's template, stop tokens, think tags)."""
    engine = Engine.load(EngineConfig(str(tiny_qwen3_gguf), n_ctx=512, gpu=False))
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def bos_asking_gguf(tiny_qwen3_gguf, tmp_path_factory) -> Path:
    """The tiny Qwen3 with tokenizer.ggml.add_bos_token = true: llama.cpp's own default
    tokenization of it starts with BOS, so leaving BOS out is the engine's doing."""
    import shutil

    from gguf import GGUFReader

    path = tmp_path_factory.mktemp("bos") / "asks-for-bos.gguf"
    shutil.copyfile(tiny_qwen3_gguf, path)
    reader = GGUFReader(path, "r+")
    reader.fields["tokenizer.ggml.add_bos_token"].parts[-1][0] = 1
    reader.data.flush()
    del reader
    return path


# ---- loading --------------------------------------------------------------------------------


def _bad_files(tmp: Path, good: Path) -> dict[str, Path]:
    data = good.read_bytes()
    files = {
        "missing": tmp / "nope.gguf",
        "directory": tmp,
        "text": tmp / "text.gguf",
        "random-bytes": tmp / "random.gguf",
        "magic-then-random": tmp / "magic.gguf",
        "truncated": tmp / "truncated.gguf",
        "empty": tmp / "empty.gguf",
    }
    files["text"].write_text("this is not a model\n")
    files["random-bytes"].write_bytes(os.urandom(64 * 1024))
    files["magic-then-random"].write_bytes(b"GGUF" + os.urandom(64 * 1024))
    files["truncated"].write_bytes(data[: len(data) * 2 // 3])
    files["empty"].write_bytes(b"")
    return files


BAD = ["missing", "directory", "text", "random-bytes", "magic-then-random", "truncated", "empty"]


@pytest.mark.parametrize("kind", BAD, ids=BAD)
def test_bad_model_file_is_a_one_line_model_error_and_llama_cpp_stays_quiet(
    kind, tmp_path, smollm2_gguf, capfd
):
    path = _bad_files(tmp_path, smollm2_gguf)[kind]
    with pytest.raises(ModelError) as info:
        Engine.load(EngineConfig(str(path), gpu=False))
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # llama.cpp's own log is silent unless verbose


def test_load_reports_properties(smol, smollm2_gguf):
    assert smol.model_path == str(smollm2_gguf)
    assert smol.n_ctx == 1024
    assert smol.gpu_offload is False
    assert smol.load_seconds > 0
    assert smol.n_threads == physical_cores() >= 1
    assert "im_start" in smol.chat_template


def test_tokenize_parses_special_tokens(smol):
    ids = smol.tokenize("<|im_start|>user")
    assert ids[0] == smol.tokenize("<|im_start|>")[0]
    assert len(smol.tokenize("<|im_start|>")) == 1
    assert b"".join(smol.token_bytes(t) for t in smol.tokenize("héllo wörld")) == "héllo wörld".encode()


@pytest.mark.parametrize("text", ["hello", "<|im_start|>user\nx = 4<|im_end|>\n"],
                         ids=["plain", "chat-markup"])
def test_tokenize_adds_no_bos_even_when_the_gguf_asks_for_one(bos_asking_gguf, tiny_qwen3_dir,
                                                              text):
    import llama_cpp
    from tokenizers import Tokenizer

    lib = llama_cpp.Llama(model_path=str(bos_asking_gguf), vocab_only=True, verbose=False)
    bos = lib.token_bos()
    assert lib.tokenize(text.encode(), special=True)[0] == bos  # precondition: a BOS by default
    lib.close()
    expected = Tokenizer.from_file(str(tiny_qwen3_dir / "tokenizer.json")).encode(
        text, add_special_tokens=False).ids  # the tokenizer's own encoding, no BOS
    with Engine.load(EngineConfig(str(bos_asking_gguf), n_ctx=256, gpu=False)) as engine:
        ids = engine.tokenize(text)
    assert ids[0] != bos
    assert ids == expected


# ---- generation -----------------------------------------------------------------------------


def test_greedy_generation_is_deterministic_and_counts_tokens(smol):
    prompt = smol.render("What is 2+3?")
    a = smol.generate(prompt, GREEDY)
    b = smol.generate(prompt, GREEDY)
    assert isinstance(a, Completion)
    assert a.text == b.text and a.text
    assert a.finish_reason == "length" and a.completion_tokens == GREEDY.max_tokens
    assert a.prompt_tokens == len(smol.tokenize(prompt))
    assert a.seconds >= a.prompt_seconds > 0


def test_stop_token_ends_generation_and_is_not_in_the_text(smol):
    c = smol.generate(smol.render("Say only the word yes."), SamplingConfig(temperature=0, max_tokens=200))
    assert c.finish_reason == "stop"
    assert c.completion_tokens < 200
    assert "<|im_end|>" not in c.text and "<|endoftext|>" not in c.text


@pytest.mark.parametrize("max_tokens", [1, 7], ids=["one", "seven"])
def test_max_tokens_ends_with_length(smol, max_tokens):
    c = smol.generate(smol.render("Write a long story about a dragon."),
                      SamplingConfig(temperature=0, max_tokens=max_tokens))
    assert c.finish_reason == "length" and c.completion_tokens == max_tokens


def test_context_caps_max_tokens_with_length(smollm2_gguf):
    with Engine.load(EngineConfig(str(smollm2_gguf), n_ctx=64, gpu=False)) as engine:
        prompt = engine.render("Write a long story about a dragon.")
        n_prompt = len(engine.tokenize(prompt))
        c = engine.generate(prompt, SamplingConfig(temperature=0, max_tokens=1000))
    assert c.finish_reason == "length"
    assert c.completion_tokens == 64 - n_prompt


def test_prompt_longer_than_the_context_is_an_input_error(smollm2_gguf):
    with Engine.load(EngineConfig(str(smollm2_gguf), n_ctx=64, gpu=False)) as engine:
        with pytest.raises(InputError) as info:
            engine.generate(engine.render("two plus two " * 40), GREEDY)
    assert "\n" not in str(info.value) and "--ctx" in str(info.value)


def test_events_reassemble_the_completion_in_order(smol):
    events: list[TextEvent] = []
    c = smol.generate(smol.render("Name three colours."), GREEDY, on_event=events.append)
    assert "".join(e.text for e in events) == c.text
    assert {e.kind for e in events} == {"answer"}  # no think block: everything is answer
    assert all(e.sample == 0 for e in events)


def test_prompt_ending_in_open_think_streams_reasoning(smol):
    events: list[TextEvent] = []
    prompt = smol.render("What is 2+3?") + "<think>\n"
    c = smol.generate(prompt, GREEDY, on_event=events.append)
    kinds = [e.kind for e in events]
    assert kinds and kinds[0] == "reasoning"
    # Whatever the model writes: everything before a closing tag is reasoning, the rest answer.
    reasoning, tag, answer = c.text.partition("</think>")
    assert "".join(e.text for e in events if e.kind == "reasoning") == reasoning
    assert "".join(e.text for e in events if e.kind == "answer") == answer
    assert [e.text for e in events if e.kind not in ("reasoning", "answer")] in ([], [tag])


def test_multibyte_characters_split_across_tokens_are_never_emitted_broken(smol):
    prompt = smol.render("Say hello in Japanese.")
    events: list[TextEvent] = []
    c = smol.generate(prompt, SamplingConfig(temperature=0, max_tokens=30), on_event=events.append)
    split = [t for t in smol.tokenize(c.text) if _not_utf8(smol.token_bytes(t))]
    assert split, "precondition: this output has characters spread over several tokens"
    assert "\ufffd" not in c.text
    assert all("\ufffd" not in e.text for e in events)
    assert "".join(e.text for e in events) == c.text
    assert any(ord(ch) > 0x3000 for ch in c.text)


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_ctrl_c_stops_at_once_and_keeps_the_partial_text(smol):
    seen: list[str] = []

    def interrupt_after_five(event: TextEvent) -> None:
        seen.append(event.text)
        if len(seen) == 5:
            raise KeyboardInterrupt

    prompt = smol.render("Write a long story about a dragon.")
    with pytest.raises(GenerationInterrupted) as info:
        smol.generate(prompt, SamplingConfig(temperature=0, max_tokens=100), on_event=interrupt_after_five)
    assert isinstance(info.value, KeyboardInterrupt)
    (partial,) = info.value.completions
    assert partial.finish_reason == "interrupted"
    assert partial.text == "".join(seen) and partial.completion_tokens < 100
    # the engine is still usable and unchanged by the interruption
    assert smol.generate(prompt, GREEDY).text == Engine_fresh_text(smol, prompt)


def Engine_fresh_text(smol: Engine, prompt: str) -> str:
    with Engine.load(EngineConfig(smol.model_path, n_ctx=1024, gpu=False)) as fresh:
        return fresh.generate(prompt, GREEDY).text


def test_prefix_reuse_skips_the_shared_prompt_head_and_changes_nothing(smol, smollm2_gguf):
    first, second = smol.render("What is 7 times 6?"), smol.render("What is 9 minus 4?")
    smol.generate(first, GREEDY)
    reused = smol.generate(second, GREEDY)
    evaluated = smol.last_prefill_tokens
    assert evaluated < len(smol.tokenize(second)) // 2  # the system prompt was not re-evaluated
    assert reused.text == Engine_fresh_text(smol, second)


# ---- Qwen3 (our converter's tiny model) ------------------------------------------------------


def test_qwen_stop_tokens_are_im_end_and_endoftext(qwen):
    for text in ("<|im_end|>", "<|endoftext|>"):
        (token,) = qwen.tokenize(text)
        assert qwen.is_stop(token)
    assert not qwen.is_stop(qwen.tokenize("<think>")[0])


def test_qwen_render_uses_the_gguf_template(qwen):
    prompt = qwen.render("x^2=4")
    assert prompt.startswith("<|im_start|>system\nPlease reason step by step")
    assert prompt.endswith("<|im_start|>assistant\n")


def test_qwen_generation_streams_events_that_reassemble_the_text(qwen):
    events: list[TextEvent] = []
    c = qwen.generate(qwen.render("1+1"), SamplingConfig(seed=3, max_tokens=20), on_event=events.append)
    assert "".join(e.text for e in events) == c.text
    assert c.completion_tokens >= 1


# ---- the splitter and UTF-8 stream on strings ------------------------------------------------

SPLITS = {
    "whole-think": (["<think>a b</think>answer"], False),
    "tags-split-across-chunks": (["<th", "ink>rea", "soning</", "thi", "nk>\n\nans", "wer"], False),
    "no-think-block": (["just ", "an answer <b>bold</b>"], False),
    "open-in-prompt": (["still thinking</think>done"], True),
    "one-char-at-a-time": (list("<think>x</think>y"), False),
    "lookalike-not-a-tag": (["<thin", "g> and </thinker>"], False),
}


@pytest.mark.parametrize("chunks,in_think", SPLITS.values(), ids=SPLITS.keys())
def test_splitter_classifies_reasoning_answer_and_tags(chunks, in_think):
    splitter = ThinkSplitter(in_think=in_think)
    pieces = [p for chunk in chunks for p in splitter.feed(chunk)] + splitter.flush()
    text = "".join(chunks)
    assert "".join(t for _, t in pieces) == text
    expected_reasoning, expected_answer, state = "", "", in_think
    for part in _tag_split(text):
        if part in ("<think>", "</think>"):
            state = part == "<think>"
        elif state:
            expected_reasoning += part
        else:
            expected_answer += part
    assert "".join(t for k, t in pieces if k == "reasoning") == expected_reasoning
    assert "".join(t for k, t in pieces if k == "answer") == expected_answer
    assert [t for k, t in pieces if k == "tag"] == [p for p in _tag_split(text) if p in ("<think>", "</think>")]


def _tag_split(text: str) -> list[str]:
    import re

    return [p for p in re.split(r"(</?think>)", text) if p]


def test_splitter_never_emits_half_a_tag():
    splitter = ThinkSplitter()
    assert splitter.feed("<think>abc</th") == [("tag", "<think>"), ("reasoning", "abc")]
    assert splitter.feed("ink>") == [("tag", "</think>")]


def test_think_open_at_end_detects_prompt_state():
    assert think_open_at_end("<|im_start|>assistant\n<think>\n")
    assert not think_open_at_end("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert not think_open_at_end("<|im_start|>assistant\n")


@pytest.mark.parametrize("text", ["é", "€", "😀", "a😀b€c"], ids=["2-byte", "3-byte", "4-byte", "mixed"])
def test_utf8_stream_holds_incomplete_characters(text):
    data = text.encode()
    for cut in range(1, len(data)):
        stream = Utf8Stream()
        head = stream.feed(data[:cut])
        assert "\ufffd" not in head
        assert head + stream.feed(data[cut:]) + stream.flush() == text


def test_utf8_stream_drops_a_character_cut_off_at_the_end_and_replaces_invalid_bytes():
    stream = Utf8Stream()
    assert stream.feed("ok😀".encode()[:-1]) == "ok"
    assert stream.flush() == ""
    assert Utf8Stream().feed(b"a\xffb") == "a\ufffdb"


def test_ctrl_c_during_a_long_prompt_stops_the_prefill(smollm2_gguf, sigint_default):
    import signal
    import threading
    import time

    once = SamplingConfig(temperature=0, max_tokens=1)
    with Engine.load(EngineConfig(str(smollm2_gguf), n_ctx=2048, gpu=False)) as engine:
        # A prompt as long, first in full: it sizes the context (so the next call goes
        # straight to its prefill) and measures what a whole prefill of this length costs.
        other = engine.render("one plus one " * 600)
        full = engine.generate(other, once)
        prompt = engine.render("two plus two " * 600)
        n_prompt = len(engine.tokenize(prompt))
        assert engine.last_prefill_tokens > 1500 and abs(len(engine.tokenize(other)) - n_prompt) < 20
        timer = threading.Timer(0.05, lambda: os.kill(os.getpid(), signal.SIGINT))
        start = time.perf_counter()
        timer.start()
        with pytest.raises(GenerationInterrupted) as info:
            engine.generate(prompt, once)
        stopped_after = time.perf_counter() - start
        timer.join()
        assert info.value.completions[0].finish_reason == "interrupted"
        assert info.value.completions[0].completion_tokens == 0  # stopped before any token
        # Cut short inside the prefill, not after it (a SIGINT handled only once the whole
        # prompt is evaluated takes as long as the full prefill above).
        assert stopped_after < full.prompt_seconds / 2, (stopped_after, full.prompt_seconds)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
        c = engine.generate(engine.render("1+1"), SamplingConfig(temperature=0, max_tokens=3))
        assert c.completion_tokens == 3


def test_a_process_that_ignores_ctrl_c_keeps_ignoring_it_during_a_prompt(smollm2_gguf):
    """Under nohup (SIGINT ignored) the prefill must not install a Ctrl-C handler of its own."""
    import subprocess
    import sys

    code = f"""
import os, signal, threading
from mathsolve.config import EngineConfig, SamplingConfig
from mathsolve.engine.local.engine import Engine
signal.signal(signal.SIGINT, signal.SIG_IGN)
e = Engine.load(EngineConfig({str(smollm2_gguf)!r}, n_ctx=2048, gpu=False))
prompt = e.render("two plus two " * 300)
threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
c = e.generate(prompt, SamplingConfig(temperature=0, max_tokens=4))
print(c.finish_reason, c.completion_tokens, signal.getsignal(signal.SIGINT) is signal.SIG_IGN)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["length", "4", "True"]


def test_cancel_from_another_thread_ends_the_decode_in_flight_and_leaves_the_engine_as_it_was(smol):
    # The MCP server's cancel: cancel() sets a flag llama.cpp reads between graph nodes, so the
    # llama_decode running now returns (rc 2) instead of finishing its step.
    import threading

    prompt = smol.render("Write a long story about a dragon.")
    sampling = SamplingConfig(seed=3, temperature=1.0, top_p=1.0, top_k=0, max_tokens=40)
    before = smol.generate(prompt, sampling)
    events: list[TextEvent] = []

    def on_event(event: TextEvent) -> None:
        if not events:
            aborter = threading.Thread(target=smol.cancel)  # from another thread, as the server does
            aborter.start()
            aborter.join()
        events.append(event)

    with pytest.raises(GenerationInterrupted) as stopped:
        smol.generate(prompt, sampling, on_event=on_event)
    (cut,) = stopped.value.completions
    assert cut.finish_reason == "interrupted"
    assert len(cut.tokens) <= 1 < len(before.tokens)  # nothing decoded after the cancel
    assert smol.generate(prompt, sampling).tokens == before.tokens  # the next call is as before
