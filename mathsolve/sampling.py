"""Sampling many rows of logits at once: the solve flow's sampler for the CPU.

Why not llama.cpp's sampler chain per sample: it builds a candidate array of every vocabulary
entry (151,936 for Qwen3) and, for the model card's protocol, runs an `expf` and a double sum
over all of them, one sample after another on one thread. At K = 32 on a small model that
costs more than the decode step itself. Here every row of one `llama_decode` is sampled
together with numpy, on all cores, touching the logits about once:

* greedy: argmax per row;
* top-k (k > 0, then top-p, min-p, temperature, draw on those k): the k largest logits are
  found through block maxima (the k-th largest block maximum bounds the k-th largest logit,
  so only k blocks can hold the top k), then the chain runs on a K x k array;
* the full vocabulary (top-k 0, top-p 1, optional min-p): one softmax pass, block sums, and an
  inverse-CDF draw inside the chosen block.

The order of the chain and the cut-offs are llama.cpp's (top-k -> top-p -> min-p ->
temperature -> draw), so the distribution sampled is the same; the random numbers are not.
Each draw uses u = hash(seed, step): a sample's tokens depend on its seed and the logits
only, not on which rows share the batch. Top-p without top-k (a sort of the whole
vocabulary) is left to llama.cpp's chain (`vectorisable` says so).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .config import SamplingConfig

if TYPE_CHECKING:
    import numpy as np

_BLOCK = 1024  # columns per block in top_k (151,936 = 148 x 1024 + 384)
_SUM_BLOCK = 256  # columns per block of the full-vocabulary draw


PATH_TEXT = {
    "graph": "graph (llama.cpp samples inside its compute graph; only token ids leave the device)",
    "vector": "vector (every row of a step at once, numpy on all cores)",
    "chain": "chain (llama.cpp's sampler chain, one sample after another)",
}


def describe_path(path: str) -> str:
    return PATH_TEXT.get(path, path)


def choose_path(wanted: str, *, gpu: bool, graph_available: bool,
                samplings: list[SamplingConfig]) -> str:
    """The sampling path of a run. "auto": inside the graph on a GPU (only token ids cross to
    the host), else vectorised on the CPU where it applies, else llama.cpp's chain. An
    explicit choice is honoured where it can be (vector falls back to chain for top-p
    without top-k; graph needs a llama.cpp with backend sampling)."""
    if (wanted == "graph" or (wanted == "auto" and gpu)) and graph_available:
        return "graph"
    if wanted != "chain" and all(vectorisable(s) for s in samplings):
        return "vector"
    return "chain"


def vectorisable(s: SamplingConfig) -> bool:
    """True when this module samples `s` (else llama.cpp's chain does)."""
    return s.temperature <= 0 or s.top_k > 0 or s.top_p >= 1.0


def uniforms(seeds: "np.ndarray", steps: "np.ndarray") -> "np.ndarray":
    """One uniform in [0, 1) per (seed, step): splitmix64 of the pair, 53 bits.

    Counter-based, so a sample's n-th draw does not depend on the other samples.
    """
    import numpy as np

    x = (seeds.astype(np.uint64) << np.uint64(32)) ^ steps.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def top_k(logits: "np.ndarray", k: int) -> tuple["np.ndarray", "np.ndarray"]:
    """The k largest logits of each row, sorted descending, and their token ids.

    The k-th largest of the rows' block maxima, t, is at most the k-th largest logit (the k
    block maxima above it are k logits), so every top-k logit is >= t and lies in one of the
    k blocks whose maximum is >= t: one pass over the row for the block maxima, then a look
    at k blocks only.
    """
    import numpy as np

    n, vocab = logits.shape
    k = max(1, min(k, vocab))
    main = vocab - vocab % _BLOCK
    blocks = main // _BLOCK
    if k * 4 > blocks:  # large k: blocks would not narrow anything down
        part = np.argpartition(logits, vocab - k, axis=1)[:, vocab - k:]
        return _sorted(np.take_along_axis(logits, part, axis=1), part)
    tiles = logits[:, :main].reshape(n, blocks, _BLOCK)
    maxima = tiles.max(axis=2)
    chosen = np.argpartition(maxima, blocks - k, axis=1)[:, blocks - k:]  # (n, k)
    rows = np.arange(n)
    bound = maxima[rows[:, None], chosen].min(axis=1)
    near = tiles[rows[:, None], chosen].reshape(n, k * _BLOCK)
    flat = np.flatnonzero(near >= bound[:, None])
    row, col = np.divmod(flat, k * _BLOCK)
    ids = chosen[row, col // _BLOCK] * _BLOCK + col % _BLOCK
    vals = near[row, col]
    if main != vocab:  # the short tail block is always looked at
        tail = logits[:, main:]
        flat = np.flatnonzero(tail >= bound[:, None])
        trow, tcol = np.divmod(flat, vocab - main)
        row = np.concatenate([row, trow])
        ids = np.concatenate([ids, tcol + main])
        vals = np.concatenate([vals, tail[trow, tcol]])
    counts = np.bincount(row, minlength=n)
    width = int(counts.max())
    order = np.argsort(row, kind="stable")
    row, ids, vals = row[order], ids[order], vals[order]
    pos = np.arange(len(row)) - (np.cumsum(counts) - counts)[row]
    cand = np.full((n, width), -np.inf, dtype=logits.dtype)
    cand_ids = np.zeros((n, width), dtype=np.int64)
    cand[row, pos] = vals
    cand_ids[row, pos] = ids
    if width > k:
        part = np.argpartition(cand, width - k, axis=1)[:, width - k:]
        cand = np.take_along_axis(cand, part, axis=1)
        cand_ids = np.take_along_axis(cand_ids, part, axis=1)
    return _sorted(cand, cand_ids)


def top_k_row(row: "np.ndarray", k: int) -> tuple["np.ndarray", "np.ndarray"]:
    """top_k for one row: the same block bound with 1-D arrays (a third of the numpy calls'
    overhead, which is what one row costs)."""
    import numpy as np

    vocab = row.shape[0]
    k = max(1, min(k, vocab))
    main = vocab - vocab % _BLOCK
    blocks = main // _BLOCK
    if k * 4 > blocks:
        part = np.argpartition(row, vocab - k)[vocab - k:]
        vals, ids = row[part], part
    else:
        tiles = row[:main].reshape(blocks, _BLOCK)
        maxima = tiles.max(axis=1)
        chosen = np.argpartition(maxima, blocks - k)[blocks - k:]
        near = tiles[chosen]
        flat = np.flatnonzero(near >= maxima[chosen].min())
        ids = chosen[flat // _BLOCK] * _BLOCK + flat % _BLOCK
        vals = near.ravel()[flat]
        if main != vocab:
            tail = np.flatnonzero(row[main:] >= maxima[chosen].min())
            ids = np.concatenate([ids, tail + main])
            vals = np.concatenate([vals, row[main:][tail]])
    order = np.argsort(-vals, kind="stable")[:k]
    return vals[order], ids[order]


def _sorted(vals: "np.ndarray", ids: "np.ndarray") -> tuple["np.ndarray", "np.ndarray"]:
    import numpy as np

    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(ids, order, axis=1)


def _softmax(v: "np.ndarray") -> "np.ndarray":
    import numpy as np

    e = np.exp(v - v[:, :1])
    return e / e.sum(axis=1, keepdims=True)


def _draw(weights: "np.ndarray", u: "np.ndarray") -> "np.ndarray":
    """Inverse CDF: the first column whose running sum reaches u * total (llama.cpp's rule)."""
    import numpy as np

    cum = np.cumsum(weights, axis=1, dtype=np.float64)
    target = u * cum[:, -1]
    pick = (cum < target[:, None]).sum(axis=1)
    return np.minimum(pick, weights.shape[1] - 1)


def _chain_on_top_k(logits: "np.ndarray", s: SamplingConfig, u: "np.ndarray") -> "np.ndarray":
    """top-k -> top-p -> min-p -> temperature -> draw, on the k best of each row."""
    import numpy as np

    if logits.shape[0] == 1:
        vals, ids = top_k_row(logits[0], s.top_k)
        vals, ids = vals[None, :], ids[None, :]
    else:
        vals, ids = top_k(logits, s.top_k)
    keep = np.ones(vals.shape, dtype=bool)
    cols = np.arange(vals.shape[1])
    if s.top_p < 1.0:
        cum = np.cumsum(_softmax(vals), axis=1)
        count = (cum < s.top_p).sum(axis=1) + 1  # the first entry reaching top_p is kept
        keep &= cols[None, :] < count[:, None]
    if s.min_p > 0.0:
        keep &= vals >= vals[:, :1] + math.log(s.min_p)
    weights = np.exp((vals - vals[:, :1]) / s.temperature) * keep
    pick = _draw(weights, u)
    return ids[np.arange(len(ids)), pick]


def _full_vocabulary(logits: "np.ndarray", s: SamplingConfig, u: "np.ndarray",
                     out: "np.ndarray") -> "np.ndarray":
    """Softmax over every token (optionally cut by min-p), inverse CDF by blocks.

    `out` is (n, blocks * _SUM_BLOCK) with zeros past the vocabulary, so the last, short
    block needs no case of its own. The running sum picks a block, then a token in it.
    """
    import numpy as np

    n, vocab = logits.shape
    top = logits.max(axis=1)
    weights = out[:, :vocab]
    if s.temperature == 1.0 and -30.0 < top.min() and top.max() < 80.0:
        np.exp(logits, out=weights)  # no overflow or total underflow: the shift is not needed
    else:
        np.subtract(logits, top[:, None], out=weights)
        if s.temperature != 1.0:
            np.multiply(weights, 1.0 / s.temperature, out=weights)
        np.exp(weights, out=weights)
    if s.min_p > 0.0:  # llama.cpp's min-p cut, on the logits before temperature
        weights[logits < (top + math.log(s.min_p))[:, None]] = 0.0
    tiles = out.reshape(n, -1, _SUM_BLOCK)
    cum = np.cumsum(tiles.sum(axis=2), axis=1, dtype=np.float64)
    target = u * cum[:, -1]
    block = np.minimum((cum < target[:, None]).sum(axis=1), tiles.shape[1] - 1)
    rows = np.arange(n)
    before = np.where(block > 0, cum[rows, np.maximum(block - 1, 0)], 0.0)
    inside = before[:, None] + np.cumsum(tiles[rows, block], axis=1, dtype=np.float64)
    pick = (inside < target[:, None]).sum(axis=1)
    last = np.minimum(vocab - block * _SUM_BLOCK, _SUM_BLOCK) - 1  # rounding never picks padding
    return block * _SUM_BLOCK + np.minimum(pick, last)


class BatchSampler:
    """Samples the rows of one decode step; rows are split across `threads` threads (numpy
    releases the GIL in its loops, so the passes over the logits run on every core)."""

    MIN_ROWS_PER_THREAD = 4  # below this a thread hand-off costs more than it saves

    def __init__(self, n_vocab: int, threads: int = 1) -> None:
        self.n_vocab = n_vocab
        self.threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._buffer = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def sample(self, logits: "np.ndarray", s: SamplingConfig, seeds: "np.ndarray",
               steps: "np.ndarray") -> "np.ndarray":
        """Token ids for every row of `logits` (n x vocab), all under the sampling `s`."""
        import numpy as np

        n = logits.shape[0]
        if s.temperature <= 0:
            return logits.argmax(axis=1)
        u = uniforms(seeds, steps)
        full = s.top_k <= 0
        if full and (self._buffer is None or self._buffer.shape[0] < n):
            width = -(-self.n_vocab // _SUM_BLOCK) * _SUM_BLOCK
            self._buffer = np.zeros((n, width), dtype=np.float32)
        parts = max(1, min(self.threads, n // self.MIN_ROWS_PER_THREAD))
        if parts == 1:
            return self._rows(logits, s, u, 0, n, full)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads - 1,
                                            thread_name_prefix="mathsolve-sampler")
        cuts = [n * i // parts for i in range(parts + 1)]
        jobs = [self._pool.submit(self._rows, logits, s, u, a, b, full)
                for a, b in zip(cuts[1:-1], cuts[2:])]
        first = self._rows(logits, s, u, cuts[0], cuts[1], full)
        return np.concatenate([first, *(job.result() for job in jobs)])

    def _rows(self, logits, s: SamplingConfig, u, a: int, b: int, full: bool):  # noqa: ANN001
        if full:
            return _full_vocabulary(logits[a:b], s, u[a:b], self._buffer[a:b])
        return _chain_on_top_k(logits[a:b], s, u[a:b])
