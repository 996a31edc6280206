"""Engine: sampling many rows of logits at once, the sampler for the CPU.

Why not llama.cpp's sampler chain per sample: it builds a candidate array of every vocabulary
entry (151,936 for Qwen3) and, for the model card's protocol, runs an `expf` and a double sum
over all of them, one sample after another on one thread. At K = 32 on a small model that
costs more than the decode step itself. Here every row of one `llama_decode` is sampled
together with numpy, on all cores, touching the logits about once:

* greedy: argmax per row;
* top-k (k > 0, then top-p, min-p, temperature, draw on those k): the k largest logits are
  found through block maxima (the k-th largest block maximum bounds the k-th largest logit,
  so only k blocks can hold the top k), then the chain runs on a K x k array;
* the full vocabulary (top-k 0, top-p 1, optional min-p): an inverse-CDF draw in token order.
  When the tokens within 40/T of the best logit are few (an eighth of the vocabulary or less),
  only they are weighed: the rest hold under V * e^-40 (7e-13 for Qwen3) of the probability, far
  below float32's resolution of the total. Otherwise one softmax pass, block sums, and the
  draw inside the chosen block.

The order of the chain and the cut-offs are llama.cpp's (top-k -> top-p -> min-p ->
temperature -> draw), so the distribution sampled is the same; the random numbers are not.
Each draw uses u = hash(seed, step): a sample's tokens depend on its seed and the logits
only, not on which rows share the batch. Top-p without top-k (a sort of the whole
vocabulary) is left to llama.cpp's chain (`vectorisable` says so).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mathsolve.config import Sampler, SamplerPath, SamplingConfig

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    from numpy.typing import NDArray

_BLOCK = 1024  # columns per block in top_k (151,936 = 148 x 1024 + 384)
_ROWS = 32  # slices in top_k_row: 151,936 = 32 x 4,748 groups
_SUM_BLOCK = 1024  # columns per block of the full-vocabulary draw
_CUT_NATS = 40.0  # full vocabulary: weights below e^-40 of the best are left out (see above)


PATH_TEXT: dict[SamplerPath, str] = {
    "graph": "graph (llama.cpp samples inside its compute graph; only token ids leave the device)",
    "vector": "vector (every row of a step at once, numpy on all cores)",
    "chain": "chain (llama.cpp's sampler chain, one sample after another)",
}


def describe_path(path: SamplerPath) -> str:
    return PATH_TEXT[path]


def choose_path(wanted: Sampler, *, gpu: bool, graph_available: bool,
                samplings: list[SamplingConfig]) -> SamplerPath:
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


_M64 = (1 << 64) - 1


def uniform(seed: int, step: int) -> float:
    """uniforms() for one (seed, step), in plain Python (a numpy call costs more)."""
    z = ((((seed << 32) ^ step) & _M64) + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    z ^= z >> 31
    return (z >> 11) * (1.0 / (1 << 53))


def uniforms(seeds: np.ndarray, steps: np.ndarray) -> NDArray[np.float64]:
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
    out: NDArray[np.float64] = (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return out


def top_k(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
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
    if main != vocab:  # rows of the tail come after all the others: put them back in order
        order = np.argsort(row, kind="stable")
        row, ids, vals = row[order], ids[order], vals[order]
    pos = np.arange(len(row)) - (np.cumsum(counts) - counts)[row]
    cand = np.full((n, width), -np.inf, dtype=logits.dtype)
    cand_ids = np.zeros((n, width), dtype=np.int64)
    cand[row, pos] = vals
    cand_ids[row, pos] = ids
    if width > k:
        part = np.argpartition(cand, width - k, axis=1)[:, width - k:]
        cand, cand_ids = cand[rows[:, None], part], cand_ids[rows[:, None], part]
    return _sorted(cand, cand_ids)


def top_k_row(row: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """top_k for one row (K = 1), the same bound over other groups: group g holds the logits
    g, g + C, g + 2C, ... (C = vocab // _ROWS), so the group maxima are one element-wise
    maximum of _ROWS contiguous slices (numpy's fastest reduction; a maximum per 1,024-wide
    block reduces along a short inner axis and costs twice as much), and the k chosen groups
    are _ROWS x k logits. Any partition gives the same k best: every logit >= the bound is
    looked at, and ties are ordered by token id."""
    import numpy as np

    vocab = row.shape[0]
    k = max(1, min(k, vocab))
    groups = vocab // _ROWS
    main = groups * _ROWS
    if k * 4 > groups:
        part = np.argpartition(row, vocab - k)[vocab - k:]
        vals, ids = row[part], part
    else:
        tiles = row[:main].reshape(_ROWS, groups)
        maxima = tiles.max(axis=0)
        chosen = np.argpartition(maxima, groups - k)[groups - k:]
        bound = maxima[chosen].min()
        near = tiles[:, chosen]  # (_ROWS, k)
        flat = np.flatnonzero(near >= bound)
        ids = (flat // k) * groups + chosen[flat % k]
        vals = near.ravel()[flat]
        if main != vocab and row[main:].max() >= bound:  # the short tail
            tail = np.flatnonzero(row[main:] >= bound)
            ids = np.concatenate([ids, tail + main])
            vals = np.concatenate([vals, row[main:][tail]])
    vals, ids = _sorted(vals, ids)
    return vals[:k], ids[:k]


def _sorted(vals: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest first, equal logits by token id: one order whatever found the candidates."""
    import numpy as np

    order = np.lexsort((ids, -vals), axis=-1)
    if vals.ndim == 1:
        return vals[order], ids[order]
    rows = np.arange(len(vals))[:, None]
    return vals[rows, order], ids[rows, order]


def sample_row(row: np.ndarray, s: SamplingConfig, u: float) -> int:
    """One row (K = 1): the same top k and the same chain as a batch row, with 1-D arrays."""
    vals, ids = top_k_row(row, s.top_k)
    return int(ids[draw_from_top(vals.tolist(), s, u)])


def draw_from_top(v: list[float], s: SamplingConfig, u: float) -> int:
    """top-p -> min-p -> temperature -> draw on the k best logits `v` (sorted, largest
    first); returns the index drawn. Plain Python in double precision: on k values it costs
    less than numpy calls, and every row of every batch size takes the same arithmetic, so
    a sample's tokens do not depend on the other rows."""
    keep = len(v)
    if s.top_p < 1.0:  # the first entry whose running probability reaches top_p is kept
        w = [math.exp(x - v[0]) for x in v]
        total, run = sum(w), 0.0
        for i, x in enumerate(w):
            run += x / total
            if run >= s.top_p:
                keep = i + 1
                break
    if s.min_p > 0.0:
        floor = v[0] + math.log(s.min_p)
        keep = min(keep, sum(1 for x in v[:keep] if x >= floor))
    inv = 1.0 / s.temperature
    cum, run = [], 0.0
    for x in v[:keep]:
        run += math.exp((x - v[0]) * inv)
        cum.append(run)
    target = u * run
    return next((i for i, c in enumerate(cum) if c >= target), keep - 1)


def _chain_on_top_k(logits: np.ndarray, s: SamplingConfig, u: np.ndarray) -> np.ndarray:
    """top-k -> top-p -> min-p -> temperature -> draw, on the k best of each row."""
    import numpy as np

    vals, ids = top_k(logits, s.top_k)
    rows, draws = vals.tolist(), u.tolist()
    return np.array([ids[r, draw_from_top(rows[r], s, draws[r])] for r in range(len(rows))])


def _weights(x: np.ndarray, shift: float, inv: float, cut: float | None,
             out: np.ndarray) -> np.ndarray:
    """exp((x - shift) / T), zero below the min-p cut: the unnormalised probabilities. The
    same operations on the same logits give the same bits, so a block can be recomputed."""
    import numpy as np

    with np.errstate(over="ignore", under="ignore"):  # such a row is redone with a shift
        if shift == 0.0 and inv == 1.0:
            np.exp(x, out=out)
        else:
            np.subtract(x, np.float32(shift), out=out)
            if inv != 1.0:
                np.multiply(out, np.float32(inv), out=out)
            np.exp(out, out=out)
    if cut is not None:
        out[x < cut] = 0.0
    return out


def _near_best(row: np.ndarray, best: float, inv: float, cut: float | None) -> np.ndarray | None:
    """The ids (in token order) of the logits within _CUT_NATS / inv of the best one (`best`,
    the row's maximum) and above the min-p cut; None when they are too many for this to pay."""
    import numpy as np

    if not math.isfinite(best):
        return None
    low = best - _CUT_NATS / inv
    if cut is not None:
        low = max(low, cut)
    ids = np.flatnonzero(row >= low)
    if len(ids) * 8 > len(row):
        return None
    return ids


def _full_vocabulary(logits: np.ndarray, s: SamplingConfig, u: np.ndarray,
                     scratch: np.ndarray) -> np.ndarray:
    """Softmax over every token that counts (optionally cut by min-p), inverse CDF.

    A row with few likely tokens weighs only those (`_near_best`); any other row goes through
    the block path below, decided by that row alone. Each row's maximum is found once."""
    import numpy as np

    n = logits.shape[0]
    inv = 1.0 / s.temperature
    bests: list[float] = logits.max(axis=1).tolist()
    cuts = [b + math.log(s.min_p) for b in bests] if s.min_p > 0.0 else [None] * n
    picks = np.zeros(n, dtype=np.int64)
    rest: list[int] = []
    for r in range(n):
        ids = _near_best(logits[r], bests[r], inv, cuts[r])
        if ids is None:
            rest.append(r)
            continue
        cum = np.cumsum(np.exp((logits[r, ids].astype(np.float64) - bests[r]) * inv))
        picks[r] = ids[min(int(np.searchsorted(cum, u[r] * cum[-1])), len(ids) - 1)]
    if rest:
        picks[rest] = _by_blocks(logits, rest, s, u[rest], scratch, [cuts[r] for r in rest],
                                 [bests[r] for r in rest])
    return picks


def _by_blocks(logits: np.ndarray, rows: list[int], s: SamplingConfig, u: np.ndarray,
               scratch: np.ndarray, cuts: list[float | None], bests: list[float]) -> np.ndarray:
    """Softmax over every token of logits[rows] (optionally cut by min-p), inverse CDF by blocks.

    Row by row, into `scratch` (one row, padded with zeros to whole blocks, small enough to
    stay in the core's cache): the exp of every logit, summed per block. The running sum of
    the blocks picks a block; that block's weights are computed again to pick the token.
    A row is shifted by its maximum only when exp would overflow or vanish without it (no
    extra pass over the logits otherwise), decided by that row alone.
    """
    import numpy as np

    n, vocab = len(rows), logits.shape[1]
    inv = 1.0 / s.temperature
    shifts = [0.0] * n
    tiles = scratch.reshape(-1, _SUM_BLOCK)
    sums = np.empty((n, len(tiles)), dtype=np.float64)
    for r, row in enumerate(rows):
        _weights(logits[row], 0.0, inv, cuts[r], scratch[:vocab])
        with np.errstate(over="ignore", invalid="ignore"):  # inf: redone with the shift below
            block_sums = tiles.sum(axis=1)
            total = float(block_sums.sum())
        if not (math.isfinite(total) and total > 1e-30):  # overflow, or all underflowed
            shifts[r] = bests[r]
            _weights(logits[row], shifts[r], inv, cuts[r], scratch[:vocab])
            block_sums = tiles.sum(axis=1)
        sums[r] = block_sums
    cum = np.cumsum(sums, axis=1)
    target = u * cum[:, -1]
    blocks = np.minimum((cum < target[:, None]).sum(axis=1), len(tiles) - 1).tolist()
    picks = []
    for r, b in enumerate(blocks):
        start, stop = b * _SUM_BLOCK, min(vocab, (b + 1) * _SUM_BLOCK)
        seg = _weights(logits[rows[r], start:stop], shifts[r], inv, cuts[r],
                       np.empty(stop - start, dtype=np.float32))
        inside = np.cumsum(seg, dtype=np.float64) + (cum[r, b - 1] if b else 0.0)
        picks.append(start + min(int(np.searchsorted(inside, target[r])), stop - start - 1))
    return np.array(picks)


class BatchSampler:
    """Samples the rows of one decode step; rows are split across `threads` threads (numpy
    releases the GIL in its loops, so the passes over the logits run on every core)."""

    # Rows per thread below which a hand-off costs more than it saves (measured on 2 cores):
    # a full-vocabulary row costs ~0.35 ms, a top-k row ~0.05 ms.
    MIN_ROWS_PER_THREAD = {True: 4, False: 16}

    def __init__(self, n_vocab: int, threads: int = 1) -> None:
        self.n_vocab = n_vocab
        self.threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._buffer: NDArray[np.float32] | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def sample_one(self, row: np.ndarray, s: SamplingConfig, seed: int, step: int) -> int:
        """sample() for a single row, the same token, without building arrays for it."""
        if s.temperature <= 0:
            return int(row.argmax())
        if s.top_k > 0:
            return sample_row(row, s, uniform(seed, step))
        import numpy as np

        return int(self.sample(row[None, :], s, np.array([seed]), np.array([step]))[0])

    def sample(self, logits: np.ndarray, s: SamplingConfig, seeds: np.ndarray,
               steps: np.ndarray) -> np.ndarray:
        """Token ids for every row of `logits` (n x vocab), all under the sampling `s`."""
        import numpy as np

        n = logits.shape[0]
        if s.temperature <= 0:
            greedy: NDArray[np.intp] = logits.argmax(axis=1)
            return greedy
        u = uniforms(seeds, steps)
        full = s.top_k <= 0
        if full:  # allocated here, before the threads start
            self._scratch()
        parts = max(1, min(self.threads, n // self.MIN_ROWS_PER_THREAD[full]))
        if parts == 1:
            return self._rows(logits, s, u, 0, n, full, 0)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # not imported for K = 1

            self._pool = ThreadPoolExecutor(max_workers=self.threads - 1,
                                            thread_name_prefix="mathsolve-sampler")
        cuts = [n * i // parts for i in range(parts + 1)]
        jobs = [self._pool.submit(self._rows, logits, s, u, cuts[i], cuts[i + 1], full, i)
                for i in range(1, parts)]
        first = self._rows(logits, s, u, cuts[0], cuts[1], full, 0)
        return np.concatenate([first, *(job.result() for job in jobs)])

    def _scratch(self) -> NDArray[np.float32]:
        """One padded row of weights per thread, for full-vocabulary draws."""
        import numpy as np

        if self._buffer is None:
            width = -(-self.n_vocab // _SUM_BLOCK) * _SUM_BLOCK
            self._buffer = np.zeros((self.threads, width), dtype=np.float32)
        return self._buffer

    def _rows(self, logits: np.ndarray, s: SamplingConfig, u: NDArray[np.float64], a: int, b: int,
              full: bool, part: int = 0) -> np.ndarray:
        if full:
            return _full_vocabulary(logits[a:b], s, u[a:b], self._scratch()[part])
        return _chain_on_top_k(logits[a:b], s, u[a:b])
