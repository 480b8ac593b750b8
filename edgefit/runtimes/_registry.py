"""The runtime registry: name → backend class, imported only when asked for (a plain factory)."""

from __future__ import annotations

import fnmatch
import importlib
from dataclasses import dataclass
from typing import Any

from edgefit.errors import EdgefitError
from edgefit.runtimes._base import Availability, Runtime

# name → "module:Class". Backend modules import their heavy library (onnxruntime, tensorrt …)
# inside methods, so even loading the class stays cheap; `import edgefit.runtimes` loads none of
# them.
_BACKENDS: dict[str, str | type[Runtime]] = {
    "onnxruntime": "edgefit.runtimes._onnxruntime:OnnxRuntime",
    "tensorrt": "edgefit.runtimes._tensorrt:TensorRT",
    "litert": "edgefit.runtimes._litert:LiteRT",
    "coreml": "edgefit.runtimes._coreml:CoreML",
    "vela": "edgefit.runtimes._vela:Vela",
    "torch": "edgefit.runtimes._torch:TorchRuntime",
}


@dataclass(frozen=True)
class RuntimeInfo:
    """One registry entry as ``list_runtimes`` reports it."""

    name: str
    description: str
    availability: Availability

    def to_dict(self) -> dict:
        a = self.availability
        return {
            "name": self.name,
            "description": self.description,
            "available": a.ok,
            "reason": a.reason,
            "version": a.version,
        }


def register_runtime(name: str, target: str | type[Runtime]) -> None:
    """Register a backend by ``"module:Class"`` (imported lazily) or by class. A new name only.

    >>> register_runtime("onnxruntime", "x:Y")
    Traceback (most recent call last):
    ...
    ValueError: runtime 'onnxruntime' is already registered
    """
    if name in _BACKENDS:
        raise ValueError(f"runtime '{name}' is already registered")
    _BACKENDS[name] = target


def runtime_names() -> list[str]:
    return sorted(_BACKENDS)


def load_runtime_class(target: str | type[Runtime]) -> type[Runtime]:
    """``"module:Class"`` → the class (imported now); a class passes through."""
    if isinstance(target, type):
        return target
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def get_runtime(name: str | Runtime) -> Runtime:
    """The backend registered as ``name`` (an instance passes through).

    >>> get_runtime("onnxruntime").name
    'onnxruntime'
    """
    if isinstance(name, Runtime):
        return name
    if name not in _BACKENDS:
        raise EdgefitError(
            f"unknown runtime '{name}'",
            where="--runtime",
            fix=f"use one of {', '.join(runtime_names())} (edgefit runtimes list)",
        )
    return load_runtime_class(_BACKENDS[name])()


def list_runtimes(pattern: str = "*") -> list[RuntimeInfo]:
    """Every registered runtime matching ``pattern``, with whether it can run here and why
    (not)."""
    infos = []
    for name in runtime_names():
        if fnmatch.fnmatch(name, pattern):
            runtime = get_runtime(name)
            infos.append(RuntimeInfo(name, runtime.description, runtime.available()))
    return infos


def measuring_runtime(target: Any) -> str | None:
    """The runtime that times candidates for ``target`` on this machine, or None when the target
    is estimated only.

    A target is measured here when it *is* this machine (``kind: host_cpu``); its runtime is the
    first one its YAML lists (``runtimes:``) that is installed here and times models rather than
    estimating them (a compiler such as Vela reports an estimate, ``timing_kind``). Every caller
    that decides "measure or estimate" (optimize, check, calibrate) asks this one function.

    >>> from edgefit.targets import load_target
    >>> measuring_runtime(load_target("orin")) is None  # a device, not this machine
    True
    """
    if getattr(target, "kind", None) != "host_cpu":
        return None
    for name in target.runtimes:
        if name not in _BACKENDS:
            continue
        backend = get_runtime(name)
        if backend.timing_kind == "measured" and backend.available().ok:
            return name
    return None
