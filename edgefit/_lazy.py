"""The one lazy import helper (#15 "layers without cycles").

edgefit imports its own modules at the top of each file, so a reader sees every dependency where
Python shows it. Some of what those modules need is heavy — torch, onnx, onnxruntime, numba,
pydantic, optuna, ray — and ``import edgefit`` (or ``edgefit.report``, ``edgefit.passes``, the
CLI's ``--help``) must not pay for it. Those imports go through :func:`lazy_import`, also at the
top of the file::

    from typing import TYPE_CHECKING

    from edgefit._lazy import lazy_import

    if TYPE_CHECKING:  # the real modules, for type checkers and IDEs
        import onnx
        import torch
    else:
        onnx, torch = lazy_import("onnx", "torch")

The names are module proxies: the real import happens the first time an attribute is read
(``torch.nn``, ``onnx.load``), and every attribute read afterwards is forwarded to the module in
``sys.modules``, so a test that patches an attribute of the real module is seen through the proxy.
A missing optional dependency raises its ``ImportError`` at that first use, exactly where a
function-level import used to raise it.

A submodule that its package does not import by itself is named whole:
``lazy_import("onnxruntime.quantization")``.

A module that is already in ``sys.modules`` when the importing module loads is bound as itself
(no proxy, no forwarding cost). So a test that swaps a fake into ``sys.modules`` (a fake
``tensorrt``) must do it before the edgefit module under test is first imported, or patch the
edgefit module's attribute instead.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

# Names that tools probe on any object to ask what it is (inspect.unwrap, doctest's finder,
# signature lookups), which no module defines: answered without importing, so walking a module's
# globals does not import (or fail to import) every heavy library it names.
_PROBES = frozenset({"__wrapped__", "__signature__", "__func__", "__self__", "__objclass__"})


class LazyModule(ModuleType):
    """A stand-in for the module named ``__name__``, imported on first attribute access."""

    def _load(self) -> ModuleType:
        name = object.__getattribute__(self, "__name__")
        module = sys.modules.get(name)
        return module if module is not None else importlib.import_module(name)

    def __getattr__(self, attr: str) -> Any:  # only called for names the proxy itself lacks
        if attr in _PROBES:
            raise AttributeError(attr)
        return getattr(self._load(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._load(), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self._load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._load())

    def __repr__(self) -> str:
        name = object.__getattribute__(self, "__name__")
        loaded = "loaded" if name in sys.modules else "not loaded yet"
        return f"<lazy module {name!r} ({loaded})>"


def lazy_import(*names: str) -> Any:
    """A proxy per module name, imported on first attribute access; one name → one proxy, several
    names → a tuple in the same order. A module that is already imported is returned as itself."""
    modules = [sys.modules.get(name) or LazyModule(name) for name in names]
    return modules[0] if len(modules) == 1 else tuple(modules)


def is_loaded(name: str) -> bool:
    """Whether the module ``name`` has really been imported (not just proxied)."""
    return name in sys.modules
