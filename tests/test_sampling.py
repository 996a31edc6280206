"""Sampling is right, not only fast: every path (graph, vector, chain) draws from the
distribution llama.cpp's chain defines, never outside top-k / top-p / min-p, greedily picks the
argmax, and repeats itself under the reproducibility contract.

Distributions are checked with chi-square tests at fixed seeds (deterministic: they cannot
flake), each with a negative control showing the test would reject a wrong distribution.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from mathsolve.config import EngineConfig, SamplingConfig
from mathsolve.engine.local.engine import Engine
from mathsolve.engine.local.sampling import (
    BatchSampler,
    _by_blocks,
    _full_vocabulary,
    _near_best,
    top_k,
    top_k_row,
    uniforms,
)

PATHS = ["vector", "chain", "graph"]
PROBLEM = "Write a long story about a dragon."
CARD = dict(temperature=1.0, top_k=0, top_p=1.0)
CONFIGS = {
    "qwen-default": dict(temperature=0.6, top_k=20, top_p=0.95),
    "top-k-5-hot": dict(temperature=1.5, top_k=5, top_p=1.0),
    "top-p-0.5": dict(temperature=1.2, top_k=40, top_p=0.5),
    "min-p-0.2": dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.2),
    "card": CARD,
}


# ---- the reference: llama.cpp's chain, written plainly ----------------------------------------


def reference_probs(logits: np.ndarray, s: SamplingConfig) -> dict[int, float]:
    """top-k -> top-p -> min-p -> temperature -> softmax, as llama.cpp's sampler chain."""
    order = np.argsort(-logits, kind="stable")
    v = logits[order].astype(np.float64)
    if s.top_k > 0:
        order, v = order[:s.top_k], v[:s.top_k]
    if s.top_p < 1.0:
        p = np.exp(v - v[0])
        cum = np.cumsum(p / p.sum())
        keep = int(np.argmax(cum >= s.top_p)) + 1 if (cum >= s.top_p).any() else len(v)
        order, v = order[:keep], v[:keep]
    if s.min_p > 0.0:
        mask = v >= v[0] + math.log(s.min_p)
        order, v = order[mask], v[mask]
    w = np.exp((v - v[0]) / s.temperature)
    return dict(zip(order.tolist(), (w / w.sum()).tolist()))


def chi_square_rejects(counts: Counter, probs: dict[int, float]) -> bool:
    """True when the counts are not a draw from probs (p < 0.0005); rare tokens share a bin.
    A token with probability 0 that was drawn rejects at once."""
    n = sum(counts.values())
    if any(t not in probs for t in counts):
        return True
    stat, bins, rest_obs, rest_exp = 0.0, 0, 0, 0.0
    for token, p in probs.items():
        if n * p >= 5:
            stat += (counts.get(token, 0) - n * p) ** 2 / (n * p)
            bins += 1
        else:
            rest_obs += counts.get(token, 0)
            rest_exp += n * p
    if rest_exp >= 1:
        stat += (rest_obs - rest_exp) ** 2 / rest_exp
        bins += 1
    df = max(1, bins - 1)
    z = 3.29  # one-sided p = 0.0005; Wilson-Hilferty approximation of the chi-square quantile
    critical = df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3
    return stat > critical


# ---- the vectorised sampler on synthetic logits (real vocabulary size) -------------------------


def synthetic_logits(vocab: int, seed: int = 0) -> np.ndarray:
    """Noise plus a head of 30 strong tokens, so each cut-off of the chain matters."""
    rng = np.random.default_rng(seed)
    row = (rng.standard_normal(vocab) * 1.5).astype(np.float32)
    head = rng.choice(vocab, 30, replace=False)
    row[head] = np.linspace(14.0, 9.0, 30, dtype=np.float32)
    return row


@pytest.mark.parametrize("vocab", [151936, 49152, 100003, 448],
                         ids=["qwen3-vocab", "smollm2-vocab", "odd-vocab", "tiny"])
