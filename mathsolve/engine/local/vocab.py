"""Engine: a model's vocabulary as decoding uses it (decode.Vocabulary), each lookup made once.

Text to token ids, a token to its bytes, which tokens stop a sample, and the budget cue's
tokens. engine.Engine holds one and hands it to its context (context.LlamaContext), so a
sample reads the vocabulary without holding the engine.
"""

from __future__ import annotations

import ctypes
from typing import Any

from mathsolve.config import STOP_TOKENS


class Vocab:
    """The vocabulary of a loaded model (`vocab`: its llama_vocab pointer, which lives as
    long as the model), with the pieces, stop flags and cues looked up so far."""

    def __init__(self, vocab: Any) -> None:
        self._vocab = vocab
        self._pieces: dict[int, bytes] = {}
        self._stops: dict[int, bool] = {}
        self._cues: dict[tuple[bool, bool], list[int]] = {}
        self._stop_ids = self._find_stop_ids()

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text`: no BOS added, special tokens such as <|im_start|> parsed."""
        import llama_cpp

        data = text.encode("utf-8")
        size = len(data) + 8
        while True:
            buf = (llama_cpp.llama_token * size)()
            n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, size, False, True)
            if n >= 0:
                return list(buf[:n])
            size = -n

    def token_bytes(self, token: int) -> bytes:
        """The raw bytes of one token (special tokens rendered), possibly half a character."""
        piece = self._pieces.get(token)
        if piece is None:
            import llama_cpp

            buf = ctypes.create_string_buffer(64)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 64, 0, True)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, -n, 0, True)
            piece = self._pieces[token] = buf.raw[:n]
        return piece

    def is_stop(self, token: int) -> bool:
        stop = self._stops.get(token)
        if stop is None:
            import llama_cpp

            stop = token in self._stop_ids or bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))
            self._stops[token] = stop
        return stop

    def cue_tokens(self, in_think: bool, at_start: bool = False) -> list[int]:
        """The budget cue's tokens (see config.budget_cue)."""
        key = (in_think, at_start)
        cue = self._cues.get(key)
        if cue is None:
            from mathsolve.config import budget_cue

            cue = self._cues[key] = self.tokenize(budget_cue(in_think, at_start))
        return cue

    def _find_stop_ids(self) -> frozenset[int]:
        ids = set()
        for text in STOP_TOKENS:
            toks = self.tokenize(text)
            if len(toks) == 1:
                ids.add(toks[0])
        return frozenset(ids)
