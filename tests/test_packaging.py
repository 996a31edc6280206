"""The wheel claims no generic top-level name, and the tests exercise the installed package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_wheel_top_level_names_are_namespaced(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q",
                           "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(tmp_path.glob("mathsolve-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"mathsolve", "mathsolve_convert"}
    assert "mathsolve_convert/__main__.py" in names and "mathsolve/cli/__init__.py" in names
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "mathsolve").rglob("*.py")}
    assert sources - set(names) == set()  # every stage package is in the wheel


@pytest.mark.skipif(os.environ.get("CI", "").lower() not in ("1", "true", "yes"),
                    reason="a developer may run the tests on an editable install")
def test_ci_tests_the_installed_package_not_the_source_tree():
    import mathsolve
    import mathsolve_convert

    for module in (mathsolve, mathsolve_convert):
        assert "site-packages" in module.__file__, module.__file__


def test_installed_converter_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "mathsolve_convert", "--help"],
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert proc.returncode == 0 and "--outtype" in proc.stdout
