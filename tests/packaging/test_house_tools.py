"""House tools (#15): the library is `ruff format`-ed, `ruff check`-clean and passes mypy.

The configuration lives in pyproject.toml ([tool.ruff], [tool.mypy]); these tests only run the
tools the dev extra installs, from the same environment as the tests, and show their findings on
failure. mypy keeps its incremental cache in .mypy_cache (shared with a developer's own runs): a
cold run takes about 20 s of one core, a warm one a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = BIN / tool
    if not exe.exists():
        pytest.fail(f"{tool} is not installed next to {sys.executable}: install the dev extra "
                    f'(pip install -e ".[dev]" -c constraints.txt)')
    return subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def _assert_clean(result: subprocess.CompletedProcess[str], fix: str) -> None:
    if result.returncode != 0:
        command = " ".join([Path(result.args[0]).name, *result.args[1:]])
        pytest.fail(f"`{command}` exited {result.returncode} ({fix}):\n"
                    f"{result.stdout}{result.stderr}", pytrace=False)


def test_library_is_ruff_formatted():
    _assert_clean(_run("ruff", "format", "--check", "edgefit"),
                  "run `ruff format` on the files it names")


def test_library_passes_ruff_check():
    _assert_clean(_run("ruff", "check", "--no-fix", "edgefit"),
                  "fix the findings; `ruff check --fix` does the mechanical ones")


@pytest.mark.slow
def test_library_type_checks():
    # no arguments: the files and options come from [tool.mypy] in pyproject.toml
    result = _run("mypy")
    _assert_clean(result, "fix the types, or `# type: ignore[code]` with a reason beside it")
    assert "Success: no issues found" in result.stdout
