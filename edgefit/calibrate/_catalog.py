"""The kernel catalog (``kernels/catalog.yaml``) and the tiny ONNX model each kernel becomes."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgefit._lazy import lazy_import
from edgefit._resources import data_dir
from edgefit._yaml import load_yaml
from edgefit.errors import EdgefitError

if TYPE_CHECKING:
    import onnx
else:  # the kernel models are built when a sweep runs
    onnx = lazy_import("onnx")

OPSET = 18


@dataclass(frozen=True)
class KernelSpec:
    kclass: str
    params: tuple[tuple[str, object], ...]

    @property
    def p(self) -> dict:
        return dict(self.params)

    @property
    def label(self) -> str:
        return self.kclass + "(" + ",".join(f"{k}={v}" for k, v in self.params) + ")"


def load_catalog(path: str | Path | None = None) -> tuple[list[str], list[tuple[str, int, dict]]]:
    """``(dtypes, [(class, samples, grid), …])`` from the catalog YAML."""
    path = Path(path) if path else data_dir("kernels") / "catalog.yaml"
    doc, _ = load_yaml(path)
    try:
        entries = [(e["class"], int(e["samples"]), dict(e["grid"])) for e in doc["kernels"]]
        return list(doc["dtypes"]), entries
    except (KeyError, TypeError, ValueError) as exc:
        raise EdgefitError(
            f"invalid kernel catalog: {exc}", where=str(path), fix="see kernels/catalog.yaml"
        ) from None


def sample_specs(entries, *, scale: float = 1.0, seed: int = 0) -> list[KernelSpec]:
    """Sample each class's grid (seeded); ``scale`` shrinks or grows the sample counts for a
    budget."""
    rng = random.Random(seed)
    specs: list[KernelSpec] = []
    for kclass, samples, grid in entries:
        keys = list(grid)
        combos = [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]
        combos = [c for c in combos if _valid(kclass, c)]
        n = max(2, min(len(combos), round(samples * scale)))
        for combo in rng.sample(combos, n):
            specs.append(KernelSpec(kclass, tuple(combo.items())))
    return specs


def _valid(kclass: str, p: dict) -> bool:
    if kclass in ("conv", "dwconv", "pool"):
        return p["hw"] >= p["k"] * 2
    return True


def build_kernel_model(spec: KernelSpec):
    """The fp32 ONNX model of one kernel (batch 1), with deterministic random weights."""
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    rng = np.random.default_rng(abs(hash(spec.label)) % 2**32)
    p = spec.p
    inits, nodes = [], []

    def weight(name, shape, fan_in):
        inits.append(
            numpy_helper.from_array(
                (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32), name
            )
        )

    def vi(name, shape):
        return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)

    k = spec.kclass
    if k in ("conv", "conv1x1", "dwconv"):
        cin = p["cin"] if "cin" in p else p["c"]
        cout = p["cout"] if "cout" in p else p["c"]
        group = cin if k == "dwconv" else 1
        kk, stride = p["k"], p.get("stride", 1)
        weight("w", (cout, cin // group, kk, kk), cin // group * kk * kk)
        weight("b", (cout,), 1)
        nodes += [
            helper.make_node(
                "Conv",
                ["x", "w", "b"],
                ["c"],
                name="conv",
                group=group,
                strides=[stride, stride],
                pads=[kk // 2] * 4,
            ),
            helper.make_node("Relu", ["c"], ["y"], name="relu"),
        ]
        inputs = [vi("x", [1, cin, p["hw"], p["hw"]])]
    elif k == "conv1d":
        group = p["cin"] if p["dw"] else 1
        cout = p["cin"] if p["dw"] else p["cout"]
        kk, dil = p["k"], p["dilation"]
        weight("w", (cout, p["cin"] // group, kk), p["cin"] // group * kk)
        weight("b", (cout,), 1)
        nodes += [
            helper.make_node(
                "Conv",
                ["x", "w", "b"],
                ["c"],
                name="conv1d",
                group=group,
                dilations=[dil],
                pads=[(kk - 1) * dil, 0],
            ),
            helper.make_node("Relu", ["c"], ["y"], name="relu"),
        ]
        inputs = [vi("x", [1, p["cin"], p["length"]])]
    elif k == "chain":
        c, prev = p["c"], "x"
        for b in range(p["blocks"]):
            weight(f"wd{b}", (c, 1, 3, 3), 9)
            weight(f"wp{b}", (c, c, 1, 1), c)
            nodes += [
                helper.make_node(
                    "Conv", [prev, f"wd{b}"], [f"d{b}"], name=f"dw{b}", group=c, pads=[1] * 4
                ),
                helper.make_node("Relu", [f"d{b}"], [f"dr{b}"], name=f"dwr{b}"),
                helper.make_node("Conv", [f"dr{b}", f"wp{b}"], [f"p{b}"], name=f"pw{b}"),
                helper.make_node(
                    "Relu", [f"p{b}"], ["y" if b == p["blocks"] - 1 else f"pr{b}"], name=f"pwr{b}"
                ),
            ]
            prev = f"pr{b}"
        inputs = [vi("x", [1, c, p["hw"], p["hw"]])]
    elif k == "gemm":
        weight("w", (p["n"], p["k"]), p["k"])
        weight("b", (p["n"],), 1)
        nodes.append(helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="gemm", transB=1))
        inputs = [vi("x", [p["m"], p["k"]])]
    elif k == "matmul":
        nodes.append(helper.make_node("MatMul", ["x", "x2"], ["y"], name="matmul"))
        inputs = [vi("x", [p["b"], p["m"], p["k"]]), vi("x2", [p["b"], p["k"], p["n"]])]
    elif k == "pool":
        nodes.append(
            helper.make_node(
                p["op"], ["x"], ["y"], name="pool", kernel_shape=[p["k"]] * 2, strides=[p["k"]] * 2
            )
        )
        inputs = [vi("x", [1, p["c"], p["hw"], p["hw"]])]
    elif k == "eltwise":
        nodes += [
            helper.make_node("Add", ["x", "x2"], ["a"], name="add"),
            helper.make_node("Relu", ["a"], ["y"], name="relu"),
        ]
        inputs = [vi("x", [1, p["c"], p["hw"], p["hw"]]), vi("x2", [1, p["c"], p["hw"], p["hw"]])]
    elif k == "norm":
        weight("g", (p["d"],), 1)
        weight("beta", (p["d"],), 1)
        nodes.append(
            helper.make_node("LayerNormalization", ["x", "g", "beta"], ["y"], name="norm", axis=-1)
        )
        inputs = [vi("x", [1, p["rows"], p["d"]])]
    elif k == "softmax":
        nodes.append(helper.make_node("Softmax", ["x"], ["y"], name="softmax", axis=-1))
        inputs = [vi("x", [1, p["rows"], p["d"]])]
    elif k == "reduce":
        nodes.append(helper.make_node("GlobalAveragePool", ["x"], ["y"], name="gap"))
        inputs = [vi("x", [1, p["c"], p["hw"], p["hw"]])]
    elif k == "resize":
        inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"))
        nodes.append(
            helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize", mode="nearest")
        )
        inputs = [vi("x", [1, p["c"], p["hw"], p["hw"]])]
    else:
        raise EdgefitError(
            f"unknown kernel class '{k}' in the catalog",
            where="kernels/catalog.yaml",
            fix="use a class of edgefit.estimate.KERNEL_CLASSES",
        )
    graph = helper.make_graph(nodes, spec.label, inputs, [vi("y", None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    return model


def quantizable(kclass: str) -> bool:
    """Kernel classes whose int8 form is a weight-bearing QDQ kernel (the rest are measured in
    fp32)."""
    return kclass in (
        "conv",
        "conv1x1",
        "dwconv",
        "conv1d",
        "gemm",
        "matmul",
        "pool",
        "eltwise",
        "chain",
    )
