"""`mathsolve` with no problem on a terminal: a read-solve loop on one loaded model."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable


def read_pty(fd: int, done: Callable[[bytes], bool], timeout: float) -> bytes:
    """Read the pty until done(everything read so far) or the timeout (or the pty closes)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while not done(seen) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


def read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    return read_pty(fd, lambda seen: marker in seen, timeout)


ESCAPE = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")  # CSI and two-byte escapes


def read_until_text_after(fd: int, marker: bytes, timeout: float) -> bytes:
    """Read until `marker` and then visible text after it (not only escapes, CR, LF or spaces
    that readline writes when a line is entered): the first streamed piece of an answer."""
    def done(seen: bytes) -> bool:
        at = seen.find(marker)
        return at >= 0 and bool(ESCAPE.sub(b"", seen[at + len(marker):]).strip())

    return read_pty(fd, done, timeout)


def test_interactive_loop_solves_lines_cancels_with_ctrl_c_and_quits_on_ctrl_d(
        smollm2_gguf, tmp_path, sigint_default):
    leader, follower = pty.openpty()
    env = {**os.environ, "MATHSOLVE_HOME": str(tmp_path), "NO_COLOR": "1", "COLUMNS": "100"}
    proc = subprocess.Popen([sys.executable, "-m", "mathsolve", "--model", str(smollm2_gguf),
                             "--max-tokens", "300", "--seed", "1", "--threads", "2"],
                            stdin=follower, stdout=follower, stderr=follower, env=env,
                            preexec_fn=sigint_default)
    os.close(follower)
    try:
        assert b"math> " in read_until(leader, b"math> ", 120)
        os.write(leader, b"What is 2+3?\n")
        first = read_until(leader, b"math> ", 120)
        assert b"Answer" in first and b"finish:" in first  # one answer panel, then the prompt again
        os.write(leader, b"Write a very long story about the number seven.\n")
        # The event to wait for: the answer is streaming (text after the echoed line).
        streaming = read_until_text_after(leader, b"number seven.", 120)
        after = ESCAPE.sub(b"", streaming[streaming.find(b"number seven.") + 13:])
        assert b"number seven." in streaming and after.strip(), streaming[-2000:]
        assert b"math> " not in after  # not finished yet: Ctrl-C lands inside the answer
        proc.send_signal(signal.SIGINT)  # Ctrl-C (what the terminal sends) cancels this answer
        cancelled = read_until(leader, b"math> ", 60)
        assert b"interrupted" in cancelled and b"math> " in cancelled
        assert proc.poll() is None  # still running
        os.write(leader, b"\x04")  # Ctrl-D quits
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert (tmp_path / "history").exists()  # readline history kept for the next session
