"""Model flow: the Hugging Face Hub boundary of `pull` (what to fetch, the download, its errors).

The only code that talks to the network for a model; tests replace `pull._download` (this
module's `download`, as mathsolve.models.pull imports it) with a copy of a local checkpoint,
and test this code on local files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from mathsolve.errors import PullError

ALLOW_PATTERNS = [
    "*.safetensors",
    "model.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
]
SOURCE_MARKER = ".mathsolve-source.json"  # written when a download finished: repo + revision sha


def offline_from_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def remaining_download(sizes: dict[str, int], dest: Path) -> int:
    """Bytes still to fetch: files already complete in `dest` are skipped by huggingface-hub."""
    left = 0
    for fname, size in sizes.items():
        have = dest / fname
        if not (have.is_file() and have.stat().st_size == size):
            left += size
    return left


def hub_error(repo: str, revision: str | None, exc: Exception) -> PullError:
    """A huggingface-hub failure as one line that says what to do."""
    from huggingface_hub import errors as hf

    if isinstance(exc, hf.GatedRepoError):
        msg = f"{repo} is gated: accept its terms on the Hub, then log in with `hf auth login`"
    elif isinstance(exc, hf.RevisionNotFoundError):
        msg = f"revision {revision!r} does not exist in {repo}; check --revision"
    elif isinstance(exc, hf.RepositoryNotFoundError):
        msg = f"{repo} was not found on the Hugging Face Hub (typo, or private: `hf auth login`)"
    elif isinstance(exc, hf.OfflineModeIsEnabled):
        msg = f"{repo} is not downloaded and HF_HUB_OFFLINE=1 forbids the network; unset it"
    elif isinstance(exc, hf.LocalEntryNotFoundError) or any(
        c.__name__ in ("TransportError", "ConnectionError") for c in type(exc).__mro__
    ):
        msg = (
            f"cannot reach the Hugging Face Hub to download {repo}; check the network "
            "(an interrupted download resumes on the next pull)"
        )
    else:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        msg = f"downloading {repo} failed: {first[:200]}; check the network and retry"
    return PullError(msg)


def download(
    repo: str,
    revision: str | None,
    dest: Path,
    offline: bool,
    *,
    before_fetch: Callable[[int, int], None] | None = None,
) -> tuple[Path, str]:
    """The Hub boundary: the HF checkpoint folder and its revision sha.

    Online: resolve the revision to a sha, call `before_fetch(bytes_to_download,
    source_weight_bytes)` (the disk check), then a resumable `snapshot_download` into `dest`.
    Offline: no network; `dest` if a download finished there, else the user's HF hub cache.
    Tests replace this function; fakes must accept `before_fetch=` (or `**_`).
    """
    import huggingface_hub as hub

    if offline:
        done = finished_source(dest, repo, revision)
        if done is not None:
            return dest, done
        try:
            path = hub.snapshot_download(
                repo, revision=revision, local_files_only=True, allow_patterns=ALLOW_PATTERNS
            )
        except Exception as exc:  # noqa: BLE001 - any failure means "not available offline"
            raise PullError(
                f"{repo} is not downloaded and offline mode is on (--offline or HF_HUB_OFFLINE=1); "
                f"connect to the network and run `mathsolve pull {repo}` without it"
            ) from exc
        return Path(path), Path(path).name  # snapshots/<sha>
    try:
        info = hub.HfApi().model_info(repo, revision=revision, files_metadata=True)
        import fnmatch

        sizes = {
            s.rfilename: int(s.size or 0)
            for s in info.siblings or []
            if any(fnmatch.fnmatch(s.rfilename, pat) for pat in ALLOW_PATTERNS)
        }
        weights = sum(v for k, v in sizes.items() if k.endswith(".safetensors"))
        if not weights:
            raise PullError(f"{repo} has no .safetensors weights; mathsolve needs them to convert")
        if before_fetch is not None:
            before_fetch(remaining_download(sizes, dest), weights)
        path = hub.snapshot_download(
            repo, revision=info.sha, local_dir=dest, allow_patterns=ALLOW_PATTERNS
        )
    except PullError:
        raise
    except Exception as exc:  # noqa: BLE001 - the network boundary: report, never a traceback
        raise hub_error(repo, revision, exc) from exc
    return Path(path), str(info.sha)


def finished_source(dest: Path, repo: str, revision: str | None) -> str | None:
    """The revision sha of a download that completed in `dest` (see SOURCE_MARKER), else None."""
    try:
        mark = json.loads((dest / SOURCE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(mark, dict) or mark.get("repo") != repo:
        return None
    if revision not in (None, mark.get("revision"), mark.get("requested_revision")):
        return None
    return str(mark.get("revision"))