@pytest.mark.parametrize("k", [1, 5, 20, 40, 300])
def test_top_k_finds_the_k_largest_logits_of_every_row(vocab, k):
    rng = np.random.default_rng(k)
    logits = (rng.standard_normal((7, vocab)) * 3).astype(np.float32)
    logits[3, : vocab // 2] = 1.0  # ties: half a row of equal values
    vals, ids = top_k(logits, k)
    expected = -np.sort(-logits, axis=1)[:, :k]
    np.testing.assert_array_equal(vals, expected)  # the k largest values, sorted descending
    np.testing.assert_array_equal(np.take_along_axis(logits, ids, axis=1), vals)
    assert all(len(set(row)) == min(k, vocab) for row in ids.tolist())  # distinct tokens
    for i, row in enumerate(logits):  # K = 1's top_k_row (other groups): the same tokens, in order
        row_vals, row_ids = top_k_row(row, k)
        np.testing.assert_array_equal(row_vals, vals[i])
        np.testing.assert_array_equal(row_ids, ids[i])


def test_uniforms_depend_only_on_seed_and_step_and_are_uniform():
    seeds = np.repeat(np.arange(200), 500)
    steps = np.tile(np.arange(500), 200)
    u = uniforms(seeds, steps)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    counts = np.histogram(u, bins=50, range=(0, 1))[0]
    assert not chi_square_rejects(Counter(dict(enumerate(counts.tolist()))), {i: 0.02 for i in range(50)})
    again = uniforms(seeds[::-1].copy(), steps[::-1].copy())[::-1]
    np.testing.assert_array_equal(u, again)  # no hidden state: order of the rows is irrelevant
    assert len(np.unique(u)) == len(u)


@pytest.mark.parametrize("vocab", [151936, 448], ids=["qwen3-vocab", "tiny"])
@pytest.mark.parametrize("name", list(CONFIGS), ids=list(CONFIGS))
def test_vectorised_draws_follow_the_chain_distribution(vocab, name):
    s = SamplingConfig(**CONFIGS[name])
    row = synthetic_logits(vocab)
    probs = reference_probs(row, s)
    sampler = BatchSampler(vocab, threads=2)
    logits = np.tile(row, (100, 1))
    counts: Counter = Counter()
    for step in range(30):  # 3,000 draws: 100 rows (seeds) x 30 steps
        counts.update(sampler.sample(logits, s, np.arange(100), np.full(100, step)).tolist())
    sampler.close()
    assert not chi_square_rejects(counts, probs)
    wrong = reference_probs(row, SamplingConfig(**{**CONFIGS[name], "temperature": s.temperature * 2}))
    assert chi_square_rejects(counts, wrong)  # the test has the power to see a wrong temperature


@pytest.mark.parametrize("name", list(CONFIGS), ids=list(CONFIGS))
def test_a_rows_draw_does_not_depend_on_the_other_rows(name):
    """The contract's base: the same logits, seed and step give the same token whether the
    row is sampled alone, in a batch of 9, or split across threads; rows that need the shift
    (logits near overflow, or all far below zero) included."""
    s = SamplingConfig(**CONFIGS[name])
    rows = np.stack([synthetic_logits(151936, seed) for seed in range(9)])
    rows[2] += 95.0  # exp would overflow without the shift
    rows[5] -= 200.0  # exp would vanish everywhere without the shift
    rows[7] = wide_logits(151936, 7)  # few tokens near the best: weighed alone
    together, alone = BatchSampler(151936, threads=2), BatchSampler(151936, threads=1)
    seeds = np.arange(9) * 7 + 1
    for step in range(5):
        steps = np.full(9, step)
        batch = together.sample(rows, s, seeds, steps).tolist()
        single = [int(alone.sample(rows[i:i + 1], s, seeds[i:i + 1], steps[i:i + 1])[0])
                  for i in range(9)]
        assert batch == single
    probs = reference_probs(rows[2], s)  # and the shifted rows still draw only likely tokens
    assert all(token in probs for token in together.sample(np.repeat(rows[2:3], 20, axis=0), s,
                                                           np.arange(20), np.zeros(20)).tolist())


def test_greedy_vector_sampler_is_argmax():
    logits = (np.random.default_rng(3).standard_normal((9, 151936))).astype(np.float32)
    sampler = BatchSampler(151936)
    picks = sampler.sample(logits, SamplingConfig(temperature=0.0), np.arange(9), np.zeros(9))
    np.testing.assert_array_equal(picks, logits.argmax(axis=1))


def wide_logits(vocab: int, seed: int = 0) -> np.ndarray:
    """Logits spread like the tiny real-vocabulary models' (std ~12): a few hundred tokens
    within 40 of the best, so the full-vocabulary draw weighs only those."""
    rng = np.random.default_rng(seed)
    row = (rng.standard_normal(vocab) * 12.0).astype(np.float32)
    head = rng.choice(vocab, 30, replace=False)
    row[head] = np.linspace(60.0, 57.0, 30, dtype=np.float32)
    return row


def test_the_full_vocabulary_weighs_only_tokens_near_the_best_when_they_are_few():
    wide, narrow = wide_logits(151936), synthetic_logits(151936)
    best = float(wide.max())
    ids = _near_best(wide, best, 1.0, None)
    assert list(ids) == sorted(ids)
    assert set(ids.tolist()) == set(np.flatnonzero(wide >= best - 40.0).tolist())
    left_out = np.exp(np.delete(wide, ids).astype(np.float64) - best).sum()
    assert left_out < 1e-12 * np.exp(wide[ids].astype(np.float64) - best).sum()
    assert _near_best(narrow, float(narrow.max()), 1.0, None) is None  # every token within 40: the block path
    assert len(_near_best(wide, best, 2.0, None)) < len(ids)  # T 0.5 (inv 2): within 20 of the best
    assert _near_best(wide, best, 0.5, None) is None  # T 2: within 80, too many
    assert (wide[_near_best(wide, best, 1.0, best - 1.0)] >= best - 1.0).all()  # the min-p cut


@pytest.mark.parametrize("name", ["card", "min-p-0.2"])
def test_draws_near_the_best_follow_the_chain_distribution(name):
    s = SamplingConfig(**{**CONFIGS[name], "temperature": 1.3})
    row = wide_logits(151936, 1)
    probs = reference_probs(row, s)
    sampler = BatchSampler(151936, threads=2)
    counts: Counter = Counter()
    for step in range(30):
        counts.update(sampler.sample(np.tile(row, (100, 1)), s, np.arange(100),
                                     np.full(100, step)).tolist())
    sampler.close()
    assert not chi_square_rejects(counts, probs)
    assert chi_square_rejects(counts, reference_probs(row, SamplingConfig(**{**CONFIGS[name], "temperature": 2.0})))


def test_near_the_best_and_by_blocks_draw_the_same_token_for_the_same_number():
    s = SamplingConfig(**CARD)
    rows = np.stack([wide_logits(151936, seed) for seed in range(4)])
    bests = rows.max(axis=1).tolist()
    assert all(_near_best(rows[r], bests[r], 1.0, None) is not None for r in range(4))
    scratch = np.zeros(-(-151936 // 1024) * 1024, dtype=np.float32)
    seeds = np.arange(4) + 11
    u = uniforms(seeds, np.zeros(4, dtype=np.int64))
    for shift in np.linspace(0.0, 1.0, 250, endpoint=False):
        uu = (u + shift) % 1.0
        blocks = _by_blocks(rows, [0, 1, 2, 3], s, uu, scratch, [None] * 4, bests)
        assert _full_vocabulary(rows, s, uu, scratch).tolist() == blocks.tolist()
    blocks = _by_blocks(rows, [0, 1, 2, 3], s, u, scratch, [None] * 4, bests)
    assert BatchSampler(151936).sample(rows, s, seeds, np.zeros(4)).tolist() == blocks.tolist()


# ---- the engine's three paths on real small models ---------------------------------------------

MODELS = ["tiny-qwen3", "smollm2", "tiny-realtok"]
FIXTURES = {"tiny-qwen3": "tiny_qwen3_gguf", "smollm2": "smollm2_gguf",
            "tiny-realtok": "tiny_qwen3_realtok_gguf"}


@pytest.fixture(scope="module", params=MODELS, ids=MODELS)
def engines(request):
    path = request.getfixturevalue(FIXTURES[request.param])
    notes: list[str] = []
    made = {p: Engine.load(EngineConfig(str(path), n_ctx=512, gpu=False, sampler=p), warn=notes.append)
            for p in PATHS}
    yield made
    for e in made.values():
        e.close()


def _run(engine: Engine, samplings: list[SamplingConfig]):
    out = engine.generate_many(engine.render(PROBLEM), samplings)
    return out


def test_greedy_tokens_are_the_argmax_on_every_path(engines):
    greedy = [SamplingConfig(temperature=0.0, max_tokens=16)] * 3
    runs = {p: _run(e, greedy) for p, e in engines.items()}
    assert {p: e.choose_path(greedy) for p, e in engines.items()} == {p: p for p in PATHS}
    tokens = {p: [c.tokens for c in out] for p, out in runs.items()}
    assert tokens["graph"] == tokens["vector"] == tokens["chain"]
    engine = engines["vector"]
    prompt = engine.tokenize(engine.render(PROBLEM))
    drawn = list(runs["vector"][0].tokens)
    logits = engine.logits_of(prompt + drawn)[len(prompt) - 1:]
    for step, token in enumerate(drawn):
        assert logits[step, token] >= logits[step].max() - 1e-3  # argmax (up to float noise)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", ["top-k-5-hot", "top-p-0.5", "min-p-0.2"])
def test_no_token_is_drawn_outside_top_k_top_p_or_min_p(engines, path, name):
    s = SamplingConfig(max_tokens=24, **CONFIGS[name])
    engine = engines[path]
    samplings = [s.with_seed(40 + i) for i in range(6)]
    prompt = engine.tokenize(engine.render(PROBLEM))
    checked = 0
    for c in _run(engine, samplings):
        drawn = list(c.tokens)
        logits = engine.logits_of(prompt + drawn)[len(prompt) - 1:].astype(np.float64)
        for step, token in enumerate(drawn):
            row = logits[step]
            rank = int((row > row[token] + 1e-3).sum())  # tokens surely more likely than it
            if s.top_k:
                assert rank < s.top_k, (step, rank)
            if s.top_p < 1.0:
                p = np.sort(np.exp(row - row.max()))[::-1]
                before = p[:rank].sum() / p.sum()  # the mass of the tokens ranked above it
                assert before < s.top_p + 1e-4, (step, before)
            if s.min_p:
                assert row[token] >= row.max() + math.log(s.min_p) - 1e-3
            checked += 1
    assert checked >= 6


@pytest.mark.parametrize("path", PATHS)
def test_first_token_frequencies_match_the_models_softmax(engines, path):
    """T 1, top-k 0, top-p 1 (the card's protocol): 2,048 first tokens from fixed seeds."""
    engine = engines[path]
    prompt = engine.tokenize(engine.render(PROBLEM))
    counts: Counter = Counter()
    for run in range(32):
        samplings = [SamplingConfig(seed=run * 64 + i, max_tokens=1, **CARD) for i in range(64)]
        counts.update(c.tokens[0] for c in _run(engine, samplings))
    row = engine.logits_of(prompt)[-1].astype(np.float64)
    probs = reference_probs(row, SamplingConfig(**CARD))
    assert not chi_square_rejects(counts, probs)
    if max(probs.values()) < 0.9:  # a peaked row gives a cold run no power to differ
        assert chi_square_rejects(counts, reference_probs(row, SamplingConfig(**{**CARD, "temperature": 0.5})))


@pytest.mark.parametrize("path", PATHS)
def test_contract_same_seed_k_model_and_path_repeat_and_sample_i_is_seed_i(engines, path):
    """The reproducibility contract: a rerun repeats token for token; on the CPU sample i of a
    batch is also the single run with seed + i (no dependence on K or on the other rows)."""
    engine = engines[path]
    samplings = [SamplingConfig(seed=300 + i, max_tokens=20, **CONFIGS["qwen-default"]) for i in range(5)]
    first = [c.tokens for c in _run(engine, samplings)]
    again = [c.tokens for c in _run(engine, samplings)]
    assert first == again
    singles = [_run(engine, [s])[0].tokens for s in samplings]
    assert singles == first


def test_graph_sampling_refused_falls_back_to_the_cpu_chain(engines, monkeypatch):
    """llama.cpp may refuse a sampler for its graph (llama_set_sampler returns false): the same
    chain then samples on the CPU, with the same random stream, and says so once."""
    import llama_cpp

    samplings = [SamplingConfig(seed=500 + i, max_tokens=16, **CONFIGS["qwen-default"]) for i in range(4)]
    chain = [c.tokens for c in _run(engines["chain"], samplings)]
    path = engines["graph"].model_path
    notes: list[str] = []
    monkeypatch.setattr(llama_cpp, "llama_set_sampler", lambda ctx, seq, smpl: False)
    with Engine.load(EngineConfig(path, n_ctx=512, gpu=False, sampler="graph"), warn=notes.append) as e:
        refused = [c.tokens for c in _run(e, samplings)]
    assert refused == chain
    assert notes == ["llama.cpp refused to sample inside its graph; sampling on the CPU"]


def test_auto_picks_vector_on_the_cpu_and_chain_when_top_p_needs_a_full_sort(engines):
    engine = engines["vector"]
    assert engine.choose_path([SamplingConfig()]) == "vector"
    assert engine.choose_path([SamplingConfig(top_k=0, top_p=0.9)]) == "chain"
    assert engine.choose_path([SamplingConfig(temperature=0.0, top_k=0, top_p=0.5)]) == "vector"


def test_verbose_says_which_sampling_path_a_run_takes(smollm2_gguf):
    import subprocess
    import sys

    for extra, expected in (([], "sampling: vector"), (["--sampler", "chain"], "sampling: chain"),
                            (["--top-k", "0", "--top-p", "0.9"], "sampling: chain")):
        proc = subprocess.run([sys.executable, "-m", "mathsolve", "--model", str(smollm2_gguf), "-v",
                               "--max-tokens", "2", "--json", *extra, "What is 2+2?"],
                              capture_output=True, timeout=300)
        assert expected in proc.stderr.decode(), proc.stderr.decode()[-1500:]
