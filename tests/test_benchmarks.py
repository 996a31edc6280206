"""Benchmarks by name (issue 16): pinned files resolved through huggingface_hub's own download
and cache code, the rows mapped as the harnesses map them, bad or missing files as one line.

The Hub is the one fake: a local HTTP server answering huggingface_hub's HEAD and GET
requests for the pinned files (the process boundary). Everything past it is the real code:
`hf_hub_download` writes the cache (blobs, snapshots, refs) and finds it again offline.
Source files are written in each dataset's real schema; GSM8K's and MATH-500's from
../shared/data's rows, so the mapping must give those rows back exactly.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
from functools import partial
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_mathsolve
from fakeserver import LocalServer

from mathsolve.cli.options import CARD, settings_from, with_card
from mathsolve.errors import InputError, UsageError
from mathsolve.evaluation import benchmarks
from mathsolve.evaluation.benchmarks import BENCHMARKS

DEAD_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing listens, a request fails at once


class FakeHub(LocalServer):
    """Serves files[(repo, revision, filename)] as the Hub's resolve endpoint does: HEAD gives
    X-Repo-Commit, ETag and the size, GET the bytes, a missing file 404 with EntryNotFound."""

    def __init__(self, files: dict[tuple[str, str, str], bytes]) -> None:
        self.files = files
        self.gets: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _resolve(self, body: bool) -> None:
                parts = self.path.split("?")[0].split("/")
                # /datasets/<owner>/<name>/resolve/<revision>/<filename...>
                repo, revision, filename = "/".join(parts[2:4]), parts[5], "/".join(parts[6:])
                data = hub.files.get((repo, revision, filename))
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Repo-Commit", revision)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", revision)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    hub.gets.append(filename)
                    self.wfile.write(data)

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's names
                self._resolve(body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._resolve(body=True)

        super().__init__(Handler)


# ---------------------------------------------------------------- source files in each real schema

def parquet_bytes(columns: dict[str, list]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def jsonl_bytes(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def shared_rows(shared: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (shared / name).read_text("utf-8").splitlines()]


def gsm8k_source(rows: list[dict]) -> bytes:
    """openai/gsm8k's test parquet: question, answer = reasoning with <<calc>> then `#### X`, X
    with thousands separators as the source writes them (1,234)."""
    def answer(final: str) -> str:
        return f"Work it out: 2 * 3 = <<2*3=6>>6 steps.\nSo we get it.\n#### {int(final):,}"
    return parquet_bytes({"question": [r["problem"] for r in rows], "answer": [answer(r["answer"]) for r in rows]})


def math500_source(rows: list[dict]) -> bytes:
    """HuggingFaceH4/MATH-500's test.jsonl: problem, solution, answer, subject, level, unique_id."""
    return jsonl_bytes([{"problem": r["problem"], "solution": f"Hence $\\boxed{{{r['answer']}}}$.",
                         "answer": r["answer"], "subject": r["id"].split("/")[1].replace("_", " ").title(),
                         "level": 1 + n % 5, "unique_id": r["id"]} for n, r in enumerate(rows)])


