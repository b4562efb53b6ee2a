"""The type checker and the linter, run as tests so that CI (which runs only pytest) fails
on a type error or a lint error. Both read their settings from pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_mypy_finds_no_type_error_in_the_package():
    result = _run("mypy")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_ruff_finds_no_lint_error():
    result = _run("ruff", "check", "genesis", "tests", "bench", "scripts")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
