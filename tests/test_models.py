"""The model cache and `pull`: the Hub download is the only fake (a copy of a tiny checkpoint);
conversion, quantisation, manifest, hashing, locking and loading are the real code."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_mathsolve
from fakeserver import LocalServer

from mathsolve.errors import ModelError, PullError, UsageError
from mathsolve.models import cache as models
from mathsolve.models import pull as pulling
from mathsolve.models.hub import SOURCE_MARKER

REPO_ID = "tiny/qwen3"
NAME = "tiny--qwen3"
SHA = "0123456789abcdef0123456789abcdef01234567"
_REAL_DOWNLOAD = pulling._download  # before any test replaces it


@pytest.fixture(scope="session")
def tiny_ckpt(tiny_qwen3_dir) -> Path:
    """The converter's tiny Qwen3 checkpoint (tests/conftest.py)."""
    return tiny_qwen3_dir


def fake_hub(src: Path, calls: list, fetch_bytes: int = 0):
    """Stands in for the Hub: copies `src` into the download dir, like a finished download."""

    def _download(repo, revision, dest, offline, *, before_fetch=None):
        calls.append({"repo": repo, "revision": revision, "dest": dest, "offline": offline})
        weights = sum(p.stat().st_size for p in src.glob("*.safetensors"))
        if before_fetch is not None:
            before_fetch(fetch_bytes or weights, weights)
        dest.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if f.is_file():
                shutil.copy2(f, dest / f.name)
        return dest, SHA

    return _download


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("MATHSOLVE_HOME", str(path))
    for var in ("MATHSOLVE_MODEL", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    return path


@pytest.fixture
def hub_calls(monkeypatch, tiny_ckpt) -> list:
    calls: list = []
    monkeypatch.setattr(pulling, "_download", fake_hub(tiny_ckpt, calls))
    return calls


@pytest.fixture
def network_attempts(monkeypatch) -> list:
    """Every outgoing connection is refused and recorded."""
    attempts: list = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.fixture(scope="session")
def pulled_template(tiny_ckpt, tmp_path_factory) -> Path:
    """A cache holding tiny/qwen3 at q8_0, pulled once; tests get copies."""
    root = tmp_path_factory.mktemp("pulled") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MATHSOLVE_HOME", str(root))
        mp.setattr(pulling, "_download", fake_hub(tiny_ckpt, []))
        pulling.pull(REPO_ID, "q8_0")
    return root


@pytest.fixture
def cached(pulled_template, home) -> Path:
    shutil.copytree(pulled_template, home)
    return home / "models" / NAME


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- pull ---------------------------------------------------------------------------------

@pytest.mark.parametrize("quant", ["q8_0", "q4_k_m"], ids=["q8_0", "k-quant-q4_k_m"])
def test_pull_writes_gguf_and_manifest_that_llama_cpp_loads(home, hub_calls, quant):
    import llama_cpp

    notes: list[str] = []
    got = pulling.pull(REPO_ID, quant, progress=notes.append)

    mdir = home / "models" / NAME
    assert got.path == mdir / f"{quant}.gguf" and got.source == REPO_ID and got.name == NAME
    manifest = json.loads((mdir / f"{quant}.manifest.json").read_text())
    assert manifest["repo"] == REPO_ID and manifest["revision"] == SHA
    assert manifest["quant"] == quant and manifest["size"] == got.path.stat().st_size
    assert manifest["sha256"] == _sha256(got.path)
    assert manifest["converter_version"] not in ("", "unknown")
    assert list(mdir.glob(".*partial-*")) == []
    assert not (home / "downloads" / NAME).exists(), "source must go without --keep-source"
    assert any("needs about" in n and "GB" in n for n in notes), notes
    assert models.resolve(REPO_ID, quant, verify=True).path == got.path

    llm = llama_cpp.Llama(model_path=str(got.path), n_ctx=64, verbose=False)
    try:
        assert llm.n_vocab() > 0
        assert llm.tokenize(b"<|im_end|>", add_bos=False, special=True) == [llm.token_eos()]
    finally:
        llm.close()


def test_pull_reuses_a_cached_model_without_downloading(cached, hub_calls):
    before = cached.joinpath("q8_0.gguf").stat().st_mtime_ns
    got = pulling.pull(REPO_ID, "q8_0")
    assert hub_calls == [] and got.path.stat().st_mtime_ns == before


def test_pull_force_replaces_a_damaged_model(cached, hub_calls):
    (cached / "q8_0.manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="--force"):
        models.resolve(REPO_ID, "q8_0")
    pulling.pull(REPO_ID, "q8_0", force=True)
    assert len(hub_calls) == 1
    assert models.resolve(REPO_ID, "q8_0", verify=True).manifest["revision"] == SHA


def test_pull_keep_source_then_offline_requantise_needs_no_network(home, hub_calls, monkeypatch,
                                                                    network_attempts):
    pulling.pull(REPO_ID, "q8_0", keep_source=True)
    dest = home / "downloads" / NAME
    assert list(dest.glob("*.safetensors")) and (dest / SOURCE_MARKER).exists()
    monkeypatch.setattr(pulling, "_download", _REAL_DOWNLOAD)  # the real one, offline
    got = pulling.pull(REPO_ID, "bf16", offline=True, keep_source=True)
    assert got.manifest["revision"] == SHA and network_attempts == []


def test_pull_refuses_up_front_when_the_disk_is_too_small(home, monkeypatch, tiny_ckpt):
    calls: list = []
    monkeypatch.setattr(pulling, "_download", fake_hub(tiny_ckpt, calls, fetch_bytes=10**16))
    with pytest.raises(PullError, match=r"need \d+\.\d GB, have \d+\.\d GB"):
        pulling.pull(REPO_ID, "q4_k_m")
    assert not (home / "downloads" / NAME).exists(), "the check runs before any download"


@pytest.mark.parametrize("bad", ["nobody", "a/b/c", "owner/--x", "-x/y"], ids=str)
def test_pull_rejects_what_is_not_a_repo_id(home, hub_calls, bad):
    with pytest.raises(ModelError, match="not a Hugging Face repo id"):
        pulling.pull(bad, "q8_0")
    assert hub_calls == []


def test_pull_rejects_an_unknown_quant(home, hub_calls):
    with pytest.raises(UsageError, match="q4_k_m"):
        pulling.pull(REPO_ID, "q3_k")


# --- offline ------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["argument", "env"], ids=["offline=True", "HF_HUB_OFFLINE=1"])
def test_offline_pull_of_cached_model_never_downloads(cached, hub_calls, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    got = pulling.pull(REPO_ID, "q8_0", offline=how == "argument")
    assert hub_calls == [] and got.path.exists()


def test_offline_pull_of_missing_model_fails_at_once_without_network(
    home, tmp_path, monkeypatch, network_attempts
):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    start = time.monotonic()
    with pytest.raises(PullError, match="offline") as info:
        pulling.pull(REPO_ID, "q8_0", offline=True)
    assert "mathsolve pull tiny/qwen3" in str(info.value)
    assert network_attempts == [] and time.monotonic() - start < 5


def test_real_snapshot_download_from_a_prepopulated_hub_cache(home, tmp_path, monkeypatch,
                                                               tiny_ckpt, network_attempts):
    """The real huggingface-hub code path: offline, served from the HF cache layout."""
    import huggingface_hub.constants

    hub = tmp_path / "hub"
    snap = hub / "models--tiny--qwen3" / "snapshots" / SHA
    shutil.copytree(tiny_ckpt, snap)
    (hub / "models--tiny--qwen3" / "refs").mkdir()
    (hub / "models--tiny--qwen3" / "refs" / "main").write_text(SHA)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    got = pulling.pull(REPO_ID, "q8_0")
    assert got.manifest["revision"] == SHA and got.path.exists()
    assert list(snap.glob("*.safetensors")), "files in the user's HF cache are never deleted"
    assert network_attempts == []


class _HubStub(LocalServer):
    """A local HTTP server answering every request with one status and Hub error code."""

    def __init__(self, status: int, code: str | None):
        import http.server

        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                self.send_response(status)
                if code:
                    self.send_header("X-Error-Code", code)
                body = json.dumps({"error": f"stub {status}"}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = _answer

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        stub.status = status


@pytest.mark.parametrize(
    "status,code,expected",
    [
        (404, "RepoNotFound", "was not found on the Hugging Face Hub"),
        (403, "GatedRepo", "is gated"),
        (404, "RevisionNotFound", "revision 'v9' does not exist"),
        (500, None, "downloading tiny/qwen3 failed"),
        (None, None, "cannot reach the Hugging Face Hub"),
    ],
    ids=["repo-not-found", "gated", "bad-revision", "server-error", "unreachable"],
)
def test_hub_failures_become_one_line_pull_errors(home, monkeypatch, status, code, expected):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    stub = _HubStub(status, code) if status else None
    url = stub.url if stub else "http://127.0.0.1:9"  # nothing listens on port 9
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", url)
    try:
        with pytest.raises(PullError) as info:
            pulling.pull(REPO_ID, "q8_0", revision="v9" if code == "RevisionNotFound" else None)
    finally:
        if stub:
            stub.close()
    message = str(info.value)
    assert expected in message and "\n" not in message


# --- resolve ------------------------------------------------------------------------------

def test_resolve_by_repo_name_path_and_env(cached, monkeypatch):
    by_repo = models.resolve(REPO_ID, "q8_0")
    by_name = models.resolve(NAME, "q8_0")
    by_path = models.resolve(str(cached / "q8_0.gguf"), "q8_0")
    monkeypatch.setenv("MATHSOLVE_MODEL", REPO_ID)
    by_env = models.resolve(None, "q8_0")
    assert by_repo.path == by_name.path == by_path.path == by_env.path
    assert (by_repo.source, by_path.source, by_path.manifest) == (REPO_ID, "file", None)


def test_resolve_default_model_not_cached_names_the_exact_pull_command(home):
    with pytest.raises(models.ModelNotCached) as info:
        models.resolve(None, "q4_k_m")
    assert f"`mathsolve pull {models.DEFAULT_MODEL} --quant q4_k_m`" in str(info.value)
    assert (info.value.repo, info.value.quant) == (models.DEFAULT_MODEL, "q4_k_m")


def test_resolve_other_quant_of_cached_model_is_not_cached(cached):
    with pytest.raises(models.ModelNotCached, match="mathsolve pull tiny/qwen3 --quant q6_k"):
        models.resolve(REPO_ID, "q6_k")


def _random_file(d: Path) -> Path:
    (d / "random.gguf").write_bytes(os.urandom(4096))
    return d / "random.gguf"


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda d: "./missing/model.gguf", "model file ./missing/model.gguf does not exist"),
        (lambda d: str(d / "nothing.gguf"), "does not exist"),
        (lambda d: str(_random_file(d)), "not a GGUF file"),
        (lambda d: str(d), "is a directory"),
        (lambda d: "no-such-model", "unknown model 'no-such-model'.*cached: tiny--qwen3 \\(q8_0\\)"),
    ],
    ids=["missing-relative-path", "missing-absolute-path", "random-bytes", "directory", "unknown-name"],
)
def test_resolve_bad_specs_fail_with_one_line(cached, tmp_path, make, expected):
    with pytest.raises(ModelError, match=expected) as info:
        models.resolve(make(tmp_path), "q8_0")
    assert not isinstance(info.value, models.ModelNotCached) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "damage,verify",
    [
        (lambda m: (m / "q8_0.manifest.json").write_text("{broken"), False),
        (lambda m: (m / "q8_0.manifest.json").write_text('{"repo": "tiny/qwen3"}'), False),
        (lambda m: _flip_byte(m / "q8_0.gguf"), True),
        (lambda m: _truncate(m / "q8_0.gguf"), False),
        (lambda m: _overwrite_magic(m / "q8_0.gguf"), False),
    ],
    ids=["manifest-not-json", "manifest-missing-fields", "sha256-mismatch", "truncated", "bad-magic"],
)
def test_damaged_cache_is_detected_with_the_force_fix(cached, damage, verify):
    damage(cached)
    with pytest.raises(ModelError) as info:
        models.resolve(REPO_ID, "q8_0", verify=verify)
    assert "`mathsolve pull tiny/qwen3 --quant q8_0 --force`" in str(info.value)
    if not verify:  # listing makes only the cheap checks (no hashing of GB files)
        assert models.list_models()[0].status != "ok"