# Synthetic rows in the real schemas of the other five; `expected` is written out by hand.
OLYMPIAD_ANSWERS = [["$69$,$84$"], ["$(6,3),(9,3),(9,5),(54,5)$"], ["$\\frac{1}{2}$"], ["1,3,5"]]
SYNTHETIC: dict[str, tuple[bytes, list[dict]]] = {
    "aime24": (parquet_bytes({"id": list(range(60, 90)), "problem": [f"AIME 2024 problem {i}" for i in range(30)],
                              "solution": [f"... so $\\boxed{{{i * 7}}}$" for i in range(30)],
                              "answer": [str(i * 7) for i in range(30)],
                              "url": ["https://artofproblemsolving.com/wiki"] * 30, "year": ["2024"] * 30}),
               [{"id": f"aime24_{60 + i}", "problem": f"AIME 2024 problem {i}", "answer": str(i * 7)}
                for i in range(30)]),
    "aime25": (jsonl_bytes([{"problem": f"AIME 2025 problem {i}", "answer": str(100 + i), "id": str(i)}
                            for i in range(30)]),
               [{"id": f"aime25_{i}", "problem": f"AIME 2025 problem {i}", "answer": str(100 + i)}
                for i in range(30)]),
    "amc23": (parquet_bytes({"id": list(range(40)), "answer": [27.0 + i for i in range(39)] + [-1.0],
                             "url": ["https://artofproblemsolving.com/wiki"] * 40,
                             "question": [f"AMC 12 2023 question {i}" for i in range(40)]}),
              [{"id": f"amc23_{i}", "problem": f"AMC 12 2023 question {i}", "answer": str(27 + i)}
               for i in range(39)] + [{"id": "amc23_39", "problem": "AMC 12 2023 question 39", "answer": "-1"}]),
    "minerva": (jsonl_bytes([{"question": f"OCW problem {i}", "answer": f" \\frac{{{i}}}{{2}} "}
                             for i in range(272)]),
                [{"id": f"minerva_{i:04d}", "problem": f"OCW problem {i}", "answer": f"\\frac{{{i}}}{{2}}"}
                 for i in range(272)]),
    "olympiadbench": (parquet_bytes({
        "id": list(range(1606, 1606 + 674)),
        "question": [f"Olympiad question {i}" for i in range(674)],
        "solution": [[f"Solution {i}"] for i in range(674)],
        "final_answer": [OLYMPIAD_ANSWERS[i % 4] for i in range(674)],
        "is_multiple_answer": [i % 4 in (0, 1, 3) for i in range(674)],
        "unit": [None] * 674, "answer_type": ["Numerical"] * 674, "subfield": ["Algebra"] * 674,
        "context": [None] * 674}),
        [{"id": f"olympiadbench_{1606 + i}", "problem": f"Olympiad question {i}",
          "answer": ["69,84", "(6,3),(9,3),(9,5),(54,5)", "\\frac{1}{2}", "1,3,5"][i % 4]} for i in range(674)]),
}


@pytest.fixture(scope="session")
def sources() -> dict[str, bytes]:
    """name -> the pinned file's bytes: all seven benchmarks, or the five synthetic ones where
    ../shared is missing (the tests of GSM8K and MATH-500 skip then, and fail in CI)."""
    from conftest import IN_CI, SHARED, require_shared

    out = {name: data for name, (data, _expected) in SYNTHETIC.items()}
    if (SHARED / "data").exists() or IN_CI:
        shared = require_shared("data")
        out["gsm8k"] = gsm8k_source(shared_rows(shared, "gsm8k_test.jsonl"))
        out["math500"] = math500_source(shared_rows(shared, "math500_test.jsonl"))
        assert set(out) == set(BENCHMARKS)
    return out


def hub_files(sources: dict[str, bytes]) -> dict[tuple[str, str, str], bytes]:
    return {(b.repo, b.revision, b.filename): sources[b.name] for b in BENCHMARKS.values() if b.name in sources}


