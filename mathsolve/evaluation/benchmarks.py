"""Evaluation: benchmarks by name, each a pinned file of a Hugging Face dataset repo.

`mathsolve eval gsm8k` resolves the name to a repo, a file in it and a full commit sha, and
asks huggingface_hub for that file: the first run downloads it into the HF cache, every later
run (offline too: --offline or HF_HUB_OFFLINE=1) finds it there without touching the network,
because a commit sha names one immutable snapshot. Rows are mapped to the eval input format
(`id`, `problem`, `answer`) as the harnesses read them. Parquet is read with pyarrow.

No pin here was guessed: each repo, file and sha was found stated in public evaluation code
(the comment above each row says where). A benchmark without such a pin is left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mathsolve.errors import InputError
from mathsolve.models.hub import offline_from_env
from mathsolve.solving.inputs import Problem


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: where its file is pinned, how big it is, how its rows are read."""

    name: str
    repo: str  # a Hugging Face dataset repo (repo_type "dataset")
    filename: str  # path of the file inside the repo (.parquet or .jsonl)
    revision: str  # a full 40-hex commit sha: the pin
    rows: int  # rows the pinned file holds; another count means a damaged file
    split: str
    origin: str  # licence and where the problems come from, one line
    problem_field: str
    answer_field: str
    answer_form: str  # a key of ANSWER_FORMS
    id_prefix: str
    id_field: str | None = None  # None: ids count rows in file order (prefix + NNNN)

    @property
    def source(self) -> str:
        return f"{self.repo}@{self.revision[:7]}, {self.filename}"


_TABLE = (
    # Pin: openai/gsm8k `main` config at e53f048 with the file `main/test-00000-of-00001.parquet`,
    # stated together in public eval code (a pinned hf_hub_download of GSM8K_FILE/GSM8K_REV); the
    # same sha is the hf_revision of the gsm8k LightevalTaskConfig in public lighteval task files.
    Benchmark("gsm8k", "openai/gsm8k", "main/test-00000-of-00001.parquet",
              "e53f048856ff4f594e959d75785d2c2d37b678ee", 1319, "test",
              "MIT (OpenAI, Cobbe et al. 2021: grade-school-math test.jsonl)",
              "question", "answer", "after-hashes", "gsm8k_test_"),
    # Pin: HuggingFaceH4/MATH-500 at 6e4ed1a with `test.jsonl`, stated together in a public
    # (key, repo, revision, file) source table read with hf_hub_download; the sha is pinned in
    # many public MATH-500 harness configs (500 rows, test split).
    Benchmark("math500", "HuggingFaceH4/MATH-500", "test.jsonl",
              "6e4ed1a2a79af7d8630a6b768ec859cb5af4d3be", 500, "test",
              "MIT (OpenAI PRM800K math_splits/test.jsonl; MATH by Hendrycks et al. 2021)",
              "problem", "answer", "text", "", id_field="unique_id"),
    # Pin: HuggingFaceH4/aime_2024 at 2fe88a2 with `data/train-00000-of-00001.parquet`, stated
    # together in public scripts (DATASET/REVISION/SOURCE_PATH, and HF-cache snapshot paths).
    Benchmark("aime24", "HuggingFaceH4/aime_2024", "data/train-00000-of-00001.parquet",
              "2fe88a2f1091d5048c0f36abc874fb997b3dd99a", 30, "train",
              "AIME 2024 I and II (MAA); the dataset card states no licence",
              "problem", "answer", "number", "aime24_", id_field="id"),
    # Pin: math-ai/aime25 at 563bb84 with `test.jsonl`, stated together in public code (a frozen
    # source table and an `hf download math-ai/aime25 test.jsonl --revision ...` command).
    Benchmark("aime25", "math-ai/aime25", "test.jsonl",
              "563bb8404243c5f09de6ec262f2db674fe5bce9b", 30, "test",
              "AIME 2025 I and II (MAA); see the dataset card for terms",
              "problem", "answer", "number", "aime25_", id_field="id"),
    # Pin: math-ai/amc23 at 80815d3 with `test-00000-of-00001.parquet` (40 rows: id, answer as a
    # float, url, question), stated together in public code (a resolve URL of that file at
    # that sha) and a public dataset README quoting both.
    Benchmark("amc23", "math-ai/amc23", "test-00000-of-00001.parquet",
              "80815d37005feb82cd7f8fbc6901d5d3eff43057", 40, "test",
              "AMC 12 2023 A and B, rewritten to integer answers; the dataset card states no licence",
              "question", "answer", "number", "amc23_", id_field="id"),
    # Pin: math-ai/minervamath at ee46ddc (272 rows, question/answer) is pinned in public harness
    # tables; its file `test.jsonl` is named in public loaders of the same repo (the two were
    # found in different sources, not in one statement).
    Benchmark("minerva", "math-ai/minervamath", "test.jsonl",
              "ee46ddc498933b1977577953250ca5c66be64f96", 272, "test",
              "Minerva's 272 MIT OpenCourseWare problems (Lewkowycz et al. 2022); see the dataset card",
              "question", "answer", "text", "minerva_"),
    # Pin: Hothan/OlympiadBench at 91184b5 with
    # `OlympiadBench/OE_TO_maths_en_COMP/OE_TO_maths_en_COMP.parquet` (674 rows), stated together
    # in a public download script and a public dataset README (Apache-2.0).
    Benchmark("olympiadbench", "Hothan/OlympiadBench",
              "OlympiadBench/OE_TO_maths_en_COMP/OE_TO_maths_en_COMP.parquet",
              "91184b52131e7fc9455fef848035173aea8cc01a", 674, "train",
              "Apache-2.0 (OlympiadBench, He et al. 2024: open-ended, text-only, maths, English)",
              "question", "final_answer", "list", "olympiadbench_", id_field="id"),
)
BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in _TABLE}


