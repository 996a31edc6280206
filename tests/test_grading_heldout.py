"""The held-out grading set stays what it was when it was written (issue 10, item 6).

tests/data/grading_heldout.jsonl was generated once by tests/data/make_grading_heldout.py,
before the grader changes it measures, and is never edited to make a case pass: a changed
byte fails here. Its agreement is reported by bench/bench_grade.py, not asserted; that none of
its wrong answers is graded right is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

DATA = Path(__file__).parent / "data"
HELDOUT = DATA / "grading_heldout.jsonl"
# Pinned when the file was written; never update it to make a grading case pass.
HELDOUT_SHA256 = "562d9038c54823c73f0b892c17d212a55419a9caccb87a47e900935cf33ad477"


def _generator():
    spec = importlib.util.spec_from_file_location("make_grading_heldout", DATA / "make_grading_heldout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_heldout_file_is_the_one_written_once():
    assert hashlib.sha256(HELDOUT.read_bytes()).hexdigest() == HELDOUT_SHA256


def test_heldout_file_is_what_its_documented_procedure_generates(shared_data_dir: Path):
    generator = _generator()
    assert generator.render(generator.build(shared_data_dir)) == HELDOUT.read_text(encoding="utf-8")


def test_heldout_cases_do_not_reuse_grading_case_ids_or_gsm8k_problems():
    heldout = [json.loads(x) for x in HELDOUT.read_text(encoding="utf-8").splitlines()]
    tuned = [json.loads(x) for x in (DATA / "grading_cases.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(heldout) > 500 and {c["expected"] for c in heldout} == {True, False}
    assert not {c["id"] for c in heldout} & {c["id"] for c in tuned}
    tuned_gsm = {c["id"].split("/")[1] for c in tuned if c["id"].startswith("gsm/")}
    heldout_gsm = {c["id"].split("/")[2] for c in heldout if c["id"].startswith("heldout/gsm/")}
    assert heldout_gsm and not heldout_gsm & tuned_gsm


def test_no_heldout_case_is_a_false_positive():
    # Agreement on the held-out set is the bench's to report; a wrong answer graded right is a bug.
    from mathsolve.api import grade

    heldout = [json.loads(x) for x in HELDOUT.read_text(encoding="utf-8").splitlines()]
    wrong = [c for c in heldout if not c["expected"]]
    assert len(wrong) > 100
    assert [c["id"] for c in wrong if grade(c["completion"], c["reference"]).correct] == []
