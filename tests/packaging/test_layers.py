"""The package dependency graph (#15 "layers without cycles").

Every import of edgefit's own modules is read with ``ast`` — at module level, inside functions and
under ``TYPE_CHECKING`` alike, since a function-level import is still a dependency (it only hides
it from the top of the file). Each module is placed in a package, and the packages in the layers of
:data:`LAYERS`. The test asserts that no import reaches *up* a layer and that the packages form no
cycle, and on failure it names every offending import by file and line.

Adding a package means placing it in :data:`LAYERS` with the reason; a new import that goes up is
fixed by moving the shared thing down a layer (or, for an extension, by looking the implementation
up by name, as runtimes and executors are), never by adding an exception here.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

EDGEFIT = Path(__file__).resolve().parents[2] / "edgefit"

# Lowest first. A package may import its own layer and the layers below it. "helpers" are the
# root modules (edgefit._io, edgefit.errors, …); "edgefit" is the package's front door
# (edgefit/__init__.py and its lazy exports); "main" is edgefit/__main__.py.
LAYERS: list[tuple[tuple[str, ...], str]] = [
    (("helpers",), "files, YAML, units, errors, formatting: the standard library's level"),
    (("targets", "evaluate", "examples"), "data: what the hardware is, metrics, example models"),
    (("records",), "results.json as typed records: what the search writes and the reports read"),
    (("graph",), "ONNX intake: load, validate, per-layer facts (may build a registered example)"),
    (("estimate", "iteration"), "predictions from a graph and a target; the iteration-tax model"),
    (("runtimes",), "backends that convert an artifact and time it; no knowledge of passes"),
    (("calibrate",), "fits the estimator's profiles by timing kernels on a runtime"),
    (("passes",), "model transforms, built on the runtimes' converters and calibrate's timer"),
    (("report", "serve"), "results rendered and checked; LLM serving planned from estimates"),
    (("search",), "screen, materialize, measure, select; runs jobs through a named Executor"),
    (("distributed",), "the Ray Executor and remote calibration: implementations search looks up"),
    (("cascade",), "tiers built from optimized models, calibrated and reported"),
    (("edgefit",), "the front door: one lazily exported function per command"),
    (("cli",), "parses options, calls one library function, prints"),
    (("main",), "`python -m edgefit`"),
]
LAYER = {pkg: i for i, (pkgs, _) in enumerate(LAYERS) for pkg in pkgs}


def _module_name(path: Path) -> str:
    parts = path.relative_to(EDGEFIT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(module: str) -> bool:
    path = EDGEFIT.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def package_of(module: str) -> str:
    """``edgefit.search._engine`` → ``search``; root modules → ``helpers``, ``edgefit`` (the
    package itself) or ``main``."""
    parts = module.split(".")
    if len(parts) > 1 and (EDGEFIT / parts[1]).is_dir():
        return parts[1]
    return {"edgefit": "edgefit", "edgefit.__main__": "main"}.get(module, "helpers")


def imports(path: Path) -> list[tuple[str, int]]:
    """Every edgefit module ``path`` imports, with the line: ``from edgefit import _io`` counts
    as ``edgefit._io``; a relative import is resolved; ``lazy_import("edgefit.records")`` (the
    lazy helper, :mod:`edgefit._lazy`) counts like the import it defers."""
    module, found = _module_name(path), []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            subs = [f"{base}.{a.name}" for a in node.names if _exists(f"{base}.{a.name}")]
            found += [(name, node.lineno) for name in subs or [base]]
        elif _is_lazy_import(node):
            found += [(arg.value, node.lineno) for arg in node.args if isinstance(arg, ast.Constant)]
    return [(name, line) for name, line in found if name.split(".")[0] == "edgefit"]


def _is_lazy_import(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "lazy_import")


def package_edges() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) package → every import that makes the edge, as ``file:line module``."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(EDGEFIT.rglob("*.py")):
        src = package_of(_module_name(path))
        for name, line in imports(path):
            dst = package_of(name)
            if dst != src:
                edges[(src, dst)].append(f"{path.relative_to(EDGEFIT.parent)}:{line} {name}")
    return edges


def cycles(edges) -> list[list[str]]:
    """The strongly connected components of more than one package (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst in edges:
        graph[src].add(dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_package_has_a_layer():
    packages = {p.name for p in EDGEFIT.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(LAYER), f"place {sorted(packages - set(LAYER))} in LAYERS"
    assert set(LAYER) - {"helpers", "edgefit", "main"} <= packages, "LAYERS names a package that is gone"


def test_no_import_goes_up_a_layer():
    upward = {
        (src, dst): where
        for (src, dst), where in package_edges().items()
        if LAYER[dst] > LAYER[src]
    }
    report = [
        f"{src} (layer {LAYER[src]}) imports {dst} (layer {LAYER[dst]}):\n    " + "\n    ".join(w)
        for (src, dst), w in sorted(upward.items())
    ]
    assert not upward, "imports against the layer order:\n" + "\n".join(report)


def test_packages_form_no_cycle():
    edges = package_edges()
    found = cycles(edges)
    report = []
    for c in found:  # name the imports that go up: removing them breaks the cycle
        inside = {(s, d): w for (s, d), w in sorted(edges.items()) if s in c and d in c}
        up = {e: w for e, w in inside.items() if LAYER[e[1]] > LAYER[e[0]]} or inside
        lines = [f"{s} -> {d}: {', '.join(w)}" for (s, d), w in up.items()]
        report.append(f"{' <-> '.join(c)}, through\n    " + "\n    ".join(lines))
    assert not found, "package cycles:\n" + "\n".join(report)


def test_the_reader_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    """The checks above are only as good as the import reader: it must see an import hidden in a
    function and resolve ``from edgefit import _io`` to the helper module."""
    pkg = tmp_path / "edgefit" / "search"
    pkg.mkdir(parents=True)
    (tmp_path / "edgefit" / "__init__.py").write_text("")
    (tmp_path / "edgefit" / "_io.py").write_text("")
    (pkg / "__init__.py").write_text("from ._engine import run\n")
    (pkg / "_engine.py").write_text(
        "from edgefit import _io\n\ndef run():\n    from edgefit.distributed import x\n"
        "records = lazy_import('edgefit.records')\n"
    )
    (tmp_path / "edgefit" / "distributed").mkdir()
    (tmp_path / "edgefit" / "distributed" / "__init__.py").write_text("")
    (tmp_path / "edgefit" / "records").mkdir()
    (tmp_path / "edgefit" / "records" / "__init__.py").write_text("")
    monkeypatch.setitem(globals(), "EDGEFIT", tmp_path / "edgefit")
    assert imports(pkg / "_engine.py") == [
        ("edgefit._io", 1), ("edgefit.distributed", 4), ("edgefit.records", 5)
    ]
    assert imports(pkg / "__init__.py") == [("edgefit.search._engine", 1)]
    edges = package_edges()
    assert set(edges) == {("search", "helpers"), ("search", "distributed"), ("search", "records")}
    assert cycles({("a", "b"): [], ("b", "c"): [], ("c", "a"): [], ("c", "d"): []}) == [
        ["a", "b", "c"]
    ]

