"""Lower an ONNX model to the kernels onnxruntime actually runs, and (optionally) time each one.

The ONNX graph a user hands in is not what onnxruntime executes. With all graph optimizations on,
the CPU provider folds batch norms, fuses activations into ``FusedConv``/``nchwc`` convolutions,
rewrites Q/DQ pairs into ``QLinearConv``/``QGemm``/``MatMulInteger``, inserts layout transposes and
``ReorderInput``/``ReorderOutput`` nodes, and leaves some Q/DQ nodes unfused — each of which costs
real time (a uint8 ``MaxPool`` on a 64×64×64 tensor runs for ~0.9 ms here where the fp32 one takes
20 µs). Costing the nodes as written misses all of that, so the estimator costs the lowered nodes.

:func:`lower` builds a session with the same options measurement uses (CPU provider, sequential
executor, ``ORT_ENABLE_ALL``, ``threads`` intra-op threads), turns on onnxruntime's own profiler
and runs the model a few times: the profiler names every executed node with its op, provider and
the input/output shapes and element types, which a saved optimized model cannot give (shape
inference does not know the contrib ops). Attributes and weight shapes come from the optimized
model that ``SessionOptions.optimized_model_filepath`` writes. With ``runs`` > the warm-up, each
node also gets its in-network time (a trimmed mean over runs, in seconds): that is what calibration
learns from.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from edgefit._ort import ort_session

# what edgefit's measurement sessions use (runtimes/_onnxruntime.py, calibrate)
OPT_LEVEL = "all"
_ONNX_TYPE = {
    1: "fp32",
    2: "u8",
    3: "s8",
    4: "u16",
    5: "s16",
    6: "s32",
    7: "s64",
    9: "bool",
    10: "fp16",
    11: "fp64",
}
_NP_DTYPE = {
    "float": "fp32",
    "float16": "fp16",
    "double": "fp64",
    "uint8": "u8",
    "int8": "s8",
    "int32": "s32",
    "int64": "s64",
    "bool": "bool",
    "int16": "s16",
    "uint16": "u16",
}


@dataclass(frozen=True)
class LoweredNode:
    """One kernel onnxruntime executes: op, shapes and element types as the runtime sees them."""

    name: str
    op: str  # onnxruntime's op name (QLinearConv, Conv, FusedConv, QuantizeLinear, ReorderInput…)
    domain: str  # "" (ONNX), "com.microsoft", "com.microsoft.nchwc"
    in_shapes: tuple[tuple[int, ...], ...]
    in_types: tuple[str, ...]
    out_shapes: tuple[tuple[int, ...], ...]
    out_types: tuple[str, ...]
    attrs: dict = field(default_factory=dict, hash=False, compare=False)
    weights: dict[int, tuple[int, ...]] = field(default_factory=dict, hash=False, compare=False)
    time_s: float | None = None  # in-network time, when measured

    def shape(self, i: int) -> tuple[int, ...]:
        """Shape of input ``i``: the profiler's, else the initializer's (prepacked weights lose
        theirs)."""
        s = self.in_shapes[i] if i < len(self.in_shapes) else ()
        return s if s else self.weights.get(i, ())


@dataclass(frozen=True)
class Lowered:
    nodes: tuple[LoweredNode, ...]
    threads: int
    run_s: float | None = None  # whole-run time under the profiler (median), when measured


def random_feeds(sess, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs for every input of an onnxruntime session (dynamic dims taken as 1)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        if "int" in inp.type:
            feeds[inp.name] = rng.integers(0, 100, size=shape).astype(
                np.int64 if "64" in inp.type else np.int32
            )
        elif "float16" in inp.type:
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float16)
        else:
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def _typed_shapes(items) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
    shapes, types = [], []
    for item in items or []:
        ((dtype, shape),) = item.items()
        shapes.append(tuple(int(d) for d in shape))
        types.append(_NP_DTYPE.get(dtype, dtype))
    return tuple(shapes), tuple(types)


def trimmed_mean(values, keep: float = 0.5) -> float:
    """Mean of the middle ``keep`` fraction: robust to the spikes a shared machine adds, and finer
    than the profiler's whole microseconds."""
    v = np.sort(np.asarray(values, dtype=float))
    cut = int(len(v) * (1 - keep) / 2)
    return float(v[cut : len(v) - cut].mean()) if len(v) > 2 * cut else float(np.median(v))


def _graph_info(optimized_path: str) -> tuple[dict[str, dict], dict[str, list]]:
    """Per node of the optimized model: its attributes, and per input either the initializer's
    (shape, element type) or None for an activation."""
    model = onnx.load(optimized_path, load_external_data=False)
    inits = {
        t.name: (tuple(int(d) for d in t.dims), _ONNX_TYPE.get(t.data_type, "?"))
        for t in model.graph.initializer
    }
    attrs: dict[str, dict] = {}
    inputs: dict[str, list] = {}
    for node in model.graph.node:
        attrs[node.name] = {
            a.name: helper.get_attribute_value(a)
            for a in node.attribute
            if a.type
            in (
                onnx.AttributeProto.INT,
                onnx.AttributeProto.INTS,
                onnx.AttributeProto.FLOAT,
                onnx.AttributeProto.STRING,
            )
        }
        attrs[node.name]["_domain"] = node.domain
        inputs[node.name] = [inits.get(t) if t else ("absent",) for t in node.input]
    return attrs, inputs


