"""The one seeding policy (issue 17): config.seed_for, and the places that follow it."""

from __future__ import annotations

import pytest

from mathsolve.config import EVAL_SEED_STRIDE, SamplingConfig, SolveOptions, seed_for


def test_sample_i_of_problem_p_draws_with_seed_plus_p_stride_plus_i() -> None:
    assert seed_for(7) == 7
    assert seed_for(7, sample=3) == 10
    assert seed_for(7, problem=2, per_problem=4, sample=1) == 16
    assert seed_for(7, problem=5, per_problem=EVAL_SEED_STRIDE) == 5007


@pytest.mark.parametrize("samples", [1, 64])
def test_a_missing_seed_is_drawn_so_every_sample_seed_fits_31_bits(monkeypatch, samples) -> None:
    import random

    monkeypatch.setattr(random, "randrange", lambda stop: stop - 1)  # the largest draw
    seed = seed_for(None, samples)
    assert seed == 2**31 - samples - 1 and seed + samples - 1 < 2**31 - 1


def test_the_solve_flow_seeds_its_samples_by_the_policy() -> None:
    from mathsolve.solving.solve import sample_seeds

    configs = sample_seeds(SamplingConfig(seed=11), SolveOptions(samples=4))
    assert [c.seed for c in configs] == [seed_for(11, sample=i) for i in range(4)]


def test_settings_from_the_cli_and_the_solver_draw_the_seed_by_the_policy(monkeypatch) -> None:
    import random

    from mathsolve.cli.options import settings_from

    monkeypatch.setattr(random, "randrange", lambda stop: stop - 1)
    opts = {"card": False, "seed": None, "samples": 8, "model": None, "quant": "q4_k_m", "offline": False,
            "server": None, "api_key": None, "concurrency": None, "ctx": 8192, "threads": None, "cpu": False,
            "verbose": False, "sampler": "auto", "parallel": None, "kv_type": "f16", "kv_budget": None,
            "temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 0.0, "max_tokens": 100,
            "thinking_budget": None, "time_limit": None, "no_think": False, "stop_when_decided": False,
            "confidence": None, "no_check": False}
    assert settings_from(opts, given=frozenset()).sampling.seed == 2**31 - 9
    assert settings_from({**opts, "seed": 5}, given=frozenset()).sampling.seed == 5
