"""Model flow: model names -> cached GGUF files with manifests (resolve, list, verify, rm).

Cache layout (root = `MATHSOLVE_HOME` or the platform's user cache dir):

    <root>/models/<name>/<quant>.gguf            the model, renamed into place when complete
    <root>/models/<name>/<quant>.manifest.json   written last: a GGUF without it is unfinished
    <root>/models/<name>/.partial-*              temporary files of a running or killed pull
    <root>/downloads/<name>/                     huggingface-hub `local_dir` (resumable)
    <root>/locks/<name>.lock                     one pull (or rm) of a model at a time

Concurrent pulls of one model: the second waits `LOCK_WAIT_S` seconds, then fails with the pid
of the running pull. A pull takes minutes, so failing clearly beats a silent long wait.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from mathsolve.config import DEFAULT_MODEL, QUANT_CHOICES
from mathsolve.errors import ModelError, PullError, UsageError
from mathsolve.models.gguf_check import validate as validate_gguf
from mathsolve.models.gguf_file import check_gguf_file

PARTIAL_PREFIX = ".partial-"
LOCK_WAIT_S = 3.0
GB = 1e9
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_MANIFEST_KEYS = ("repo", "revision", "quant", "size", "sha256")
USER_FILE_FIX = (f"re-download or re-convert it (`mathsolve convert`), or use a pulled model "
                 f"(`mathsolve pull {DEFAULT_MODEL}`)")

Progress = Callable[[str], None]
# The phases of a conversion and a pull, as (phase, done, total) reports them: the converter's
# "read" (the checkpoint checked), "write" (GGUF bytes) and "quantize" (tensors), then the
# pull's "sha256" (bytes hashed). The one list of phases (mathsolve_convert's Stage names its
# first three: it imports nothing of mathsolve).
Phase = Literal["read", "write", "quantize", "sha256"]
Stages = Callable[[Phase, int, int], None]


class ModelNotCached(ModelError):
    """A Hub model that has not been pulled; the message holds the exact pull command."""

    def __init__(self, message: str, repo: str, quant: str) -> None:
        super().__init__(message)
        self.repo = repo
        self.quant = quant


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    source: str  # repo id, or "file" for a path given by the user
    name: str
    quant: str
    manifest: dict[str, Any] | None


@dataclass(frozen=True)
class CachedModel:
    name: str
    repo: str
    quant: str
    size: int
    path: Path
    revision: str
    status: str = "ok"  # "ok", or what is wrong and how to fix it


def cache_root() -> Path:
    """`MATHSOLVE_HOME`, else the platform's user cache dir."""
    env = os.environ.get("MATHSOLVE_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("mathsolve"))


def repo_to_name(repo: str) -> str:
    """`owner/name` -> `owner--name`: reversible, since the Hub forbids `--` in ids."""
    if not _REPO_RE.match(repo) or "--" in repo or ".." in repo:
        raise ModelError(f"{repo!r} is not a Hugging Face repo id (expected owner/name)")
    return repo.replace("/", "--", 1)


def name_to_repo(name: str) -> str:
    owner, sep, rest = name.partition("--")
    return f"{owner}/{rest}" if sep else name


def _check_quant(quant: str) -> None:
    if quant not in QUANT_CHOICES:
        raise UsageError(f"unknown quant {quant!r}: choose one of {', '.join(QUANT_CHOICES)}")


def _gguf_path(mdir: Path, quant: str) -> Path:
    return mdir / f"{quant}.gguf"


def _manifest_path(mdir: Path, quant: str) -> Path:
    return mdir / f"{quant}.manifest.json"


def _pull_cmd(repo: str, quant: str, force: bool = False) -> str:
    return f"mathsolve pull {repo} --quant {quant}" + (" --force" if force else "")


def _looks_like_path(spec: str) -> bool:
    return (
        spec.endswith(".gguf")
        or spec.startswith(("/", "./", "../", "~", "."))
        or "\\" in spec
        or spec.count("/") > 1
    )


def sha256_file(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    """The hex sha256; `on_bytes(n)` after each block read, for a progress bar."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            if on_bytes is not None:
                on_bytes(len(block))
    return digest.hexdigest()


def _stat_record(st: os.stat_result) -> dict[str, Any]:
    """What identifies the file's bytes cheaply. ctime_ns changes on every write and cannot be
    set back (`touch -r`, `cp -p` keep mtime, not ctime); a copy or replacement gets a new
    inode. Any difference means hashing again."""
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "inode": st.st_ino, "device": st.st_dev}


def _read_manifest(mpath: Path, repo: str, quant: str) -> dict[str, Any]:
    """The manifest, validated; a ModelError naming the `--force` fix when it is unusable."""
    fix = f"run `{_pull_cmd(repo, quant, force=True)}`"
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"corrupt manifest {mpath} ({type(exc).__name__}); {fix}") from exc
    if not isinstance(data, dict) or any(k not in data for k in _MANIFEST_KEYS):
        raise ModelError(f"corrupt manifest {mpath} (missing fields); {fix}")
    if data["quant"] != quant or not isinstance(data["size"], int):
        raise ModelError(f"corrupt manifest {mpath} (wrong quant or size); {fix}")
    return data


def _load_cached(mdir: Path, repo: str, quant: str, verify: bool, *, hash_if_changed: bool = True,
                 locked: bool = False,
                 on_bytes: Callable[[int], None] | None = None) -> ResolvedModel | None:
    """The finished model in `mdir`, None when absent or unfinished, ModelError when damaged.

    The GGUF is hashed when `verify`, or when its stat differs from the one recorded in the
    manifest (or none is recorded: a manifest of an older mathsolve); a match records the new
    stat, so the next load is fast. `hash_if_changed=False` (listing) never hashes: a changed
    file gets a status instead. `locked`: the caller holds the model lock."""
    gguf, mpath = _gguf_path(mdir, quant), _manifest_path(mdir, quant)
    if not mpath.exists() or not gguf.exists():
        if mpath.exists():
            raise ModelError(
                f"{gguf} is missing but its manifest exists; run `{_pull_cmd(repo, quant, True)}`"
            )
        return None  # a GGUF without a manifest is an unfinished pull
    manifest = _read_manifest(mpath, repo, quant)
    fix = f"run `{_pull_cmd(manifest['repo'], quant, force=True)}`"
    before = _stat_record(gguf.stat())
    if before["size"] != manifest["size"]:
        raise ModelError(f"{gguf} is {before['size']} bytes but its manifest says "
                         f"{manifest['size']} (truncated?); {fix}")
    check_gguf_file(gguf, fix)
    if verify or manifest.get("stat") != before:
        if not (verify or hash_if_changed):
            why = ("changed on disk since its sha256 was last checked" if manifest.get("stat")
                   else "was pulled by an older mathsolve and not hashed since")
            raise ModelError(f"{gguf} {why} (its next load hashes it); "
                             f"`mathsolve models verify {mdir.name} --quant {quant}` checks it now")
        if sha256_file(gguf, on_bytes) != manifest["sha256"]:
            raise ModelError(f"{gguf} does not match the sha256 in its manifest; {fix}")
        unchanged_while_hashed = _stat_record(gguf.stat()) == before
        if unchanged_while_hashed and manifest.get("stat") != before:
            manifest = _record_stat(mdir, mpath, manifest, before, locked)
    return ResolvedModel(gguf, manifest["repo"], mdir.name, quant, manifest)


def _record_stat(mdir: Path, mpath: Path, manifest: dict[str, Any], stat: dict[str, Any],
                 locked: bool) -> dict[str, Any]:
    """The manifest with `stat` recorded, rewritten atomically under the model lock when the
    lock is free (a running pull or rm holds it: then nothing is written, the next load hashes
    again) and the manifest is still the one that was checked."""
    from filelock import FileLock, Timeout

    updated = {**manifest, "stat": stat}
    locks = mdir.parent.parent / "locks"
    lock = None if locked else FileLock(str(locks / f"{mdir.name}.lock"))
    try:
        if lock is not None:
            locks.mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=0)
        try:
            if json.loads(mpath.read_text(encoding="utf-8")) == manifest:
                _write_json_atomic(mpath, updated)
                return updated
        finally:
            if lock is not None:
                lock.release()
    except (Timeout, OSError, ValueError):
        pass  # not recorded: only costs a hash next time
    return manifest


def resolve(spec: str | None, quant: str, *, verify: bool = False) -> ResolvedModel:
    """A `--model` value (path, cached name or repo id) -> a GGUF on disk, or why not."""
    _check_quant(quant)
    spec = spec or os.environ.get("MATHSOLVE_MODEL") or DEFAULT_MODEL
    path = Path(spec).expanduser()
    if path.is_file():
        check_gguf_file(path, "pass a .gguf model file")
        # Not written by our pull: llama.cpp may abort on it, so it is checked first.
        validate_gguf(path, USER_FILE_FIX, verdicts=cache_root() / "validated")
        return ResolvedModel(path, "file", path.stem, quant, None)
    if path.is_dir() and not _REPO_RE.match(spec):
        raise ModelError(f"{spec} is a directory; pass a .gguf file, a cached name or a repo id")
    models_dir = cache_root() / "models"
    if _REPO_RE.match(spec) and not spec.endswith(".gguf"):
        name = repo_to_name(spec)
        found = _load_cached(models_dir / name, spec, quant, verify)
        if found is None:
            raise ModelNotCached(
                f"{spec} ({quant}) is not downloaded yet; run `{_pull_cmd(spec, quant)}`",
                spec,
                quant,
            )
        return found
    if _looks_like_path(spec):
        raise ModelError(f"model file {spec} does not exist")
    mdir = models_dir / spec
    if mdir.is_dir():
        found = _load_cached(mdir, name_to_repo(spec), quant, verify)
        if found is not None:
            return found
    cached = ", ".join(f"{m.name} ({m.quant})" for m in list_models()) or "none"
    raise ModelError(
        f"unknown model {spec!r} at {quant}: give a .gguf path, a repo id (owner/name) "
        f"or a cached name; cached: {cached}"
    )


def list_models() -> list[CachedModel]:
    """Every GGUF in the cache, with `status` saying what is wrong when it cannot be used."""
    out: list[CachedModel] = []
    models_dir = cache_root() / "models"
    if not models_dir.is_dir():
        return out
    for mdir in sorted(p for p in models_dir.iterdir() if p.is_dir()):
        for gguf in sorted(mdir.glob("*.gguf")):
            if gguf.name.startswith("."):
                continue
            quant, repo = gguf.stem, name_to_repo(mdir.name)
            size, revision, status = gguf.stat().st_size, "", "ok"
            try:
                found = _load_cached(mdir, repo, quant, verify=False, hash_if_changed=False)
                if found is None:
                    status = f"unfinished pull: run `{_pull_cmd(repo, quant)}`"
                else:  # _load_cached always reads a manifest
                    manifest = cast("dict[str, Any]", found.manifest)
                    repo, revision = manifest["repo"], manifest["revision"]
            except ModelError as exc:
                status = str(exc)
            out.append(CachedModel(mdir.name, repo, quant, size, gguf, revision, status))
    return out


@dataclass(frozen=True)
class Verified:
    name: str
    quant: str
    path: Path
    size: int
    error: str | None  # None: the sha256 matches its manifest


def verify(name_or_repo: str | None, quant: str | None,
           on_start: Callable[[str, str, int], Callable[[int], None] | None] | None = None,
           ) -> list[Verified]:
    """Hash every cached GGUF (or one model's, or one quant's) against its manifest.

    `on_start(name, quant, size)` is called before each file and may return an `on_bytes`
    callback for a progress bar. A match records the file's stat, so loads skip the hash."""
    if quant is not None:
        _check_quant(quant)
    name = repo_to_name(name_or_repo) if name_or_repo and "/" in name_or_repo else name_or_repo
    found = [m for m in list_models() if name in (None, m.name) and quant in (None, m.quant)]
    if not found:
        if name_or_repo is None and quant is None:
            return []
        cached = ", ".join(f"{m.name} ({m.quant})" for m in list_models()) or "none"
        what = f"model {name_or_repo!r}" if name_or_repo else "model"
        raise ModelError(f"no cached {what}{f' at {quant}' if quant else ''}; cached: {cached}")
    out: list[Verified] = []
    for m in found:
        on_bytes = on_start(m.name, m.quant, m.size) if on_start else None
        repo = name_to_repo(m.name)
        try:
            got = _load_cached(m.path.parent, repo, m.quant, verify=True, on_bytes=on_bytes)
            error = (None if got else
                     f"{m.path} is an unfinished pull; run `{_pull_cmd(repo, m.quant)}`")
        except ModelError as exc:
            error = str(exc)
        out.append(Verified(m.name, m.quant, m.path, m.size, error))
    return out


def remove(name_or_repo: str, quant: str | None) -> list[Path]:
    """Delete a cached model (one quant, or all of it with its downloads); the paths removed."""
    if quant is not None:
        _check_quant(quant)
    name = repo_to_name(name_or_repo) if "/" in name_or_repo else name_or_repo
    root = cache_root()
    mdir = root / "models" / name
    if not name or name.startswith(".") or not mdir.is_dir():
        cached = ", ".join(sorted({m.name for m in list_models()})) or "none"
        raise ModelError(f"no cached model {name_or_repo!r}; cached: {cached}")
    removed: list[Path] = []
    with _model_lock(root, name, "mathsolve models rm"):
        if quant is None:
            for target in (mdir, root / "downloads" / name):
                if target.exists():
                    shutil.rmtree(target)
                    removed.append(target)
            return removed
        for path in (_gguf_path(mdir, quant), _manifest_path(mdir, quant)):
            if path.exists():
                path.unlink()
                removed.append(path)
    if not removed:
        raise ModelError(f"{name} has no {quant} in the cache")
    return removed


@contextmanager
def _model_lock(root: Path, name: str, what: str) -> Iterator[None]:
    """One pull/rm per model; the holder's pid sits beside the lock for the error message."""
    from filelock import FileLock, Timeout

    locks = root / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(locks / f"{name}.lock"))
    pid_file = locks / f"{name}.pid"
    try:
        lock.acquire(timeout=LOCK_WAIT_S)
    except Timeout:
        try:
            pid = pid_file.read_text(encoding="utf-8").strip() or "unknown"
        except OSError:
            pid = "unknown"
        raise PullError(
            f"another mathsolve pull of {name_to_repo(name)} is running (pid {pid}); "
            f"wait for it to finish, then retry `{what}`"
        ) from None
    try:
        pid_file.write_text(str(os.getpid()), encoding="utf-8")
        yield
    finally:
        pid_file.unlink(missing_ok=True)
        lock.release()


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{PARTIAL_PREFIX}{path.name}.{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