def _align(
    declared: list, shapes: tuple, types: tuple
) -> tuple[tuple, tuple, dict[int, tuple[int, ...]]]:
    """Input shapes/types indexed like the node's inputs. The profiler lists the inputs a kernel
    reads at run time; a weight onnxruntime pre-packed at load is missing from that list, so it is
    taken from the initializer."""
    out_s, out_t, weights = [], [], {}
    j = 0
    for i, init in enumerate(declared):
        if init == ("absent",):
            out_s.append(())
            out_t.append("absent")
            continue
        if init is not None:
            weights[i] = init[0]
            listed = j < len(shapes) and shapes[j] == init[0] and types[j] == init[1]
            out_s.append(init[0])
            out_t.append(init[1])
            j += int(listed)
            continue
        out_s.append(shapes[j] if j < len(shapes) else ())
        out_t.append(types[j] if j < len(types) else "?")
        j += 1
    if (
        not declared
    ):  # a node the optimized model does not name (should not happen): keep the profile's
        return shapes, types, {}
    return tuple(out_s), tuple(out_t), weights


def lower(model, *, threads: int = 1, runs: int = 2, warmup: int = 1, seed: int = 0) -> Lowered:
    """Lower ``model`` (a path, bytes or ModelProto) with onnxruntime's CPU provider.

    ``runs`` profiled runs follow ``warmup`` unprofiled-in-the-statistics ones; with ``runs`` ≥ 5
    each node's ``time_s`` is its trimmed mean in-network time.
    """
    data = model if isinstance(model, (bytes, str)) else model.SerializeToString()
    if isinstance(data, str):
        data = Path(data).read_bytes()
    with tempfile.TemporaryDirectory(prefix="edgefit-lower-") as tmp:
        opt = os.path.join(tmp, "optimized.onnx")
        sess = ort_session(
            data,
            threads,
            opt_level=OPT_LEVEL,
            profile_prefix=os.path.join(tmp, "profile"),
            optimized_path=opt,
        )
        feeds = random_feeds(sess, seed)
        for _ in range(warmup + runs):
            sess.run(None, feeds)
        events = json.loads(Path(sess.end_profiling()).read_text())
        attrs, inputs = _graph_info(opt)
    return _parse(events, attrs, inputs, threads=threads, warmup=warmup, timed=runs >= 5)


def _parse(
    events: list[dict], attrs: dict, inputs: dict, *, threads: int, warmup: int, timed: bool
) -> Lowered:
    order: list[str] = []
    seen: dict[str, dict] = {}
    durs: dict[str, list[float]] = {}
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        name = e["name"][: -len("_kernel_time")]
        if name not in seen:
            seen[name] = e
            order.append(name)
        durs.setdefault(name, []).append(e["dur"] * 1e-6)
    run_durs = [e["dur"] * 1e-6 for e in events if e.get("name") == "model_run"][warmup:]
    nodes = []
    for name in order:
        args = seen[name].get("args", {})
        ins, in_t = _typed_shapes(args.get("input_type_shape"))
        ins, in_t, weights = _align(inputs.get(name, []), ins, in_t)
        outs, out_t = _typed_shapes(args.get("output_type_shape"))
        a = dict(attrs.get(name, {}))
        domain = a.pop("_domain", "")
        nodes.append(
            LoweredNode(
                name=name,
                op=str(args.get("op_name", "?")),
                domain=domain,
                in_shapes=ins,
                in_types=in_t,
                out_shapes=outs,
                out_types=out_t,
                attrs=a,
                weights=weights,
                time_s=trimmed_mean(durs[name][warmup:])
                if timed and len(durs[name]) > warmup
                else None,
            )
        )
    return Lowered(
        tuple(nodes), threads, float(np.median(run_durs)) if timed and run_durs else None
    )


def lowered_to_dict(low: Lowered) -> dict:
    """JSON-ready form (the closed loop stores measured models with their kernels)."""
    return {
        "threads": low.threads,
        "run_s": low.run_s,
        "nodes": [
            {
                "name": n.name,
                "op": n.op,
                "domain": n.domain,
                "in_shapes": [list(x) for x in n.in_shapes],
                "in_types": list(n.in_types),
                "out_shapes": [list(x) for x in n.out_shapes],
                "out_types": list(n.out_types),
                "attrs": {
                    k: v for k, v in n.attrs.items() if isinstance(v, (int, float, str, list))
                },
                "weights": {str(k): list(v) for k, v in n.weights.items()},
                "time_s": n.time_s,
            }
            for n in low.nodes
        ],
    }


def lowered_from_dict(d: dict) -> Lowered:
    nodes = tuple(
        LoweredNode(
            name=str(n["name"]),
            op=str(n["op"]),
            domain=str(n["domain"]),
            in_shapes=tuple(tuple(int(v) for v in x) for x in n["in_shapes"]),
            in_types=tuple(n["in_types"]),
            out_shapes=tuple(tuple(int(v) for v in x) for x in n["out_shapes"]),
            out_types=tuple(n["out_types"]),
            attrs=dict(n.get("attrs") or {}),
            weights={int(k): tuple(int(v) for v in x) for k, x in n["weights"].items()},
            time_s=None if n.get("time_s") is None else float(n["time_s"]),
        )
        for n in d["nodes"]
    )
    return Lowered(nodes, int(d["threads"]), None if d.get("run_s") is None else float(d["run_s"]))
