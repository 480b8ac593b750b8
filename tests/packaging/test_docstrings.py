"""Every ``>>>`` example in the library's docstrings is valid Python and runs (#15: documentation
that cannot drift). Each example is parsed and compiled, which names the exact line an edit or a
line wrap broke; then every module's examples run under doctest, so an output that no longer
matches fails too. Examples that need a trained model, a device or an output folder are marked
``# doctest: +SKIP`` and are only compiled."""

from __future__ import annotations

import ast
import doctest
import importlib
import io
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


def _module(path: Path) -> str:
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted({_module(LIBRARY.parent / where.split(":")[0]) for where, _ in EXAMPLES})


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=out.write)
    assert runner.failures == 0, out.getvalue()[-3000:]
