"""The README's Python snippets run as written (#15: documentation that cannot drift from the code).

Each ```python block is executed in a fresh namespace, in an empty working folder, in the order the
README gives them; a block that raises fails the test with the block's first line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_has_python_snippets():
    assert len(BLOCKS) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("code", BLOCKS, ids=[b.splitlines()[0][:60] for b in BLOCKS])
def test_readme_snippet_runs(code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md snippet ({code.splitlines()[0][:40]})", "exec"), {"__name__": "readme"})