@pytest.fixture(scope="session")
def filled_cache(sources: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An HF hub cache holding every pinned file, written by huggingface_hub's download code."""
    cache = tmp_path_factory.mktemp("hf") / "hub"
    chosen = [b for b in BENCHMARKS.values() if b.name in sources]
    with FakeHub(hub_files(sources)) as hub:
        for bench in chosen:
            benchmarks.download(bench, offline=False, cache_dir=cache, endpoint=hub.url)
        assert sorted(hub.gets) == sorted(b.filename for b in chosen)
    return cache


@pytest.fixture()
def own_cache(filled_cache: Path, tmp_path: Path) -> Path:
    """A copy of the filled cache (symlinks kept) that a test may damage."""
    cache = tmp_path / "hf" / "hub"
    shutil.copytree(filled_cache, cache, symlinks=True)
    return cache


def hf_env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return {**env, "HF_HOME": str(cache.parent / "home"), "HF_HUB_CACHE": str(cache),
            "HF_ENDPOINT": DEAD_ENDPOINT, **extra}


mathsolve = partial(run_mathsolve, text=True)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mathsolve: error: "), proc.stderr
    return lines[0]


# ---------------------------------------------------------------- the mapping on real rows

@pytest.mark.parametrize("name,shared_file", [("gsm8k", "gsm8k_test.jsonl"), ("math500", "math500_test.jsonl")])
def test_gsm8k_and_math500_from_the_hf_cache_are_shared_datas_rows(name, shared_file, filled_cache,
                                                                   shared_data_dir):
    rows = benchmarks.load_rows(BENCHMARKS[name], offline=True, cache_dir=filled_cache)
    expected = shared_rows(shared_data_dir, shared_file)
    assert len(rows) == len(expected) == BENCHMARKS[name].rows
    assert rows == expected  # ids, problems and answers, every row, in file order


def test_gsm8k_answers_lose_their_thousands_separators(sources, shared_data_dir):
    table = pq.read_table(io.BytesIO(sources["gsm8k"])).to_pylist()
    with_commas = [r["answer"].rsplit("#### ", 1)[1] for r in table if "," in r["answer"].rsplit("####", 1)[1]]
    assert len(with_commas) >= 14  # the source writes 1,234: the mapping has something to remove
    assert benchmarks.map_rows(BENCHMARKS["gsm8k"], [{"question": "q", "answer": "x\n#### 12,345,678"}]) == [
        {"id": "gsm8k_test_0000", "problem": "q", "answer": "12345678"}]


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_each_benchmark_maps_its_real_schema(name, filled_cache):
    rows = benchmarks.load_rows(BENCHMARKS[name], offline=True, cache_dir=filled_cache)
    assert rows == SYNTHETIC[name][1]


def test_problems_are_what_a_jsonl_file_of_the_same_rows_gives(filled_cache, tmp_path):
    from mathsolve.solving.inputs import parse_problems

    bench = BENCHMARKS["olympiadbench"]
    problems = benchmarks.load_problems(bench, offline=True, cache_dir=filled_cache)
    as_file = parse_problems(jsonl_bytes(SYNTHETIC["olympiadbench"][1]).decode())
    assert problems == as_file


@pytest.mark.parametrize("record,reason", [
    ({"question": "q", "answer": "no final line"}, "has no '#### answer' line"),
    ({"question": "", "answer": "#### 1"}, "has no 'question' text"),
    ({"question": "q"}, "has no 'answer'"),
], ids=["no-hashes", "empty-problem", "no-answer"])
def test_a_row_outside_the_schema_is_one_clear_error(record, reason):
    with pytest.raises(InputError, match=f"gsm8k: row 1 {reason}"):
        benchmarks.map_rows(BENCHMARKS["gsm8k"], [record])


# ---------------------------------------------------------------- download once, offline after

def test_downloaded_once_then_found_offline_without_the_network(sources, tmp_path):
    cache = tmp_path / "hub"
    bench = BENCHMARKS["aime25"]
    with FakeHub(hub_files(sources)) as hub:
        notes: list[str] = []
        first = benchmarks.download(bench, offline=False, cache_dir=cache, note=notes.append, endpoint=hub.url)
        again = benchmarks.download(bench, offline=False, cache_dir=cache, note=notes.append, endpoint=hub.url)
        assert hub.gets == ["test.jsonl"]  # one GET: the second call never asked
    assert notes == ["aime25: downloading math-ai/aime25@563bb84, test.jsonl into the Hugging Face cache"]
    assert first == again and first.read_bytes() == sources["aime25"]
    assert f"snapshots/{bench.revision}/test.jsonl" in first.as_posix()  # huggingface_hub's own layout
    # The hub is gone: the pinned sha still resolves, online or not.
    assert benchmarks.download(bench, offline=True, cache_dir=cache, endpoint=DEAD_ENDPOINT) == first
    assert benchmarks.download(bench, offline=False, cache_dir=cache, endpoint=DEAD_ENDPOINT) == first
    assert benchmarks.cached_path(bench, cache) == first


def test_a_file_missing_on_the_hub_is_one_clear_error(sources, tmp_path):
    files = hub_files(sources)
    bench = BENCHMARKS["amc23"]
    del files[(bench.repo, bench.revision, bench.filename)]
    with FakeHub(files) as hub:
        with pytest.raises(InputError) as err:
            benchmarks.download(bench, offline=False, cache_dir=tmp_path / "hub", endpoint=hub.url)
    assert str(err.value) == ("amc23 (math-ai/amc23@80815d3, test-00000-of-00001.parquet): the file is not "
                              "in the repo at the pinned revision")


def test_offline_and_not_cached_is_one_line_exit_1(tmp_path):
    proc = mathsolve("eval", "math500", "-o", str(tmp_path / "o.jsonl"),
                     env=hf_env(tmp_path / "empty" / "hub", HF_HUB_OFFLINE="1"))
    assert proc.returncode == 1
    assert one_error_line(proc) == (
        "mathsolve: error: math500 (HuggingFaceH4/MATH-500@6e4ed1a, test.jsonl) is not in the Hugging Face "
        "cache and offline mode is on (--offline or HF_HUB_OFFLINE=1); run once with the network to download it")
    assert not (tmp_path / "o.jsonl").exists()


def test_the_offline_flag_alone_keeps_the_data_off_the_network(tmp_path):
    proc = mathsolve("eval", "aime24", "--offline", "-o", str(tmp_path / "o.jsonl"),
                     env=hf_env(tmp_path / "empty" / "hub"))
    assert proc.returncode == 1
    assert "is not in the Hugging Face cache and offline mode is on" in one_error_line(proc)


# ---------------------------------------------------------------- damaged files in the cache

def damage(cache: Path, name: str, data: bytes) -> Path:
    bench = BENCHMARKS[name]
    path = benchmarks.cached_path(bench, cache)
    assert path is not None
    path.resolve().write_bytes(data)  # the blob the snapshot links to
    return path


@pytest.mark.parametrize("name,data,message", [
    ("amc23", b"PAR1 this is not parquet", "is not a readable parquet file"),
    ("olympiadbench", b"", "is not a readable parquet file"),
    ("aime25", b'{"problem": "p", "answer": "1", "id": "0"}\n{"problem": "torn\n', "line 2 of"),
    ("aime25", b'["a list"]\n', "line 1 of"),
    ("minerva", b'{"question": "q", "answer": "1"}\n' * 271, "has 271 rows, the pinned file 272"),
], ids=["parquet-garbage", "parquet-empty", "jsonl-torn", "jsonl-not-object", "rows-missing"])
def test_a_damaged_cached_file_is_one_line_exit_1(name, data, message, own_cache, tmp_path):
    damage(own_cache, name, data)
    proc = mathsolve("eval", name, "-o", str(tmp_path / "o.jsonl"), env=hf_env(own_cache, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 1
    line = one_error_line(proc)
    folder = own_cache / f"datasets--{BENCHMARKS[name].repo.replace('/', '--')}"
    assert message in line and f"delete {folder} and rerun" in line
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- the command line

def test_list_shows_names_rows_sources_and_what_is_cached(own_cache, sources):
    shutil.rmtree(own_cache / "datasets--math-ai--minervamath")
    proc = mathsolve("eval", "--list", env=hf_env(own_cache, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["name", "rows", "split"]
    table = {line.split()[0]: line.split() for line in lines[1:]}
    assert list(table) == list(BENCHMARKS)
    for name, bench in BENCHMARKS.items():
        row = table[name]
        assert row[1] == str(bench.rows) and row[2] == bench.split
        assert f"{bench.repo}@{bench.revision[:7]}," in row and bench.filename in row
        assert row[-1] == ("yes" if name in sources and name != "minerva" else "no")


def test_an_unknown_name_lists_the_names(tmp_path):
    proc = mathsolve("eval", "gsm9k", "-o", str(tmp_path / "o.jsonl"), env=hf_env(tmp_path / "hub"))
    assert proc.returncode == 1
    assert one_error_line(proc) == ("mathsolve: error: gsm9k: no such file, and not a benchmark name "
                                    "(gsm8k, math500, aime24, aime25, amc23, minerva, olympiadbench; "
                                    "see `mathsolve eval --list`)")


def test_a_file_named_like_a_benchmark_wins(tmp_path):
    (tmp_path / "gsm8k").write_text('{"id": "a", "problem": "1+1"}\n')  # no answer: proves it was read
    proc = mathsolve("eval", "gsm8k", "-o", "o.jsonl", env=hf_env(tmp_path / "hub", HF_HUB_OFFLINE="1"),
                     cwd=tmp_path)
    assert proc.returncode == 1
    assert one_error_line(proc) == "mathsolve: error: gsm8k: row a has no 'answer' to grade against"


@pytest.mark.parametrize("args,message", [
    ([], "give DATA: a benchmark name"), (["gsm8k"], "Missing option '-o' / '--out'")])
def test_eval_without_data_or_out_is_a_usage_error(args, message, tmp_path):
    proc = mathsolve("eval", *args, env=hf_env(tmp_path / "hub"))
    assert proc.returncode == 2
    assert message in one_error_line(proc)


def test_eval_gsm8k_limit_5_from_the_cache_with_the_network_off(own_cache, tiny_qwen3_gguf, shared_data_dir,
                                                                 tmp_path):
    out = tmp_path / "out.jsonl"
    proc = mathsolve("eval", "gsm8k", "--limit", "5", "-o", str(out), "--model", str(tiny_qwen3_gguf),
                     "--samples", "2", "--max-tokens", "16", "--seed", "3", "--threads", "2",
                     env=hf_env(own_cache, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "gsm8k: 1319 problems from openai/gsm8k@e53f048, main/test-00000-of-00001.parquet" in proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    expected = shared_rows(shared_data_dir, "gsm8k_test.jsonl")[:5]
    assert [(r["id"], r["problem"], r["reference"]) for r in records] == [
        (e["id"], e["problem"], e["answer"]) for e in expected]
    assert all(r["n"] == 2 for r in records)
    assert "accuracy (pass@1" in proc.stdout


def test_eval_downloads_through_hf_endpoint_once_then_runs_offline(sources, tmp_path, tiny_qwen3_gguf):
    cache = tmp_path / "hf" / "hub"
    args = ["--limit", "2", "--model", str(tiny_qwen3_gguf), "--max-tokens", "8", "--seed", "1",
            "--threads", "2"]
    with FakeHub(hub_files(sources)) as hub:
        first = mathsolve("eval", "amc23", "-o", str(tmp_path / "a.jsonl"), *args,
                          env=hf_env(cache, HF_ENDPOINT=hub.url))
        assert first.returncode == 0, first.stderr[-2000:]
        assert hub.gets == ["test-00000-of-00001.parquet"]
    assert "amc23: downloading math-ai/amc23@80815d3" in first.stderr
    again = mathsolve("eval", "amc23", "-o", str(tmp_path / "b.jsonl"), *args,
                      env=hf_env(cache, HF_HUB_OFFLINE="1"))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "downloading" not in again.stderr
    ids = [json.loads(line)["id"] for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert ids == ["amc23_0", "amc23_1"]


# ---------------------------------------------------------------- --card

SOLVE_DEFAULTS = {"card": False, "samples": 1, "temperature": 0.6, "top_p": 0.95, "top_k": 20}


def test_card_sets_the_model_cards_protocol():
    opts = with_card({**SOLVE_DEFAULTS, "card": True}, frozenset())
    assert {k: opts[k] for k in CARD} == {"samples": 32, "temperature": 1.0, "top_p": 1.0, "top_k": 0}
    assert with_card(SOLVE_DEFAULTS, frozenset({"temperature"})) == SOLVE_DEFAULTS  # no --card: untouched


def test_card_with_the_same_value_given_is_fine_and_another_is_a_usage_error():
    same = with_card({**SOLVE_DEFAULTS, "card": True, "temperature": 1.0}, frozenset({"temperature"}))
    assert same["temperature"] == 1.0 and same["samples"] == 32
    with pytest.raises(UsageError, match=r"--card sets --samples 32 .*; --top-k 20 contradicts it"):
        with_card({**SOLVE_DEFAULTS, "card": True}, frozenset({"top_k"}))


def test_card_conflict_on_the_command_line_is_one_line_exit_2(tmp_path):
    proc = mathsolve("eval", "gsm8k", "--card", "--temperature", "0.6", "-o", str(tmp_path / "o.jsonl"),
                     env=hf_env(tmp_path / "hub"))
    assert proc.returncode == 2
    assert one_error_line(proc) == ("mathsolve: error: --card sets --samples 32 --temperature 1.0 --top-p 1.0 "
                                    "--top-k 0; --temperature 0.6 contradicts it: drop one of the two")


def test_card_reaches_the_samples_and_the_recorded_sampling(tiny_qwen3_gguf, tmp_path):
    proc = mathsolve("--model", str(tiny_qwen3_gguf), "--json", "--card", "--max-tokens", "2", "--seed", "5",
                     "--threads", "2", "x^2=4", env=hf_env(tmp_path / "hub"))
    assert proc.returncode in (0, 3), proc.stderr[-2000:]
    record = json.loads(proc.stdout)
    assert len(record["samples"]) == 32
    assert {k: record["sampling"][k] for k in ("temperature", "top_p", "top_k")} == {
        "temperature": 1.0, "top_p": 1.0, "top_k": 0}


def test_settings_from_reads_given_options_from_the_running_command():
    opts = {**SOLVE_DEFAULTS, "card": True, "seed": 1, "model": None, "quant": "q4_k_m", "offline": False,
            "server": None, "api_key": None, "concurrency": None, "ctx": 8192, "threads": None, "cpu": False,
            "verbose": False, "sampler": "auto", "parallel": None, "kv_type": "f16", "kv_budget": None,
            "min_p": 0.0, "max_tokens": 64, "thinking_budget": None, "time_limit": None, "no_think": False,
            "stop_when_decided": False, "confidence": None, "no_check": False}
    settings = settings_from(opts, given=frozenset())  # no click command: nothing was given
    assert settings.solve.samples == 32 and settings.sampling.top_k == 0
    assert settings_from(opts).sampling.temperature == 1.0  # outside click: the same
