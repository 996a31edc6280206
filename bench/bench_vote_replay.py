"""Votes replayed on real completions (issue 24): what the vote's schedule saves in time and tokens.

    python bench/bench_vote_replay.py [--confidence 0.95] [--steps 1:91,2:191,...] [--measure GGUF] [--quick]

The 800 real sampled completions of ../shared/data/math_cot_100x8.jsonl (100 MATH problems x 8,
with their lengths in Qwen3 tokens and their graders' verdicts) are replayed through mathsolve's
own vote rule (solving.solve.VoteRule: the stop rule and its schedule, `wanted`), one token per
running sample per decode step, each step costing what a step of B rows costs on a machine
(milliseconds by batch size; --measure reads them off `llama-batched-bench` with the given model,
else two tables measured before are used: this project's Xeon with AMX, and an AMD EPYC).
Policies, per problem, all K = 8 samples drawn with the same texts:

* full: all 8 at once, no rule (a plain 8-sample vote);
* today: all 8 at once, the rule cancels the rest when it holds (the schedule before issue 24);
* schedule: the CPU schedule, no more samples started than `wanted` says;
* one-at-a-time: one sample after another, stopping when the rule holds.

Printed per policy and machine: time and tokens against the full vote, samples started, majority
accuracy (the voted answer's group graded right by the source); and on the problems whose 8
answers disagree, time against today's. Depth (attention grows with a sample's length) and
prefill (a problem's prompt is shared) are not modelled.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_sampling import batched_bench  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "math_cot_100x8.jsonl"
TOOLS = REPO / "scratch" / "llama.cpp" / "build" / "bin"
# Milliseconds of one decode step of B rows, Qwen3-4B-shaped Q4_K_M, 2 threads.
MACHINES = {
    "xeon-amx": {1: 212, 2: 278, 3: 322, 4: 372, 6: 465, 8: 644},  # issue 24 (llama-bench -p B --repack 0)
    "amd-epyc": {1: 81, 2: 134, 3: 190, 4: 224, 6: 344, 8: 499},  # 2026-12-07, --measure (weights repacked)
}
POLICIES = ("full", "today", "schedule", "one-at-a-time")


@dataclass
class Outcome:
    seconds: float
    tokens: int
    started: int
    correct: bool


def step_cost(table: dict[int, float], rows: int) -> float:
    """Seconds of a step of `rows` rows, interpolated linearly between measured batch sizes."""
    sizes = sorted(table)
    if rows in table:
        return table[rows] / 1000
    lo = max([b for b in sizes if b < rows], default=sizes[0])
    hi = min([b for b in sizes if b > rows], default=sizes[-1])
    if lo == hi:
        lo, hi = sizes[-2], sizes[-1]
    return (table[lo] + (table[hi] - table[lo]) * (rows - lo) / (hi - lo)) / 1000


def replay(samples: list[dict], policy: str, table: dict[int, float], confidence: float) -> Outcome:
    from mathsolve.answers.vote import vote
    from mathsolve.config import SolveOptions
    from mathsolve.engine.protocol import Completion
    from mathsolve.solving.solve import VoteRule

    k = len(samples)
    rule = VoteRule(SolveOptions(samples=k, confidence=confidence, check=False)) if policy != "full" else None
    done: dict[int, Completion] = {}
    made = [0] * k
    running: list[int] = []
    started = 0
    seconds = 0.0

    def finished() -> list[Completion]:
        return [done[i] for i in sorted(done)]

    def target() -> int:
        if policy == "schedule" and rule is not None:
            return max(rule.wanted(finished()), started + 1) if not running else rule.wanted(finished())
        if policy == "one-at-a-time":
            return started + (0 if running else 1)
        return k

    while True:
        while started < min(k, target()):
            running.append(started)
            started += 1
        if not running:
            break
        seconds += step_cost(table, len(running))
        for i in running:
            made[i] += 1
        ended = [i for i in running if made[i] >= samples[i]["completion_tokens"]]
        for i in ended:
            running.remove(i)
            done[i] = Completion(i, i, samples[i]["completion"], "stop", 0, made[i], 0.0, 0.0)
        if ended and rule is not None and rule(finished()):
            break
    texts = [done[i].text for i in sorted(done)]
    from mathsolve.answers.extract import extract

    result = vote([extract(t).answer for t in texts])
    order = sorted(done)
    correct = bool(result.groups) and bool(samples[order[result.groups[0].samples[0]]]["correct"])
    return Outcome(seconds, sum(made), started, correct)


def measure(model: str, threads: int) -> dict[int, float]:
    """Step cost by batch size from llama-batched-bench (S_TG at 32 tokens after a 128-token
    prompt, bench_sampling.batched_bench: the weights loaded as mathsolve loads them)."""
    rates = batched_bench(TOOLS / "llama-batched-bench", Path(model), [1, 2, 3, 4, 6, 8], 128, 32, threads, 0)
    return {b: 1000 * b / rate for b, rate in rates.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--steps", help="this machine's step costs, e.g. 1:91,2:191,4:319,8:637 (ms)")
    ap.add_argument("--measure", metavar="GGUF", help="measure the step costs with llama-batched-bench")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--quick", action="store_true", help="20 problems")
    args = ap.parse_args()
    if not args.data.exists():
        print(f"{args.data} is missing", file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in args.data.read_text("utf-8").splitlines() if line.strip()]
    problems: dict[str, list[dict]] = {}
    for row in rows:
        problems.setdefault(row["problem_id"], []).append(row)
    for samples in problems.values():
        samples.sort(key=lambda r: r["sample"])
    chosen = list(problems.values())[:20] if args.quick else list(problems.values())
    machines = dict(MACHINES)
    if args.steps:
        machines["this machine"] = {int(b): float(ms) for b, ms in (p.split(":") for p in args.steps.split(","))}
    if args.measure:
        machines["this machine"] = measure(args.measure, args.threads)
        here = machines["this machine"]
        print("step ms by batch size here: " + ", ".join(f"{b}: {ms:.0f}" for b, ms in here.items()))
    from mathsolve.answers.equivalence import equivalent
    from mathsolve.answers.extract import extract

    hard = set()
    for pid, samples in zip(problems, problems.values()):
        answers = [extract(s["completion"]).answer for s in samples]
        if any(a is None or b is None or not equivalent(a, b) for a, b in zip(answers, answers[1:])):
            hard.add(pid)
    hard_ids = [i for i, pid in enumerate(problems) if pid in hard and i < len(chosen)]
    mean = sum(r["completion_tokens"] for r in rows) / len(rows)
    print(f"{len(chosen)} problems x 8 real completions (mean {mean:.0f} tokens), --confidence {args.confidence}; "
          f"{len(hard_ids)} problems whose 8 answers disagree")
    for name, table in machines.items():
        outcomes = {p: [replay(s, p, table, args.confidence) for s in chosen] for p in POLICIES}
        full = outcomes["full"]
        base_t, base_n = sum(o.seconds for o in full), sum(o.tokens for o in full)
        print(f"== {name}: step ms " + ", ".join(f"{b}: {ms:.0f}" for b, ms in sorted(table.items())))
        for p in POLICIES:
            got = outcomes[p]
            t, n = sum(o.seconds for o in got), sum(o.tokens for o in got)
            hard_t = sum(got[i].seconds for i in hard_ids)
            today_hard = sum(outcomes["today"][i].seconds for i in hard_ids)
            print(f"{p:14s} time {t / 60:6.1f} min = {t / base_t:.2f}x full, tokens {n} = {n / base_n:.2f}x full, "
                  f"{sum(o.started for o in got) / len(got):.2f} samples started, maj {sum(o.correct for o in got)}"
                  f"/{len(got)}; disagreeing problems: {hard_t / max(1e-9, today_hard):.2f}x today's time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
