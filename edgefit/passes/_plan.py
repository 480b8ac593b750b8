"""A candidate's recipe: which passes, with which configs, in the fixed order swap → prune →
recover → (export) → quantize, or swap → prune → recover → torchao for a torch model; and its
content hash, the key a search caches materialized candidates under.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from edgefit.errors import EdgefitError
from edgefit.passes._base import PassConfig, config_from_dict, get_pass
from edgefit.passes._context import module_fingerprint

# Importing a pass registers it, and registration order is run order (list_passes): the first
# import of the pass modules happens here, so they stay in run order, not sorted.
# isort: off
from edgefit.passes._swap import SwapConfig, build_base
from edgefit.passes._prune import PruneConfig
from edgefit.passes._recover import RecoverConfig
from edgefit.passes._quantize import QuantizeConfig  # noqa: F401 (registers, in run order)
from edgefit.passes._torchao import TorchaoConfig  # noqa: F401 (registers, in run order)

# isort: on

PLAN_VERSION = 1
FIXED_SLOTS: dict[str, type[PassConfig]] = {
    "swap": SwapConfig,
    "prune": PruneConfig,
    "recover": RecoverConfig,
}
# A quantizing slot takes any registered pass that quantizes what the slot holds at that point:
# the exported ONNX file ("quantize") or the recovered torch module ("torchao"). A new
# quantization pass fills one of them without a change here.
QUANTIZE_SLOTS: dict[str, str] = {"quantize": "onnx", "torchao": "torch"}
SLOTS = (*FIXED_SLOTS, *QUANTIZE_SLOTS)
OPTIONAL_SLOTS = (
    "torchao",
)  # added within version 1: left out of to_dict when None, so older hashes stay


def _slot_error(slot: str, value: object, wanted: str) -> EdgefitError:
    return EdgefitError(
        f"{slot}={type(value).__name__} is not allowed",
        where=f"PassPlan.{slot}",
        fix=f"give {wanted} or None",
    )


@dataclass(frozen=True)
class PassPlan:
    """The passes of one candidate; ``None`` skips a pass. ``quantize`` (a pass on the ONNX file,
    e.g. :class:`QuantizeConfig`) and ``torchao`` (a pass on the torch module after recover, e.g.
    :class:`TorchaoConfig`) are two ways to quantize: a plan holds at most one.

    >>> plan = PassPlan(swap=SwapConfig(width=0.5), recover=RecoverConfig(epochs=1),
    ...                 quantize=QuantizeConfig())
    >>> PassPlan.from_dict(plan.to_dict()) == plan
    True
    >>> plan.content_hash(b"base model bytes") == plan.content_hash(b"base model bytes")
    True
    """

    swap: SwapConfig | None = None
    prune: PruneConfig | None = None
    recover: RecoverConfig | None = None
    quantize: PassConfig | None = None
    version: int = PLAN_VERSION
    torchao: PassConfig | None = None

    def __post_init__(self) -> None:
        if self.version != PLAN_VERSION:
            raise EdgefitError(
                f"plan version {self.version} is not supported",
                where="PassPlan.version",
                fix=f"use {PLAN_VERSION}",
            )
        for slot, kind in FIXED_SLOTS.items():
            value = getattr(self, slot)
            if value is not None and not isinstance(value, kind):
                raise _slot_error(slot, value, f"a {kind.__name__}")
        for slot, consumes in QUANTIZE_SLOTS.items():
            value = getattr(self, slot)
            if value is None:
                continue
            wanted = f"the config of a quantization pass on a {consumes} model"
            if not isinstance(value, PassConfig):
                raise _slot_error(slot, value, wanted)
            spec = get_pass(value)
            if spec.consumes != consumes or spec.change_kind != "quantization":
                raise _slot_error(slot, value, wanted)
        if self.quantize is not None and self.torchao is not None:
            raise EdgefitError(
                "a plan quantizes once: quantize (ONNX) and torchao (torch) are both set",
                where="PassPlan",
                fix="keep one of quantize and torchao",
            )

    def configs(self) -> list[PassConfig]:
        """The configs that run, in order."""
        return [
            c
            for c in (self.swap, self.prune, self.recover, self.quantize, self.torchao)
            if c is not None
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            **{
                slot: None if getattr(self, slot) is None else getattr(self, slot).to_dict()
                for slot in SLOTS
                if slot not in OPTIONAL_SLOTS or getattr(self, slot) is not None
            },
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PassPlan:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise EdgefitError(
                f"unknown plan key(s) {unknown}", where="PassPlan", fix=f"use {', '.join(SLOTS)}"
            )
        kwargs: dict[str, Any] = {
            k: config_from_dict(v) if k in SLOTS and v is not None else v for k, v in data.items()
        }
        return cls(**kwargs)

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    def content_hash(self, base: Any) -> str:
        """sha256 of the plan's canonical JSON and of the base model (bytes, a path, an ONNX proto,
        a torch module, an example name or a factory string; see :func:`model_fingerprint`)."""
        h = hashlib.sha256(self.canonical_json().encode())
        h.update(b"\0" + model_fingerprint(base).encode())
        return h.hexdigest()


def model_fingerprint(base: Any) -> str:
    """sha256 identifying a base model: file bytes, serialized proto, module tensors, or the name
    of an example / factory (with the example's pretrained weights, which the name alone does not
    pin)."""
    if isinstance(base, bytes):
        return hashlib.sha256(base).hexdigest()
    if isinstance(base, Path) or (isinstance(base, str) and base.endswith(".onnx")):
        return hashlib.sha256(Path(base).read_bytes()).hexdigest()
    if isinstance(base, str):
        return hashlib.sha256(
            f"factory:{base}\0{module_fingerprint(build_base(base))}".encode()
        ).hexdigest()
    if hasattr(base, "SerializeToString"):
        return hashlib.sha256(base.SerializeToString(deterministic=True)).hexdigest()
    if hasattr(base, "state_dict"):
        return module_fingerprint(base)
    raise EdgefitError(
        f"cannot fingerprint a base model of type {type(base).__name__}",
        where="base",
        fix="give a path, an ONNX proto, a torch module, or an example/factory name",
    )
