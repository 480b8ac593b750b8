"""The estimator as Numba kernels: N plans × K kernels in one call, ``prange`` over plans.

Same math as :func:`edgefit.estimate._reference.estimate_reference` (read that first), written as
loops so that one plan's kernels stay in registers and cache. ``cache=True`` keeps the compiled code
across processes (``NUMBA_CACHE_DIR`` moves it when the package folder is read-only).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from edgefit.estimate._reference import SPARSE_WEIGHT_FACTOR


@njit(cache=True, inline="always")
def _first_fit(need, cap, holds):
    last = -1
    for m in range(cap.shape[0]):
        if holds[m]:
            last = m
            if need <= cap[m]:
                return m
    return last


@njit(parallel=True, cache=True)
def estimate_kernel(dtype, sparse, scale,
                    ops, w_elems, in_elems, out_elems, chan_src, in_src, depthwise,
                    peak, overhead, e_op, sparse_speedup, wbytes, abytes,
                    cap, bw, ebyte, holds_w, holds_a, static_w,
                    t_born, t_dies, t_elems, t_producer,
                    out_lat, out_energy, out_w, out_act, out_lw, out_la, rec_t, rec_e):
    n_plans, k = dtype.shape
    n_rec = rec_t.shape[0]
    n_levels = cap.shape[0]
    for n in prange(n_plans):
        # pass 1: weights and activation liveness
        w_total = 0.0
        for i in range(k):
            d = dtype[n, i]
            s_out = scale[n, chan_src[i]]
            s_in = scale[n, in_src[i]] if in_src[i] >= 0 else 1.0
            s_ops = s_out if depthwise[i] else s_out * s_in
            w_total += w_elems[i] * s_ops * wbytes[d] * (SPARSE_WEIGHT_FACTOR if sparse[n, i] else 1.0)
        delta = np.zeros(k + 2)
        for t in range(t_elems.shape[0]):
            p = t_producer[t]
            if p >= 0:
                b = t_elems[t] * scale[n, chan_src[p]] * abytes[dtype[n, p]]
            else:
                b = t_elems[t] * abytes[dtype[n, 0]]
            start = t_born[t] if t_born[t] > 0 else 0
            stop = t_dies[t] if t_dies[t] > start else start
            if stop > k - 1:
                stop = k - 1
            delta[start] += b
            delta[stop + 1] -= b
        peak_act = 0.0
        live = 0.0
        for i in range(k):
            live += delta[i]
            if live > peak_act:
                peak_act = live
        la = _first_fit(peak_act, cap, holds_a)
        lw = -1
        for m in range(n_levels):
            if holds_w[m]:
                lw = m
                if w_total + (peak_act if m == la else 0.0) <= cap[m]:
                    break
        # pass 2: time and energy per kernel
        lat = 0.0
        energy = 0.0
        for i in range(k):
            d = dtype[n, i]
            s_out = scale[n, chan_src[i]]
            s_in = scale[n, in_src[i]] if in_src[i] >= 0 else 1.0
            s_ops = s_out if depthwise[i] else s_out * s_in
            o = ops[i] * s_ops
            sp = sparse[n, i] != 0
            pk = peak[i, d] * (sparse_speedup[i, d] if sp else 1.0)
            t_c = o / pk
            wb = w_elems[i] * s_ops * wbytes[d] * (SPARSE_WEIGHT_FACTOR if sp else 1.0)
            ab = (in_elems[i] * s_in + out_elems[i] * s_out) * abytes[d]
            lk = _first_fit(ab, cap, holds_a)
            t_m = wb / bw[lw] + ab / bw[lk]
            t = (t_c if t_c > t_m else t_m) + overhead[i, d]
            e = o * e_op[i, d] + wb * ebyte[lw] + ab * ebyte[lk]
            lat += t
            energy += e
            if n < n_rec:
                rec_t[n, i] = t
                rec_e[n, i] = e * 1e-12 + static_w * t
        out_lat[n] = lat
        out_energy[n] = energy * 1e-12 + static_w * lat
        out_w[n] = w_total
        out_act[n] = peak_act
        out_lw[n] = lw
        out_la[n] = la


def estimate_numba(plans, table, hw, record: int = 0):
    """Run :func:`estimate_kernel`; same return value as ``estimate_reference``."""
    n, k = plans.dtype.shape
    out = {name: np.empty(n) for name in ("latency_s", "energy_j", "weight_bytes", "peak_act_bytes")}
    lw, la = np.empty(n, np.int64), np.empty(n, np.int64)
    rec_t, rec_e = np.zeros((record, k)), np.zeros((record, k))
    estimate_kernel(
        np.ascontiguousarray(plans.dtype, np.int64), np.ascontiguousarray(plans.sparse, np.uint8),
        np.ascontiguousarray(plans.scale, np.float64),
        table.ops, table.w_elems, table.in_elems, table.out_elems, table.chan_src.astype(np.int64),
        table.in_src.astype(np.int64), table.depthwise,
        hw.peak, hw.overhead, hw.e_op, hw.sparse_speedup, hw.wbytes, hw.abytes,
        hw.cap, hw.bw, hw.ebyte, hw.holds_w, hw.holds_a, hw.static_w,
        table.t_born.astype(np.int64), table.t_dies.astype(np.int64), table.t_elems, table.t_producer.astype(np.int64),
        out["latency_s"], out["energy_j"], out["weight_bytes"], out["peak_act_bytes"], lw, la, rec_t, rec_e,
    )
    out["level_w"], out["level_a"] = lw, la
    if record:
        out["kernel_s"], out["kernel_j"] = rec_t, rec_e
    return out
