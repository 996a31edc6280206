"""Configuration: frozen dataclasses passed explicitly, and the constants several stages share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, get_args

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
# Where tokens are drawn (engine.local.sampling.choose_path): the path a run takes, and --sampler,
# which names one or leaves the choice to the engine ("auto"). One list each.
SamplerPath = Literal["graph", "vector", "chain"]
Sampler = Literal["auto", SamplerPath]
SAMPLERS: tuple[Sampler, ...] = get_args(Sampler)  # ("auto", "graph", "vector", "chain")
KV_TYPES = ("f16", "q8_0")  # --kv-type
# The tags of the model's reasoning block: the stream shows what is inside as reasoning, and
# answers are read only from what follows it (answers.extract.answer_part).
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
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


MAX_SEED = 2**31 - 1
MIN_CTX = 256  # --ctx; the engine opens smaller contexts (tests use tiny ones) but none is useful


@dataclass(frozen=True)
class Option:
    """One valued option of a solve, as `mathsolve solve` (and eval, mcp) takes it on the
    command line, `Solver(...)` as a keyword and the MCP `solve` tool as a field: its name
    (the keyword; the flag is `--` and the name with dashes), type, default, range or
    choices, and help. cli/ builds the click options from these, api.validate the checks."""

    name: str
    type: type[Any]  # int, float or str (with choices)
    default: Any
    setting: str  # where the value lives in Settings: "sampling.temperature"
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is out of range
    high_open: bool = False
    below: str = ""  # why a value at an open `high` is out of range, for its error message
    choices: tuple[str, ...] = ()
    help: str | None = None
    metavar: str | None = None
    show_default: bool = False
    short: str | None = None  # a one-letter flag too: "-k"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def problem(self, value: Any) -> str | None:
        """Why `value` is out of this option's range or choices (one line); None when it is fine.

        Range errors read "NAME must be in [low, high], got VALUE" (`(` for an open low);
        a value at an open high reads "NAME must be below HIGH (why), got VALUE"."""
        if value is None:
            return None
        if self.choices:
            if value not in self.choices:
                return f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}"
            return None
        low, high = self.low, self.high
        if (low is not None and (value <= low if self.low_open else value < low)) or (
                high is not None and value > high):
            bounds = f"{'(' if self.low_open else '['}{low if low is not None else '-inf'}, " \
                     f"{high if high is not None else 'inf'}]"
            return f"{self.name} must be in {bounds}, got {value!r}"
        if self.high_open and high is not None and value >= high:
            why = f" ({self.below})" if self.below else ""
            return f"{self.name} must be below {high}{why}, got {value!r}"
        return None


# The valued options of a solve, in the order api.validate checks them; the click options
# keep their own order in the help (cli/__init__.py). Flags (--card, --cpu, --no-think, ...)
# and free strings (--model, --server) have no range and are not here. Bounds keep the
# literals they are shown with: `--temperature` reads [0<=x<=5] in the help, not 0.0<=x<=5.0.
SOLVE_OPTIONS: tuple[Option, ...] = (
    Option("temperature", float, DEFAULT_TEMPERATURE, "sampling.temperature", 0, 5, show_default=True,
           help="0 is greedy (not advised for Qwen3); the card used 1.0."),
    Option("top_p", float, DEFAULT_TOP_P, "sampling.top_p", 0, 1, low_open=True, show_default=True),
    Option("top_k", int, DEFAULT_TOP_K, "sampling.top_k", 0, show_default=True, help="0 disables top-k."),
    Option("min_p", float, DEFAULT_MIN_P, "sampling.min_p", 0, 1, show_default=True),
    Option("seed", int, None, "sampling.seed", 0, MAX_SEED,
           help="Seed of sample 1 (sample i uses seed+i-1); default: random, recorded."),
    Option("max_tokens", int, DEFAULT_MAX_TOKENS, "sampling.max_tokens", 1, show_default=True,
           help="Generated tokens per sample (capped by the context)."),
    Option("ctx", int, DEFAULT_CTX, "engine.n_ctx", MIN_CTX, show_default=True,
           help="Context length per sample (prompt + generation); 8192 = training length."),
    Option("samples", int, 1, "solve.samples", 1, 64, show_default=True, short="-k",
           help="Draw K samples per problem and vote on the answer."),
    Option("confidence", float, None, "solve.confidence", 0.5, 1, low_open=True, high_open=True,
           below="a vote is never certain", metavar="P",
           help="With --samples: stop the remaining samples once the vote's confidence "
                "(the Beta posterior that the leading answer is the majority) reaches P, e.g. 0.95."),
    Option("thinking_budget", int, None, "sampling.thinking_budget", 0, metavar="N",
           help="Tokens a sample may reason before it is steered to an answer (the cue closes "
                f"</think> and opens \\boxed{{, then {ANSWER_ALLOWANCE} tokens more); 0 answers at once."),
    Option("time_limit", float, None, "sampling.time_limit", 0, low_open=True, metavar="SECONDS",
           help="Wall-clock seconds per problem; then its samples are steered to an answer "
                "as with --thinking-budget."),
    Option("threads", int, None, "engine.n_threads", 1, help="CPU threads [default: physical cores]."),
    Option("parallel", int, None, "engine.parallel", 1, 256,
           help="Sequences decoded at once (problems x samples) [default: sized from free memory and --ctx]."),
    Option("concurrency", int, None, "model.concurrency", 1, 256,
           help="With --server: requests in flight [default: the K samples of a problem; eval: 8 problems]."),
    Option("kv_type", str, "f16", "engine.kv_type", choices=KV_TYPES, show_default=True,
           help="Type of the KV cache: q8_0 takes about half the memory of f16 (with flash attention)."),
    # GB on the command line, bytes in EngineConfig: the range (above 0) holds for both.
    Option("kv_budget", float, None, "engine.kv_budget", 0, low_open=True, metavar="GB",
           help="Memory the KV cache may take: a stream of --ctx tokens per sample, as many samples at once "
                "as fit, the others start as samples finish [default: half the available RAM, or the GPU's "
                "free memory less 1 GB]."),
    Option("sampler", str, "auto", "engine.sampler", choices=SAMPLERS, show_default=True,
           help="Where tokens are drawn: inside llama.cpp's graph (auto on a GPU), vectorised on the "
                "CPU (auto on a CPU), or llama.cpp's chain per sample."),
    Option("quant", str, DEFAULT_QUANT, "model.quant", choices=QUANT_CHOICES, show_default=True,
           help="Quantisation of a cached model."),
)
OPTIONS: dict[str, Option] = {option.name: option for option in SOLVE_OPTIONS}


EVAL_SEED_STRIDE = 1000  # eval: the problem at position p of DATA starts at seed + 1000 p (K <= 64)


def random_seed(samples: int = 1) -> int:
    """A seed for sample 1 when none is given: seed + samples - 1 is still below 2**31."""
    import random  # here: `mathsolve --help` never needs it

    return random.randrange(2**31 - max(1, samples))


def seed_for(seed: int | None, samples: int = 1, *, sample: int = 0, problem: int = 0,
             per_problem: int = 0) -> int:
    """The seeding policy: every seed a sample draws with, and records, is computed here.

    `seed` is the run's seed, the one of sample 1 of the first problem. None draws one at
    random from [0, 2**31 - samples) (random_seed), so seed + samples - 1 still fits below
    2**31: do that once, where the seed is settled (a CLI run in cli.options.settings_from,
    a Solver, an MCP `solve` call without one), and pass the result on, since every record
    of the run carries it.

    Sample i of a problem (counting from 0) draws with its problem's seed + i. Problems
    `problem` (counting from 0) start `per_problem` apart: 0 for the problems of one
    `mathsolve -f` or `Solver.solve_many` (each draws like a lone solve), K in the
    interactive loop (problem n's samples take seed + (n-1)K ... seed + nK - 1, no two share
    one) and EVAL_SEED_STRIDE in `eval`, by position in DATA (a resumed run samples alike).
    So sample i of problem p draws with seed + p * per_problem + i.
    """
    base = random_seed(samples) if seed is None else seed
    return base + problem * per_problem + sample


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
    sampler: Sampler = "auto"  # see engine.local.sampling.choose_path
    parallel: int | None = None  # sequences in flight; None: sized from memory and the work
    kv_type: str = "f16"  # the KV cache's type: "f16", or "q8_0" (half the bytes; flash attention)
    kv_budget: int | None = None  # bytes the KV cache may take; None: the memory rule (engine.local.kv)


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


# Every setting a run takes by name (the CLI's options, the Solver's keywords, the MCP solve
# tool's fields) and where it lives in Settings: the ranged options above, then the rest.
SETTINGS: dict[str, str] = {option.name: option.setting for option in SOLVE_OPTIONS} | {
    "model": "model.model", "offline": "model.offline", "server": "model.server",
    "api_key": "model.api_key", "gpu": "engine.gpu", "verbose": "engine.verbose",
    "think": "solve.think", "check": "solve.check", "stop_when_decided": "solve.stop_when_decided",
}


def settings_from(values: Mapping[str, Any], base: Settings | None = None) -> Settings:
    """The one place Settings are made: `values` by setting name (SETTINGS), over `base`
    (default: every default). --kv-budget's GB become bytes, an empty --sampler is "auto", and
    the seed of sample 1 is drawn here when `values` gives it as None (seed_for), so every
    record of the run carries it."""
    base = base if base is not None else Settings()
    parts: dict[str, dict[str, Any]] = {"model": {}, "engine": {}, "sampling": {}, "solve": {}}
    for name, value in values.items():
        section, name_there = SETTINGS[name].split(".")
        if name == "kv_budget" and value is not None:
            value = int(value * 1e9)
        elif name == "sampler":
            value = value or "auto"
        parts[section][name_there] = value
    if "seed" in parts["sampling"]:
        parts["sampling"]["seed"] = seed_for(parts["sampling"]["seed"],
                                             parts["solve"].get("samples", base.solve.samples))
    return Settings(model=replace(base.model, **parts["model"]), engine=replace(base.engine, **parts["engine"]),
                    sampling=replace(base.sampling, **parts["sampling"]), solve=replace(base.solve, **parts["solve"]))
