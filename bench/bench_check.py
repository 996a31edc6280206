"""The sympy check on real problems: how often it claims something, and whether it is ever wrong.

    python bench/bench_check.py [--quick] [--data DIR] [--show N]

Runs `answers.verify.check` (the check on every answer panel and JSON record) on the GSM8K test
and MATH-500 problems of ../shared/data twice: with each problem's own correct answer, where a
"refuted" is the check calling a right answer wrong, and with a wrong answer (the reference + 1
when it is a number, else the reference + 1 as an expression), where a "verified" is the check
calling a wrong answer right. Both must be 0. It prints the counts per status and data set, how
many problems stay checkable (verified with the right answer), and the time per check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
FILES = ("gsm8k_test.jsonl", "math500_test.jsonl")


def wrong_answer(answer: str) -> str:
    """A wrong answer of the same form: the number + 1, else `(answer) + 1`."""
    try:
        value = Fraction(answer.strip().replace(",", ""))
    except ValueError:
        return f"({answer}) + 1"
    value += 1
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def main() -> int:
    sys.path.insert(0, str(REPO))
    from mathsolve.answers.verify import check

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="every 10th problem")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--show", type=int, default=5, help="print up to N of each wrong claim")
    args = ap.parse_args()
    check("What is $1+1$?", "2")  # the worker started and warm: its start is not a check's time
    bad = 0
    for name in FILES:
        path = args.data / name
        if not path.exists():
            print(f"{path} is missing", file=sys.stderr)
            return 2
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if args.quick:
            rows = rows[::10]
        counts: dict[str, dict[str, int]] = {"right": {}, "wrong": {}}
        wrong_claims: list[str] = []
        times: list[float] = []
        for row in rows:
            for kind, answer in (("right", row["answer"]), ("wrong", wrong_answer(row["answer"]))):
                start = time.perf_counter()
                result = check(row["problem"], answer)
                times.append(time.perf_counter() - start)
                counts[kind][result.status] = counts[kind].get(result.status, 0) + 1
                if (kind, result.status) in (("right", "refuted"), ("wrong", "verified")):
                    wrong_claims.append(f"  {kind} answer {result.status}: {row['id']} {answer!r}: {result.reason}")
        n = len(rows)
        right, wrong = counts["right"], counts["wrong"]
        print(f"{name}: {n} problems")
        print(f"  right answers: verified {right.get('verified', 0)}, refuted {right.get('refuted', 0)}, "
              f"unchecked {right.get('unchecked', 0)}")
        print(f"  wrong answers: verified {wrong.get('verified', 0)}, refuted {wrong.get('refuted', 0)}, "
              f"unchecked {wrong.get('unchecked', 0)}")
        print(f"  checkable: {right.get('verified', 0)} of {n}; right answers refuted {right.get('refuted', 0)}, "
              f"wrong answers verified {wrong.get('verified', 0)} (both must be 0)")
        print(f"  time per check: median {1000 * statistics.median(times):.1f} ms, "
              f"max {1000 * max(times):.0f} ms")
        for line in wrong_claims[: args.show]:
            print(line)
        bad += len(wrong_claims)
    bad += real_completions(args.data / "math_cot_100x8.jsonl", args.quick)
    return 1 if bad else 0


def real_completions(path: Path, quick: bool) -> int:
    """The answers of real sampled completions, with their graders' verdicts: a right one
    refuted or a wrong one verified is a wrong claim."""
    from mathsolve.answers.extract import extract
    from mathsolve.answers.verify import check

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if quick:
        rows = rows[::10]
    counts: dict[tuple[bool, str], int] = {}
    for row in rows:
        answer = extract(row["completion"]).answer
        if answer is not None:
            key = (bool(row["correct"]), check(row["problem"], answer).status)
            counts[key] = counts.get(key, 0) + 1
    right = {s: n for (ok, s), n in counts.items() if ok}
    wrong = {s: n for (ok, s), n in counts.items() if not ok}
    print(f"{path.name}: {len(rows)} real completions")
    print(f"  right answers: verified {right.get('verified', 0)}, refuted {right.get('refuted', 0)}, "
          f"unchecked {right.get('unchecked', 0)}")
    print(f"  wrong answers: verified {wrong.get('verified', 0)}, refuted {wrong.get('refuted', 0)}, "
          f"unchecked {wrong.get('unchecked', 0)}")
    return right.get("refuted", 0) + wrong.get("verified", 0)


if __name__ == "__main__":
    sys.exit(main())