# ---------------------------------------------------------------- answers as the harnesses read them

def _after_hashes(value: Any) -> str:
    """GSM8K: the final answer follows `####`; thousands separators go (`1,234` -> `1234`)."""
    if not isinstance(value, str) or "####" not in value:
        raise ValueError("has no '#### answer' line")
    return value.rsplit("####", 1)[1].strip().replace(",", "")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"has a {type(value).__name__} where text was expected")
    return value.strip()


def _number(value: Any) -> str:
    """Integer answers stored as text, int or float (amc23's 27.0 is 27)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"has a {type(value).__name__} where a number was expected")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


_DOLLAR = re.compile(r"(?<!\\)\$")


def _joined_list(value: Any) -> str:
    """OlympiadBench: `final_answer` is a list; its answers are joined with ", " (the prompt asks
    for several answers comma-separated in one box) and the `$` math delimiters dropped, so
    `["$69$,$84$"]` is `69,84`."""
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ValueError("has no list of answers")
    parts = [_DOLLAR.sub("", str(v)).strip() for v in value if v is not None]
    if not any(parts):
        raise ValueError("has an empty list of answers")
    return ", ".join(p for p in parts if p)


ANSWER_FORMS: dict[str, Callable[[Any], str]] = {
    "after-hashes": _after_hashes, "text": _text, "number": _number, "list": _joined_list,
}


# ---------------------------------------------------------------- the Hub boundary

def cached_path(bench: Benchmark, cache_dir: Path | None = None) -> Path | None:
    """The pinned file in the HF cache, or None; never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(bench.repo, bench.filename, cache_dir=cache_dir,
                                   revision=bench.revision, repo_type="dataset")
    return Path(found) if isinstance(found, str) else None


def download(bench: Benchmark, *, offline: bool, cache_dir: Path | None = None,
             note: Callable[[str], None] | None = None, endpoint: str | None = None) -> Path:
    """The pinned file, from the HF cache or downloaded into it once (`note` says so first).
    Offline (the flag, or HF_HUB_OFFLINE=1 read now, not when huggingface_hub was imported):
    only the cache. huggingface_hub's retry warnings are held back: the error says it once.
    `endpoint`: a Hub mirror (default: HF_ENDPOINT, else the Hub)."""
    import logging

    import huggingface_hub as hub
    from huggingface_hub import errors as hf

    offline = offline or offline_from_env()
    where = f"{bench.name} ({bench.source})"
    if note is not None and not offline and cached_path(bench, cache_dir) is None:
        note(f"{bench.name}: downloading {bench.source} into the Hugging Face cache")
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)
    try:
        path = hub.hf_hub_download(bench.repo, bench.filename, repo_type="dataset",
                                   revision=bench.revision, cache_dir=cache_dir,
                                   local_files_only=offline, endpoint=endpoint)
    except hf.LocalEntryNotFoundError as exc:
        if offline:
            raise InputError(f"{where} is not in the Hugging Face cache and offline mode is on "
                             "(--offline or HF_HUB_OFFLINE=1); run once with the network to download it") from exc
        raise InputError(f"cannot reach the Hugging Face Hub to download {where}; check the network "
                         "(HF_ENDPOINT, proxy) and retry") from exc
    except hf.GatedRepoError as exc:
        raise InputError(f"{where}: the dataset is gated; accept its terms on the Hub and log in "
                         "with `hf auth login`") from exc
    except hf.RepositoryNotFoundError as exc:
        raise InputError(f"{where}: the repo was not found on the Hub (removed or private)") from exc
    except hf.RevisionNotFoundError as exc:
        raise InputError(f"{where}: the pinned revision no longer exists in the repo") from exc
    except hf.RemoteEntryNotFoundError as exc:
        raise InputError(f"{where}: the file is not in the repo at the pinned revision") from exc
    except Exception as exc:  # noqa: BLE001 - the network and disk boundary: one line, never a traceback
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"downloading {where} failed: {first[:200]}") from exc
    finally:
        hub_log.setLevel(level)
    return Path(path)


