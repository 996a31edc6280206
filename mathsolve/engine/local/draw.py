"""Engine: each running sample's next token from the last decode's logits (LlamaContext).

The "vector" path draws every row at once with engine.local.sampling's BatchSampler over a numpy
view of llama.cpp's logits buffer; the "chain" and "graph" paths ask llama.cpp's sampler
chains (on the graph path llama.cpp has drawn inside its graph and the chain returns it).
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

from mathsolve.config import SamplerPath
from mathsolve.engine.local.samples import SampleState

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from mathsolve.engine.local.sampling import BatchSampler


class RowSampler:
    def __init__(self, n_vocab: int, threads: int) -> None:
        self._n_vocab = n_vocab
        self._threads = threads
        self._vector: BatchSampler | None = None
        self._logits: tuple[int | None, NDArray[np.float32]] | None = None  # (address, numpy view)

    def close(self) -> None:
        """The vector sampler's threads end."""
        if self._vector is not None:
            self._vector.close()
            self._vector = None

    def forget_logits(self) -> None:
        """A new context: its logits buffer is another."""
        self._logits = None

    def sample(self, ctx: Any, slots: int, outputs: list[int], rows: list[SampleState],
               path: SamplerPath) -> list[int]:
        """The next token of each row; `outputs` are the rows' indices in the decoded batch."""
        import llama_cpp

        if path == "vector":
            return self._sample_vector(ctx, slots, rows)
        return [llama_cpp.llama_sampler_sample(seq.chain, ctx, at) for at, seq in zip(outputs, rows)]

    def _sample_vector(self, ctx: Any, slots: int, rows: list[SampleState]) -> list[int]:
        import numpy as np

        from mathsolve.engine.local.sampling import BatchSampler

        if self._vector is None:
            self._vector = BatchSampler(self._n_vocab, self._threads)
        n = len(rows)
        logits = self._logits_view(ctx, slots)[:n]
        if n == 1:  # K = 1: no arrays for one seed and one step
            seq = rows[0]
            return [self._vector.sample_one(logits[0], seq.sampling, seq.sampling.seed, seq.steps)]
        seeds = np.fromiter((seq.sampling.seed for seq in rows), dtype=np.int64, count=n)
        steps = np.fromiter((seq.steps for seq in rows), dtype=np.int64, count=n)
        first = rows[0].sampling
        if all(seq.sampling.draw_key == first.draw_key for seq in rows):
            tokens: list[int] = self._vector.sample(logits, first, seeds, steps).tolist()
            return tokens
        return [self._vector.sample_one(logits[i], seq.sampling, seq.sampling.seed, seq.steps)
                for i, seq in enumerate(rows)]  # mixed samplings in one batch: row by row

    def _logits_view(self, ctx: Any, slots: int) -> NDArray[np.float32]:
        """All rows of llama.cpp's logits buffer as one numpy array, made again only when
        llama.cpp moves the buffer (building the view costs more than a K = 1 draw)."""
        import llama_cpp
        import numpy as np

        ptr = llama_cpp.llama_get_logits(ctx)  # also puts the rows in batch order
        address = ctypes.c_void_p.from_buffer(ptr).value  # the pointer's value (a tenth of cast's cost)
        if self._logits is None or self._logits[0] != address:  # a step has <= one row a slot
            self._logits = (address, np.ctypeslib.as_array(ptr, shape=(slots, self._n_vocab)))
        return self._logits[1]
