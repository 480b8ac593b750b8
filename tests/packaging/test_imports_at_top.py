"""#15 item 4: edgefit's imports are at module level, where Python shows a module's dependencies.

A heavy library (torch, onnx, pydantic, …), or a module that would close a cycle, is imported at the
top through :func:`edgefit._lazy.lazy_import`, which defers the load to first use. The one import
left inside functions is the optional-dependency probe: an import in a ``try`` that catches
``ImportError``, which is how a function asks whether an extra is installed.

``python tests/packaging/test_imports_at_top.py [edgefit/folder]`` lists what is left.
"""

from __future__ import annotations

import ast
from pathlib import Path

EDGEFIT = Path(__file__).resolve().parents[2] / "edgefit"


def _catches_import_error(node: ast.Try) -> bool:
    names = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
    return bool({"ImportError", "ModuleNotFoundError"} & {n.strip("()") for n in names}
                or any("ImportError" in n for n in names))


def function_level_imports(root: Path = EDGEFIT) -> list[str]:
    """Every ``import`` written inside a function body, as ``file:line statement`` — except the
    optional-dependency probe (an import inside a ``try`` that catches ``ImportError``), which is
    how a function asks whether an extra is installed."""
    found: list[str] = []

    def visit(node: ast.AST, path: Path, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Try) and _catches_import_error(child):
                for part in child.handlers + child.orelse + child.finalbody:
                    visit(part, path, in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function:
                found.append(f"{path.relative_to(root.parent)}:{child.lineno} {ast.unparse(child)}")
            visit(child, path, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    for path in sorted(root.rglob("*.py")):
        visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), path, False)
    return found


def test_imports_are_at_module_level():
    inside = function_level_imports()
    assert not inside, f"{len(inside)} imports inside functions:\n" + "\n".join(inside)


if __name__ == "__main__":  
    import sys

    prefix = sys.argv[1] if len(sys.argv) > 1 else "edgefit"
    left = [line for line in function_level_imports() if line.startswith(prefix)]
    print("\n".join(left) + f"\n{len(left)} imports inside functions under {prefix}")