@pytest.fixture
def hashes(monkeypatch) -> list[Path]:
    """Every file models.py hashes (a spy: the real sha256_file still runs)."""
    seen: list[Path] = []
    real = models.sha256_file

    def spy(path, on_bytes=None):
        seen.append(Path(path))
        return real(path, on_bytes)

    monkeypatch.setattr(models, "sha256_file", spy)
    return seen


def _settled(cached: Path) -> Path:
    """The cached GGUF after one load: its stat (new inode after copytree) is recorded."""
    models.resolve(REPO_ID, "q8_0")
    return cached / "q8_0.gguf"


def _edit_keeping_mtime(gguf: Path) -> None:
    """Change bytes in place, then put the old mtime back (`touch -r`): same size, mtime, inode."""
    st = gguf.stat()
    with open(gguf, "r+b") as fh:
        fh.seek(st.st_size // 2)
        byte = fh.read(1)
        fh.seek(st.st_size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    os.utime(gguf, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = gguf.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


def _impostor(gguf: Path, tmp: Path) -> tuple[Path, os.stat_result]:
    """A copy of the GGUF with other bytes, the same size and its mtime; and the GGUF's stat."""
    other = tmp / "other.gguf"
    shutil.copy2(gguf, other)
    _flip_byte(other)
    st = gguf.stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    return other, st


def _cp_p_over(gguf: Path, tmp: Path) -> None:
    """`cp -p` of a same-size file with other bytes and the original's mtime over the GGUF."""
    other, st = _impostor(gguf, tmp)
    subprocess.run(["cp", "-p", str(other), str(gguf)], check=True)
    assert (gguf.stat().st_size, gguf.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def _replaced_by_a_copy(gguf: Path, tmp: Path) -> None:
    """A new file (new inode) with other bytes, the same size and the original's mtime."""
    other, st = _impostor(gguf, tmp)
    os.replace(other, gguf)
    assert gguf.stat().st_ino != st.st_ino and gguf.stat().st_mtime_ns == st.st_mtime_ns


@pytest.mark.parametrize("edit", ["touch-r", "cp-p", "new-inode"])
def test_a_changed_gguf_with_the_same_size_and_mtime_is_caught_on_load(cached, tmp_path, edit):
    gguf = _settled(cached)
    {"touch-r": lambda: _edit_keeping_mtime(gguf), "cp-p": lambda: _cp_p_over(gguf, tmp_path),
     "new-inode": lambda: _replaced_by_a_copy(gguf, tmp_path)}[edit]()
    with pytest.raises(ModelError, match="does not match the sha256") as info:
        models.resolve(REPO_ID, "q8_0")
    assert "`mathsolve pull tiny/qwen3 --quant q8_0 --force`" in str(info.value)


def test_an_unchanged_gguf_is_not_hashed_on_load_and_an_identical_copy_once(cached, hashes):
    gguf = _settled(cached)
    assert hashes == [gguf]  # copytree gave it a new inode: hashed once, stat recorded
    recorded = json.loads((cached / "q8_0.manifest.json").read_text())["stat"]
    assert recorded["inode"] == gguf.stat().st_ino and recorded["size"] == gguf.stat().st_size
    models.resolve(REPO_ID, "q8_0")
    models.resolve(NAME, "q8_0")
    assert hashes == [gguf]  # the cheap path: stat matches, no hash
    copy = cached / "copy.tmp"
    shutil.copy2(gguf, copy)
    os.replace(copy, gguf)  # same bytes, new inode: hashed once more, then fast again
    models.resolve(REPO_ID, "q8_0")
    models.resolve(REPO_ID, "q8_0")
    assert hashes == [gguf, gguf]


def test_a_manifest_without_stat_from_an_older_version_is_hashed_once_then_recorded(cached, hashes):
    mpath = cached / "q8_0.manifest.json"
    manifest = json.loads(mpath.read_text())
    del manifest["stat"]
    mpath.write_text(json.dumps(manifest))
    assert models.resolve(REPO_ID, "q8_0").path.exists()
    assert models.resolve(REPO_ID, "q8_0").path.exists()
    assert len(hashes) == 1
    assert json.loads(mpath.read_text())["stat"]["inode"] == (cached / "q8_0.gguf").stat().st_ino
    _edit_keeping_mtime(cached / "q8_0.gguf")
    del manifest["sha256"]  # a damaged old manifest is still refused with the fix
    mpath.write_text(json.dumps({**manifest, "sha256": "0" * 64}))
    with pytest.raises(ModelError, match="does not match the sha256"):
        models.resolve(REPO_ID, "q8_0")


def test_verify_true_always_hashes(cached, hashes):
    gguf = _settled(cached)
    models.resolve(REPO_ID, "q8_0", verify=True)
    assert hashes == [gguf, gguf]


def test_listing_never_hashes_and_names_verify_for_a_changed_file(cached, hashes):
    gguf = _settled(cached)
    _edit_keeping_mtime(gguf)
    [entry] = models.list_models()
    assert hashes == [gguf]  # only _settled's
    assert "changed on disk" in entry.status
    assert "mathsolve models verify tiny--qwen3 --quant q8_0" in entry.status


def test_pull_writes_the_stat_of_the_renamed_gguf(home, hub_calls, hashes):
    got = pulling.pull(REPO_ID, "q8_0")
    st = got.path.stat()
    assert got.manifest["stat"] == {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                    "ctime_ns": st.st_ctime_ns, "inode": st.st_ino,
                                    "device": st.st_dev}
    hashes.clear()
    models.resolve(REPO_ID, "q8_0")
    assert hashes == []  # a fresh pull loads without hashing


def _verify_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MATHSOLVE_HOME": str(home), "NO_COLOR": "1"}
    return run_mathsolve("models", "verify", *args, text=True, env=env, timeout=120)


def test_models_verify_command_good_and_bad_models(cached, home):
    other = home / "models" / "tiny--other"
    shutil.copytree(cached, other)
    good = _verify_cli(home)
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines() == [f"ok  tiny--other  q8_0  {other / 'q8_0.gguf'}",
                                        f"ok  tiny--qwen3  q8_0  {cached / 'q8_0.gguf'}"]
    assert "hashing tiny--qwen3 q8_0" in good.stderr and "\x1b[" not in good.stderr

    _edit_keeping_mtime(cached / "q8_0.gguf")
    bad = _verify_cli(home)
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [f"ok  tiny--other  q8_0  {other / 'q8_0.gguf'}"]
    errors = [ln for ln in bad.stderr.splitlines() if ln.startswith("mathsolve: error:")]
    assert errors == [f"mathsolve: error: {cached / 'q8_0.gguf'} does not match the sha256 in "
                      "its manifest; run `mathsolve pull tiny/qwen3 --quant q8_0 --force`"]

    one = _verify_cli(home, "tiny/other", "--quant", "q8_0")  # by repo id, one quant
    assert (one.returncode, one.stdout.split()[:3]) == (0, ["ok", "tiny--other", "q8_0"])
    missing = _verify_cli(home, "nothing")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [
        "mathsolve: error: no cached model 'nothing'; cached: tiny--other (q8_0), tiny--qwen3 (q8_0)"]


def test_models_verify_with_an_empty_cache_says_so_and_succeeds(home):
    proc = _verify_cli(home)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "no cached models" in proc.stderr


@pytest.mark.parametrize("no_color", [False, True], ids=["colour-terminal", "NO_COLOR"])
def test_models_verify_shows_a_progress_bar_on_a_terminal_unless_no_color(cached, home, no_color):
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "MATHSOLVE_HOME": str(home), "TERM": "xterm-256color", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    if no_color:
        env["NO_COLOR"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "mathsolve", "models", "verify"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower,
                            env=env)
    os.close(follower)
    out, _ = proc.communicate(timeout=120)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)
    assert proc.returncode == 0 and out.decode().startswith("ok  tiny--qwen3")
    if no_color:  # plain lines, no escape codes
        assert b"hashing tiny--qwen3 q8_0" in screen and b"\x1b[" not in screen
    else:  # rich's live bar
        assert b"sha256 tiny--qwen3 q8_0" in screen and b"\x1b[" in screen
        assert b"hashing tiny--qwen3" not in screen


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _overwrite_magic(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:4] = b"XXXX"
    path.write_bytes(bytes(data))


# --- interrupted pulls, locks -------------------------------------------------------------

def test_leftovers_of_an_interrupted_pull_never_count_and_are_cleaned(home, hub_calls, tiny_ckpt):
    mdir = home / "models" / NAME
    mdir.mkdir(parents=True)
    (mdir / ".partial-q8_0-4242.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    (mdir / "q8_0.gguf").write_bytes(b"GGUF" + b"\0" * 64)  # renamed, manifest never written
    with pytest.raises(models.ModelNotCached):
        models.resolve(REPO_ID, "q8_0")
    assert models.list_models()[0].status.startswith("unfinished pull")

    notes: list[str] = []
    pulling.pull(REPO_ID, "q8_0", progress=notes.append)
    assert not (mdir / ".partial-q8_0-4242.gguf").exists()
    assert models.resolve(REPO_ID, "q8_0", verify=True).manifest["sha256"]
    assert any("interrupted pull" in n for n in notes)


def test_a_failed_download_keeps_the_partial_files_for_resuming(home, monkeypatch, tiny_ckpt):
    """huggingface-hub resumes from `local_dir`; pull must hand back the same dir untouched."""
    seen: list[list[str]] = []

    def dies_half_way(repo, revision, dest, offline, **_):
        seen.append(sorted(p.name for p in dest.glob("*")) if dest.exists() else [])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(tiny_ckpt / "config.json", dest / "config.json")
        raise PullError("cannot reach the Hugging Face Hub (simulated drop)")

    monkeypatch.setattr(pulling, "_download", dies_half_way)
    for _ in range(2):
        with pytest.raises(PullError):
            pulling.pull(REPO_ID, "q8_0")
    assert seen == [[], ["config.json"]]
    assert not (home / "downloads" / NAME / SOURCE_MARKER).exists()


_KILLED_IN_CONVERSION = r"""
import os, shutil, signal, sys
from pathlib import Path
from mathsolve.models import cache as models
from mathsolve.models.hub import SOURCE_MARKER
from mathsolve.models import pull as pulling
src, mdir = Path(sys.argv[1]), Path(sys.argv[2])
def fake(repo, revision, dest, offline, **_):
    dest.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        shutil.copy2(f, dest / f.name)
    return dest, "0123456789abcdef0123456789abcdef01234567"
pulling._download = fake
def progress(msg):
    if msg.startswith("write: ") and msg not in ("write: 0%", "write: 100%"):
        print("partial files:", [p.name for p in mdir.glob(".*partial-*")], flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
pulling.pull("tiny/qwen3", "q8_0", progress=progress)
print("finished without being killed", flush=True)
"""


def test_pull_killed_during_conversion_leaves_nothing_finished(home, hub_calls, tiny_ckpt):
    mdir = home / "models" / NAME
    env = {**os.environ, "MATHSOLVE_HOME": str(home)}
    child = subprocess.run([sys.executable, "-c", _KILLED_IN_CONVERSION, str(tiny_ckpt), str(mdir)],
                           env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == -9, child.stdout + child.stderr
    assert "partial files: ['..partial-q8_0-" in child.stdout, child.stdout
    assert not (mdir / "q8_0.manifest.json").exists() and not (mdir / "q8_0.gguf").exists()
    with pytest.raises(models.ModelNotCached):
        models.resolve(REPO_ID, "q8_0")

    got = pulling.pull(REPO_ID, "q8_0")
    assert models.resolve(REPO_ID, "q8_0", verify=True).path == got.path
    assert list(mdir.glob(".*partial-*")) == []


_HOLD_LOCK = r"""
import sys, time
from pathlib import Path
from mathsolve.models import cache as models
from mathsolve.models.hub import SOURCE_MARKER
from mathsolve.models import pull as pulling
with models._model_lock(Path(sys.argv[1]), "tiny--qwen3", "test"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_second_concurrent_pull_fails_clearly_with_the_holder_pid(home, hub_calls, monkeypatch):
    monkeypatch.setattr(models, "LOCK_WAIT_S", 0.3)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(home)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(PullError, match=f"another mathsolve pull of tiny/qwen3 is running "
                                            f"\\(pid {holder.pid}\\)"):
            pulling.pull(REPO_ID, "q8_0")
        assert hub_calls == [] and not (home / "models" / NAME / "q8_0.gguf").exists()
    finally:
        holder.kill()
        holder.wait()
    pulling.pull(REPO_ID, "q8_0")  # the lock dies with its holder
    assert len(hub_calls) == 1


# --- list / remove ------------------------------------------------------------------------

def test_list_models_reports_name_repo_quant_size_path_revision(cached):
    _settled(cached)  # the copy's new stat is recorded by its first load
    [entry] = models.list_models()
    assert (entry.name, entry.repo, entry.quant, entry.revision, entry.status) == (
        NAME, REPO_ID, "q8_0", SHA, "ok")
    assert entry.size == entry.path.stat().st_size > 0


def test_remove_one_quant_then_all(cached, home):
    (home / "downloads" / NAME).mkdir(parents=True)
    removed = models.remove(REPO_ID, "q8_0")
    assert sorted(p.name for p in removed) == ["q8_0.gguf", "q8_0.manifest.json"]
    assert models.list_models() == []
    removed = models.remove(NAME, None)
    assert set(removed) == {cached, home / "downloads" / NAME} and not cached.exists()


@pytest.mark.parametrize("spec", ["nothing", "x/y", ".."], ids=["name", "repo", "dotdot"])
def test_remove_unknown_model_lists_what_is_cached(cached, spec):
    with pytest.raises(ModelError, match="cached: tiny--qwen3"):
        models.remove(spec, None)
    assert cached.exists()


def test_cache_root_follows_mathsolve_home(home):
    assert models.cache_root() == home



# --- the real huggingface-hub download against a local Hub ---------------------------------

class _LocalHub(LocalServer):
    """Serves a checkpoint folder with the Hub's HTTP API (model info, tree, resolve), so the
    real snapshot_download runs unchanged; `stall` = (file, bytes): send that many bytes of
    the file, then hang, like a connection dying under a killed pull."""

    def __init__(self, src: Path, repo: str, stall: tuple[str, int] | None = None):
        import http.server
        import threading
        from urllib.parse import unquote, urlparse

        files = {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()}
        self.log: list[tuple[str, str, str | None]] = []
        log, release = self.log, threading.Event()
        self._release = release

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code: int, body: bytes, headers: dict) -> None:
                self.send_response(code)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()

            def _route(self):
                path = unquote(urlparse(self.path).path)
                log.append((self.command, path, self.headers.get("Range")))
                api, resolve = f"/api/models/{repo}", f"/{repo}/resolve/{SHA}/"
                if path in (api, f"{api}/revision/main") or path.startswith(f"{api}/tree/"):
                    listing = [{"type": "file", "path": n, "rfilename": n, "size": len(b),
                                "oid": hashlib.sha1(b).hexdigest()} for n, b in files.items()]
                    obj = listing if "/tree/" in path else {"id": repo, "sha": SHA, "siblings": listing}
                    body = json.dumps(obj).encode()
                    self._send(200, body, {"Content-Type": "application/json"})
                    self.wfile.write(body)
                elif path.startswith(resolve) and path[len(resolve):] in files:
                    name = path[len(resolve):]
                    data = files[name]
                    self._send(200, data, {"ETag": f'"{hashlib.sha1(data).hexdigest()}"',
                                           "X-Repo-Commit": SHA, "Accept-Ranges": "bytes"})
                    if self.command == "GET":
                        if stall and stall[0] == name:
                            self.wfile.write(data[: stall[1]])
                            self.wfile.flush()
                            release.wait(60)
                            return
                        self.wfile.write(data)
                else:
                    self._send(404, b"", {"X-Error-Code": "EntryNotFound"})

            do_GET = do_HEAD = _route

        super().__init__(Handler)

    def close(self) -> None:
        self._release.set()
        super().close()


_PULL_CHILD = (
    "import huggingface_hub.constants as c; c.DOWNLOAD_CHUNK_SIZE = 8192\n"  # small writes
    "import sys; from mathsolve.models import pull as pulling\n"
    "print(pulling.pull('tiny/qwen3', 'q8_0', keep_source=sys.argv[1] == 'keep').path)\n"
)


@pytest.fixture(scope="module")
def sharded_ckpt(tmp_path_factory) -> Path:
    from tinymodels import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("sharded") / "ckpt", shards=2)


def test_pull_killed_during_download_keeps_finished_files_and_completes(home, sharded_ckpt):
    """Real huggingface-hub code path end to end (local Hub over HTTP): a pull killed while a
    shard streams keeps the finished files; the next pull fetches only the rest and finishes."""
    first, second = sorted(p.name for p in sharded_ckpt.glob("*.safetensors"))
    dest = home / "downloads" / NAME
    hub = _LocalHub(sharded_ckpt, REPO_ID, stall=(second, 50_000))
    env = {**os.environ, "MATHSOLVE_HOME": str(home), "HF_ENDPOINT": hub.url,
           "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1", "HF_HUB_DISABLE_XET": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    child = subprocess.Popen([sys.executable, "-c", _PULL_CHILD, "drop"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            (dest / first).exists() and any(p.stat().st_size for p in dest.rglob("*.incomplete"))
        ):
            assert child.poll() is None, child.communicate()
            time.sleep(0.05)
        child.kill()
        child.wait()
    finally:
        hub.close()
    assert (dest / first).stat().st_size == (sharded_ckpt / first).stat().st_size
    assert not (dest / second).exists() and not (home / "models" / NAME / "q8_0.gguf").exists()

    hub = _LocalHub(sharded_ckpt, REPO_ID)
    env["HF_ENDPOINT"] = hub.url
    try:
        done = subprocess.run([sys.executable, "-c", _PULL_CHILD, "keep"], env=env, capture_output=True,
                              text=True, timeout=120)
    finally:
        hub.close()
    assert done.returncode == 0, done.stderr[-2000:]
    fetched = [p for method, p, _ in hub.log if method == "GET" and "/resolve/" in p]
    assert any(p.endswith(second) for p in fetched) and not any(p.endswith(first) for p in fetched)
    assert models.resolve(REPO_ID, "q8_0", verify=True).manifest["revision"] == SHA
    assert (dest / second).exists() and list(dest.rglob("*.incomplete")) == [], "orphan removed"