# ---------------------------------------------------------------- reading and mapping

def _repo_folder(path: Path) -> Path:
    """datasets--owner--name in the HF cache, what to delete so the file is fetched again."""
    for parent in path.parents:
        if parent.name == "snapshots":
            return parent.parent
    return path


def read_records(bench: Benchmark, path: Path) -> list[dict[str, Any]]:
    """The file's rows as dicts: parquet through pyarrow, JSON lines through json."""
    damaged = f"delete {_repo_folder(path)} and rerun to download it again"
    if bench.filename.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise InputError(f"{bench.name}: {path} is not a readable parquet file ({first}); {damaged}") from None
        records: list[dict[str, Any]] = table.to_pylist()
    else:
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{bench.name}: cannot read {path} as UTF-8 text ({exc}); {damaged}") from None
        records = []
        for n, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise InputError(f"{bench.name}: line {n} of {path} is not valid JSON; {damaged}") from None
            if not isinstance(row, dict):
                raise InputError(f"{bench.name}: line {n} of {path} is not a JSON object; {damaged}")
            records.append(row)
    if len(records) != bench.rows:
        raise InputError(f"{bench.name}: {path} has {len(records)} rows, the pinned file {bench.rows}; {damaged}")
    return records


def map_rows(bench: Benchmark, records: list[dict[str, Any]], where: str = "") -> list[dict[str, str]]:
    """`id`, `problem`, `answer` per row, in file order."""
    form = ANSWER_FORMS[bench.answer_form]
    out: list[dict[str, str]] = []
    for n, record in enumerate(records):
        problem = record.get(bench.problem_field)
        try:
            if not isinstance(problem, str) or not problem.strip():
                raise ValueError(f"has no '{bench.problem_field}' text")
            if record.get(bench.answer_field) is None:
                raise ValueError(f"has no '{bench.answer_field}'")
            answer = form(record[bench.answer_field])
            if bench.id_field is None:
                pid = f"{bench.id_prefix}{n:04d}"
            elif record.get(bench.id_field) is None:
                raise ValueError(f"has no '{bench.id_field}'")
            else:
                pid = f"{bench.id_prefix}{record[bench.id_field]}"
        except ValueError as exc:
            raise InputError(f"{bench.name}: row {n + 1}{where} {exc}: not the pinned file's schema") from None
        out.append({"id": pid, "problem": problem, "answer": answer})
    return out


def load_rows(bench: Benchmark, *, offline: bool, cache_dir: Path | None = None,
              note: Callable[[str], None] | None = None) -> list[dict[str, str]]:
    path = download(bench, offline=offline, cache_dir=cache_dir, note=note)
    return map_rows(bench, read_records(bench, path), where=f" of {path}")


def load_problems(bench: Benchmark, *, offline: bool, cache_dir: Path | None = None,
                  note: Callable[[str], None] | None = None) -> list[Problem]:
    """The benchmark as eval input: what a JSON lines file of the same rows would give."""
    return [Problem(row["id"], row["problem"].strip(), reference=row["answer"])
            for row in load_rows(bench, offline=offline, cache_dir=cache_dir, note=note)]


def unknown_name(data: str) -> InputError:
    return InputError(f"{data}: no such file, and not a benchmark name ({', '.join(BENCHMARKS)}; "
                      "see `mathsolve eval --list`)")


def listing(cache_dir: Path | None = None) -> str:
    """The `eval --list` table: name, rows, split, source, whether the file is cached."""
    header = ("name", "rows", "split", "source (repo@revision, file)", "cached")
    lines = [header] + [(b.name, str(b.rows), b.split, b.source,
                         "yes" if cached_path(b, cache_dir) else "no") for b in BENCHMARKS.values()]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    aligns = ["<", ">", "<", "<", "<"]  # rows right-aligned
    return "\n".join("  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(line, aligns, widths)).rstrip()
                     for line in lines)
