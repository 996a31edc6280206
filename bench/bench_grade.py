"""Grading benchmark: agreement with the hand verdicts (ours vs math-verify alone), false
positives, and grading time per case (median, p99), on each case file.

    python bench/bench_grade.py [--quick] [--cases FILE ...] [--no-baseline]

Default files: tests/data/grading_cases.jsonl (the cases the grader was tuned on),
tests/data/grading_heldout.jsonl (written once before the issue-12 changes, never tuned on) and
tests/data/grading_mathverify.jsonl (cases adapted from Math-Verify's own tests, issue 16).

Time is measured per case around extraction + equivalence, with the worker already warm
(its start-up is reported separately). math-verify alone runs in this process with its own
signal.alarm timeouts, as its users call it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
CASE_FILES = (DATA / "grading_cases.jsonl", DATA / "grading_heldout.jsonl", DATA / "grading_mathverify.jsonl")


def load(path: Path, quick: bool) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[::8] if quick else rows


def ours(case: dict) -> bool | None:
    from mathsolve.answers.equivalence import equivalent
    from mathsolve.answers.grade import grade

    if "completion" in case:
        return grade(case["completion"], case["reference"]).correct
    return equivalent(case["reference"], case["answer"])


def math_verify_alone(case: dict) -> bool | None:
    from math_verify import parse, verify

    ref = case["reference"]  # a whole solution is given as it is: math-verify finds its box
    gold = parse(ref if "\\boxed" in ref or "\\fbox" in ref else "\\boxed{" + ref + "}")
    text = case.get("completion") or "\\boxed{" + (case.get("answer") or "") + "}"
    pred = parse(text)
    if not pred:
        return None
    return bool(verify(gold, pred))


def score(name: str, verdicts: list, cases: list[dict]) -> None:
    agree = sum(v == c["expected"] for v, c in zip(verdicts, cases))
    false_pos = [c["id"] for v, c in zip(verdicts, cases) if v is True and c["expected"] is not True]
    false_neg = [c["id"] for v, c in zip(verdicts, cases) if v is not True and c["expected"] is True]
    print(f"{name}: agreement {agree}/{len(cases)} = {100 * agree / len(cases):.2f}%, "
          f"false positives {len(false_pos)}, false negatives {len(false_neg)}")
    for label, ids in (("  FP", false_pos), ("  FN", false_neg)):
        if ids:
            print(f"{label}: {', '.join(ids[:15])}{' ...' if len(ids) > 15 else ''}")


def run(path: Path, quick: bool, baseline: bool) -> None:
    cases = load(path, quick)
    print(f"== {path.name}")
    verdicts, times = [], []
    for case in cases:
        t0 = time.perf_counter()
        verdicts.append(ours(case))
        times.append(1000 * (time.perf_counter() - t0))
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    print(f"cases: {len(cases)}; grading time median {statistics.median(times):.3f} ms, "
          f"p99 {p99:.2f} ms, max {times[-1]:.1f} ms, total {sum(times) / 1000:.1f} s")
    score("ours", verdicts, cases)
    if baseline:
        t0 = time.perf_counter()
        reference = [math_verify_alone(c) for c in cases]
        print(f"math-verify alone: {time.perf_counter() - t0:.1f} s total")
        score("math-verify alone", reference, cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every 8th case")
    parser.add_argument("--cases", type=Path, nargs="+", default=list(CASE_FILES))
    parser.add_argument("--no-baseline", action="store_true", help="skip math-verify alone")
    args = parser.parse_args()

    from mathsolve.answers.equivalence import equivalent

    start = time.perf_counter()
    equivalent("x^2", "x \\cdot x")  # starts the worker
    print(f"worker start-up + first call: {1000 * (time.perf_counter() - start):.0f} ms")
    if not args.no_baseline:
        import logging

        logging.disable(logging.WARNING)
    for path in args.cases:
        run(path, args.quick, not args.no_baseline)


if __name__ == "__main__":
    main()
