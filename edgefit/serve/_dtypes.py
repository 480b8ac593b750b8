"""Storage of weights and KV cache per dtype: bytes per element, scales included, and the compute
dtype.

Stated assumptions (they decide what fits):

* **Weights**: the block matrices, the LM head and the token embedding are stored in the weight
  dtype (as ``shared/research/hardware-numbers.md`` §6 counts them); norm weights and biases stay
  at 16 bits. A runtime that keeps the embedding and LM head at 16 bits (ModelOpt's default for the
  LM head) needs ``2 × vocab × hidden`` bytes more — about 1–2 GB for a 70B model.
* **int4** is weight-only with one fp16 scale per group of 128 weights (AWQ/GPTQ group size 128):
  0.5 + 2/128 = 0.515625 B per weight. **int8** has one fp16 scale per output channel (≈ 2 B per
  ``hidden`` weights); **fp8** has per-tensor scales (0 B per weight).
* **KV cache**: fp8 and int8 are 1 byte per element with per-tensor scales.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgefit.errors import EdgefitError

INT4_GROUP = 128


@dataclass(frozen=True)
class Storage:
    """How one dtype stores weights: bytes per element, fp16 scale bytes per weight, compute
    dtypes."""

    name: str
    bytes: float
    group: (
        int | None
    )  # weights per fp16 scale; None: no per-group scale; 0: one per output channel
    compute: tuple[str, ...]  # dtypes the matrices multiply in, first the target supports wins
    weight_only: bool = (
        False  # dequantized to 16 bits in the kernel, so the target needs a 16-bit unit
    )

    def bytes_per_weight(self, hidden_size: int) -> float:
        """Bytes per stored weight, scales included.

        >>> WEIGHT_DTYPES["int4"].bytes_per_weight(8192)
        0.515625
        """
        if self.group is None:
            return self.bytes
        return self.bytes + 2.0 / (self.group or hidden_size)


WEIGHT_DTYPES: dict[str, Storage] = {
    "fp32": Storage("fp32", 4.0, None, ("fp32",)),
    "fp16": Storage("fp16", 2.0, None, ("fp16", "bf16", "fp32")),
    "bf16": Storage("bf16", 2.0, None, ("bf16", "fp16", "fp32")),
    "fp8": Storage("fp8", 1.0, None, ("fp8",)),
    "int8": Storage("int8", 1.0, 0, ("int8",)),
    "int4": Storage("int4", 0.5, INT4_GROUP, ("fp16", "bf16"), weight_only=True),
}
KV_BYTES: dict[str, float] = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0}
SMALL_BYTES = 2.0  # norms and biases stay at 16 bits (4 with fp32 weights)


def weight_storage(dtype: str) -> Storage:
    """The :class:`Storage` of ``dtype``; one clear error for an unknown name."""
    if dtype not in WEIGHT_DTYPES:
        raise EdgefitError(
            f"unknown weight dtype '{dtype}'",
            where="--weights",
            fix=f"use one of {', '.join(WEIGHT_DTYPES)}",
        )
    return WEIGHT_DTYPES[dtype]


def kv_bytes(dtype: str) -> float:
    """Bytes per cached K or V element.

    >>> kv_bytes("fp8")
    1.0
    """
    if dtype not in KV_BYTES:
        raise EdgefitError(
            f"unknown KV cache dtype '{dtype}'",
            where="--kv",
            fix=f"use one of {', '.join(KV_BYTES)}",
        )
    return KV_BYTES[dtype]


def compute_dtype(weights: str, supported: set[str]) -> str:
    """The dtype the matrices multiply in on a target that runs ``supported`` dtypes.

    >>> compute_dtype("int4", {"fp32", "fp16", "fp8"}), compute_dtype("fp16", {"fp32"})
    ('fp16', 'fp32')
    """
    storage = weight_storage(weights)
    for dtype in storage.compute:
        if dtype in supported:
            return dtype
    needs = "a 16-bit unit to dequantize into" if storage.weight_only else f"{weights} arithmetic"
    raise EdgefitError(
        f"the target has no {needs} (it runs {', '.join(sorted(supported))})",
        where="--weights",
        fix=f"pick weights the target runs: {', '.join(supported_weights(supported))}",
    )


def supported_weights(supported: set[str]) -> list[str]:
    """Weight dtypes a target running ``supported`` can serve."""
    return [d for d, s in WEIGHT_DTYPES.items() if any(c in supported for c in s.compute)]
