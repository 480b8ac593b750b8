"""Plans: what a candidate changes per kernel (dtype, 2:4 sparsity, channel scale), as dense
arrays.

A :class:`Plan` is a small frozen config; :class:`PlanBatch` stacks N plans as ``N × K`` arrays for
the vectorized estimators. Dtype codes index :data:`PLAN_DTYPES`; ``int4`` means int4 *weights*
with float activations (weight-only quantization).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLAN_DTYPES = ("fp32", "fp16", "bf16", "int8", "int4", "fp8")
DTYPE_CODE = {name: i for i, name in enumerate(PLAN_DTYPES)}
N_DTYPES = len(PLAN_DTYPES)


@dataclass(frozen=True)
class Plan:
    """One candidate: a default dtype plus per-kernel overrides, 2:4 sparsity and channel scales.

    >>> Plan(dtype="int8", keep_float=("node_linear",)).dtype
    'int8'
    """

    dtype: str = "fp32"
    keep_float: tuple[str, ...] = ()  # kernel names left in fp32 (mixed precision)
    sparse_2to4: bool = False  # 2:4 sparse weights on every weight-bearing kernel
    channel_scale: float = (
        1.0  # fraction of output channels kept in weight-bearing kernels (width/pruning)
    )
    per_kernel_dtype: tuple[tuple[str, str], ...] = ()  # explicit (kernel name, dtype) overrides

    def __post_init__(self) -> None:
        if self.dtype not in DTYPE_CODE:
            raise ValueError(f"unknown dtype {self.dtype!r}; expected one of {PLAN_DTYPES}")
        if not 0.0 < self.channel_scale <= 1.0:
            raise ValueError(f"channel_scale must be in (0, 1], got {self.channel_scale}")


@dataclass
class PlanBatch:
    """N plans over K kernels: ``dtype`` (int8 codes), ``sparse`` (uint8), ``scale`` (float64)."""

    dtype: np.ndarray
    sparse: np.ndarray
    scale: np.ndarray

    def __len__(self) -> int:
        return self.dtype.shape[0]

    @classmethod
    def empty(cls, n: int, k: int) -> PlanBatch:
        return cls(np.zeros((n, k), np.int8), np.zeros((n, k), np.uint8), np.ones((n, k)))

    @classmethod
    def from_plans(cls, plans: list[Plan], table) -> PlanBatch:
        """Lay out ``plans`` over ``table``'s kernels; dtype changes apply to weight-bearing
        kernels only."""
        batch = cls.empty(len(plans), len(table))
        index = {name: i for i, name in enumerate(table.names)}
        base = np.array(
            [DTYPE_CODE.get(d if d in DTYPE_CODE else "fp32", 0) for d in table.base_dtype],
            np.int8,
        )
        for n, plan in enumerate(plans):
            row = np.where(table.has_weights, DTYPE_CODE[plan.dtype], base).astype(np.int8)
            # kernels without weights run in the dtype of their input (int8 pools/adds in an int8
            # model)
            for k in range(len(table)):
                if (
                    not table.has_weights[k]
                    and table.in_src[k] >= 0
                    and plan.dtype in ("int8", "fp16", "bf16")
                ):
                    row[k] = (
                        row[table.in_src[k]]
                        if row[table.in_src[k]] != DTYPE_CODE["int4"]
                        else base[k]
                    )
            for name in plan.keep_float:
                if name in index:
                    row[index[name]] = DTYPE_CODE["fp32"]
            for name, dtype in plan.per_kernel_dtype:
                if name in index:
                    row[index[name]] = DTYPE_CODE[dtype]
            batch.dtype[n] = row
            batch.sparse[n] = table.has_weights & plan.sparse_2to4
            batch.scale[n] = np.where(table.has_weights, plan.channel_scale, 1.0)
        return batch

    @classmethod
    def native(cls, table) -> PlanBatch:
        """One plan that leaves the model as it is (each kernel in the graph's own dtype)."""
        batch = cls.empty(1, len(table))
        batch.dtype[0] = [DTYPE_CODE.get(d, 0) for d in table.base_dtype]
        return batch

    def take(self, idx) -> PlanBatch:
        return PlanBatch(self.dtype[idx], self.sparse[idx], self.scale[idx])
