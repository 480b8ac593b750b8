"""Every ``>>>`` example in the library's docstrings is at least valid Python (#15: documentation
that cannot drift). Running them all needs torch, onnxruntime and trained models, so the modules
whose examples are cheap run under doctest elsewhere (tests/serve/test_doctests.py); here each
example is parsed and compiled, which catches an example broken by an edit or a line wrap."""

from __future__ import annotations

import ast
import doctest
from pathlib import Path

import pytest

LIBRARY = Path(__file__).parents[2] / "edgefit"


def _examples() -> list[tuple[str, str]]:
    parser, out = doctest.DocTestParser(), []
    for path in sorted(LIBRARY.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(
                node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
            ):
                continue
            doc = ast.get_docstring(node, clean=True)
            if doc and ">>>" in doc:
                where = f"{path.relative_to(LIBRARY.parent)}:{getattr(node, 'lineno', 1)}"
                out += [(where, ex.source) for ex in parser.get_examples(doc, where)]
    return out


EXAMPLES = _examples()


def test_the_library_has_docstring_examples():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("where, source", EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_docstring_example_compiles(where, source):
    compile(source, where, "single")
