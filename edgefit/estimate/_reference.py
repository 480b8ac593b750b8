"""The estimator in plain NumPy: the readable reference the Numba kernels are tested against.

For each plan n and kernel k (see :mod:`edgefit.estimate._kernels` for the same math, looped):

* channel scales: ``s_out = scale[chan_src]``, ``s_in = scale[in_src]`` (1 for graph inputs);
  MACs and weights scale with ``s_out · s_in`` (``s_out`` alone for depthwise);
* compute time ``ops / (peak[k, dtype] · sparse speed-up)``; memory time ``weight bytes / bw[weight
  level] + activation bytes / bw[activation level]``; kernel time ``max(compute, memory) +
  overhead`` (on an overlapping NPU, :func:`_overlapped`);
* activations live in an arena on the first level that holds activations and fits the peak
  (liveness); a kernel's activation traffic runs at the first level that fits its own working set
  (caches/tiling); weights sit on the first level that holds weights and fits them all (beside the
  arena if shared);
* energy ``ops · e_op + bytes · e_byte`` per kernel (pJ) plus ``static power × latency``.
"""

from __future__ import annotations

import numpy as np

SPARSE_WEIGHT_FACTOR = (
    0.5625  # 2:4 keeps half the weights plus 2-bit indices per kept 16-bit value
)


def _first_fit(need: np.ndarray, cap: np.ndarray, holds: np.ndarray) -> np.ndarray:
    """Per row: index of the first level that holds this kind and fits ``need``; else the last such
    level."""
    candidates = np.flatnonzero(holds)
    out = np.full(need.shape, candidates[-1], dtype=np.int64)
    for m in candidates[::-1]:
        out = np.where(need <= cap[m], m, out)
    return out


def _overlapped(t, busy, t_w, t_a, same_level, overlap, prefetch):
    """Kernel time on an overlapping NPU (Vela's Ethos-U pass: the max of its NPU, SRAM and flash
    cycles): ``max(compute + overhead, memory)``, traffic to two levels in parallel, and a staged
    weight copy (``prefetch``) started under the kernel before, while that one is busy."""
    prev = np.zeros_like(busy)
    before = np.where(overlap, busy, t)  # what the next kernel's copy can hide under
    prev[:, 1:] = before[:, :-1]
    t_w = np.maximum(0.0, t_w - prefetch * prev)
    mem = np.where(same_level, t_w + t_a, np.maximum(t_w, t_a))
    return np.where(overlap, np.maximum(busy, mem), t)


def estimate_reference(plans, table, hw, record: int = 0):
    """Evaluate every plan; returns dict of arrays (latency_s, energy_j, weight_bytes,
    peak_act_bytes, level_w, level_a) and, for the first ``record`` plans, per-kernel ``kernel_s``
    and ``kernel_j``."""
    d = plans.dtype.astype(np.int64)
    n, k = d.shape
    s_out = plans.scale[:, table.chan_src]
    s_in = np.where(table.in_src >= 0, plans.scale[:, np.maximum(table.in_src, 0)], 1.0)
    s_ops = np.where(table.depthwise, s_out, s_out * s_in)
    ops = table.ops * s_ops
    sp = plans.sparse.astype(bool)
    cols = np.arange(k)[None, :]
    peak = hw.peak[cols, d] * np.where(sp, hw.sparse_speedup[cols, d], 1.0)
    t_c = ops / peak
    wb = table.w_elems * s_ops * hw.wbytes[d] * np.where(sp, SPARSE_WEIGHT_FACTOR, 1.0)
    ab = (table.in_elems * s_in + table.out_elems * s_out) * hw.abytes[d]
    w_total = wb.sum(axis=1)

    # liveness over kernels: tensor bytes take their producer's channel scale and dtype
    p = table.t_producer
    t_scale = np.where(p >= 0, plans.scale[:, table.chan_src[np.maximum(p, 0)]], 1.0)
    t_dtype = np.where(p >= 0, d[:, np.maximum(p, 0)], d[:, :1])
    t_bytes = table.t_elems * t_scale * hw.abytes[t_dtype]
    delta = np.zeros((n, k + 2))
    start = np.maximum(table.t_born, 0)
    stop = np.minimum(np.maximum(table.t_dies, start), k - 1)
    for t in range(len(table.t_elems)):
        delta[:, start[t]] += t_bytes[:, t]
        delta[:, stop[t] + 1] -= t_bytes[:, t]
    peak_act = np.cumsum(delta[:, :k], axis=1).max(axis=1) if k else np.zeros(n)

    level_a = _first_fit(peak_act, hw.cap, hw.holds_a)
    need_w = w_total[:, None] + np.where(
        np.arange(len(hw.cap))[None, :] == level_a[:, None], peak_act[:, None], 0
    )
    level_w = np.full(n, np.flatnonzero(hw.holds_w)[-1])
    for m in np.flatnonzero(hw.holds_w)[::-1]:
        level_w = np.where(need_w[:, m] <= hw.cap[m], m, level_w)
    level_k = _first_fit(ab, hw.cap, hw.holds_a)
    t_w = wb / hw.bw[level_w][:, None]
    t_a = ab / hw.bw[level_k]
    t = np.maximum(t_c, t_w + t_a) + hw.overhead[cols, d]
    if hw.overlap is not None and hw.overlap.any():
        t = _overlapped(
            t,
            t_c + hw.overhead[cols, d],
            t_w,
            t_a,
            level_k == level_w[:, None],
            hw.overlap[cols, d],
            hw.prefetch,
        )
    e = ops * hw.e_op[cols, d] + wb * hw.ebyte[level_w][:, None] + ab * hw.ebyte[level_k]
    latency = t.sum(axis=1)
    out = {
        "latency_s": latency,
        "energy_j": e.sum(axis=1) * 1e-12 + hw.static_w * latency,
        "weight_bytes": w_total,
        "peak_act_bytes": peak_act,
        "level_w": level_w,
        "level_a": level_a,
    }
    if record:
        out["kernel_s"] = t[:record]
        out["kernel_j"] = e[:record] * 1e-12 + hw.static_w * t[:record]
    return out
