"""Configuration: frozen dataclasses passed explicitly, and the constants several stages share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Defaults: Qwen's own recommendation for Qwen3 thinking mode (temperature 0.6, top_p 0.95,
# top_k 20, min_p 0; never greedy). The model was trained and evaluated at temperature 1.0:
# `--temperature 1.0 --top-p 1 --top-k 0` reproduces the card's protocol.
DEFAULT_TEMPERATURE = 0.6
DEFAULT_TOP_P = 0.95
DEFAULT_TOP_K = 20
DEFAULT_MIN_P = 0.0
DEFAULT_CTX = 8192  # the training sequence length
DEFAULT_MAX_TOKENS = 7680  # leaves 512 tokens of the default context for the prompt
SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
QUANT_CHOICES = ("bf16", "q8_0", "q6_k", "q5_k_m", "q4_k_m")  # what `pull` makes
DEFAULT_MODEL = "jaygala24/Qwen3-4B-RLOO-math-reasoning"
DEFAULT_QUANT = "q4_k_m"
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")
CHECK_TIMEOUT_S = 2.0  # hard limit of one sympy check or equivalence test (answers, votes, grade)
SAMPLERS = ("auto", "graph", "vector", "chain")  # where tokens are drawn: see engine.sampling.choose_path
KV_TYPES = ("f16", "q8_0")  # --kv-type
# Budgets (--thinking-budget, --time-limit): a sample at its budget is steered to an answer.
# Inside an open <think> block it gets Qwen's documented sentence (Qwen3 docs, "thinking
# budget") and </think>; then, and outside a think block, a final-answer cue that leads into
# \boxed{, and ANSWER_ALLOWANCE tokens more for the answer.
BUDGET_THINK_CUE = ("\n\nConsidering the limited time by the user, I have to give the solution "
                    "based on the thinking directly now.\n</think>\n\n")
BUDGET_ANSWER_CUE = "The final answer is $\\boxed{"
ANSWER_ALLOWANCE = 64  # tokens after the cue


def budget_cue(in_think: bool, at_start: bool = False) -> str:
    """The text that steers a sample at its budget: the think cue inside an open <think>
    block, then the answer cue (after a paragraph break unless nothing was generated yet)."""
    lead = BUDGET_THINK_CUE if in_think else "" if at_start else "\n\n"
    return lead + BUDGET_ANSWER_CUE


def random_seed(samples: int = 1) -> int:
    """A seed for sample 1 when none is given: seed + samples - 1 is still below 2**31."""
    import random  # here: `mathsolve --help` never needs it

    return random.randrange(2**31 - max(1, samples))


@dataclass(frozen=True)
class SamplingConfig:
    """How one sample is drawn; recorded in every JSON result."""

    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    top_k: int = DEFAULT_TOP_K
    min_p: float = DEFAULT_MIN_P
    seed: int = 0
    max_tokens: int = DEFAULT_MAX_TOKENS
    thinking_budget: int | None = None  # tokens a sample generates before it is steered to an answer
    time_limit: float | None = None  # seconds per problem, wall clock, before its samples are steered

    def with_seed(self, seed: int) -> SamplingConfig:
        return SamplingConfig(**{**asdict(self), "seed": seed})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def draw_key(self) -> tuple[float, float, int, float]:
        """What decides how a token is drawn, the seed and length aside."""
        return (self.temperature, self.top_p, self.top_k, self.min_p)


@dataclass(frozen=True)
class EngineConfig:
    """How the model is loaded."""

    model_path: str = ""  # "" until a ModelSpec is resolved to a file (loading.open_engine)
    n_ctx: int = DEFAULT_CTX
    n_threads: int | None = None  # None: physical core count
    gpu: bool = True  # offload all layers when the build supports it
    verbose: bool = False
    sampler: str = "auto"  # "auto", "graph", "vector" or "chain": see engine.sampling.choose_path
    parallel: int | None = None  # sequences in flight; None: sized from memory and the work
    kv_type: str = "f16"  # the KV cache's type: "f16", or "q8_0" (half the bytes; flash attention)
    kv_budget: int | None = None  # bytes the KV cache may take; None: engine.sizing's default
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """Which model answers: a .gguf path, a cached name or a Hub repo id (None: MATHSOLVE_MODEL,
    else DEFAULT_MODEL), or an OpenAI-compatible server at `server`."""

    model: str | None = None
    quant: str = DEFAULT_QUANT
    offline: bool = False  # never touch the network (HF_HUB_OFFLINE=1 does the same)
    server: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never printed or recorded
    concurrency: int | None = None  # server requests in flight; None: the engine's default


@dataclass(frozen=True)
class SolveOptions:
    """What the solve flow needs beyond the engine and the sampling."""

    samples: int = 1
    think: bool = True
    check: bool = True
    check_timeout: float = CHECK_TIMEOUT_S
    stop_when_decided: bool = False
    confidence: float | None = None  # stop the samples once the vote's confidence reaches this


@dataclass(frozen=True)
class Settings:
    """Everything a Solver is made from: the model, how it loads, how samples are drawn (the
    seed of sample 1 included) and how a problem is solved. The CLI builds one from its
    options, `Solver(...)` from its keyword arguments."""

    model: ModelSpec = field(default_factory=ModelSpec)
    engine: EngineConfig = field(default_factory=EngineConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    solve: SolveOptions = field(default_factory=SolveOptions)
