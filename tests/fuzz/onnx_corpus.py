"""Hand-made hostile and odd ONNX inputs: every class of broken model issue #14 names, plus the classics.

Each :class:`Case` writes its input into a folder and says what ``edgefit inspect`` must answer: exit 2
with an error line matching ``says``, or exit 0 with warnings/notes matching ``says``.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BIG = 2**62  # two of these multiply past int64


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Path]  # writes the input under the given folder, returns its path
    code: int  # 0: valid (maybe odd), 2: refused
    says: str  # regex: in the error line (code 2) or in the warnings + notes (code 0)


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def model(nodes, inputs, outputs, inits=(), opset=18, domains=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    m = helper.make_model(graph, opset_imports=opsets)
    m.ir_version = 9
    return m


def weight(name, *shape, value=1.0):
    return numpy_helper.from_array(np.full(shape, value, np.float32), name)


def _save(m: onnx.ModelProto, name: str = "model.onnx"):
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(m.SerializeToString())
        return path

    return make


def _bytes(data: bytes, name: str = "model.onnx"):
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def _gemm_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="gemm")]
    return model(nodes, [vi("x", [1, 64])], [vi("y", [1, 64])], [weight("w", 64, 64)])


class Payload:
    """Unpickling this creates ``MARKER``: proof that something unpickled user input."""

    marker = ""

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _pickle(folder: Path) -> Path:
    payload = Payload()
    payload.marker = str(folder / "UNPICKLED")
    path = folder / "model.onnx"
    path.write_bytes(pickle.dumps(payload, protocol=4))
    return path


def _zip(folder: Path) -> Path:
    path = folder / "model.onnx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    return path


def _directory(folder: Path) -> Path:
    path = folder / "model.onnx"
    path.mkdir()
    return path


def _external(location: str, *, nbytes: int = 64 * 64 * 4, inside: bool = True, symlink_to: Path | None = None):
    """The Gemm model with its weight in an external file at ``location`` (relative to the model)."""

    def make(folder: Path) -> Path:
        folder = folder / "m"
        folder.mkdir()
        m = _gemm_model()
        w = m.graph.initializer[0]
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", str(64 * 64 * 4))):
            w.external_data.add(key=key, value=value)
        data = np.ones(nbytes // 4, np.float32).tobytes()
        if symlink_to is not None:
            symlink_to.write_bytes(data)
            (folder / location).symlink_to(symlink_to)
        elif inside and not os.path.isabs(location):
            target = (folder / location)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        path = folder / "model.onnx"
        path.write_bytes(m.SerializeToString())
        return path

    return make


def _lying_raw() -> onnx.ModelProto:
    w = weight("w", 4, 4)
    del w.dims[:]
    w.dims.extend([1_000_000, 1_000_000])  # says 4 TB, holds 64 bytes
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    return model(nodes, [vi("x", [1, 1_000_000])], [vi("y", None)], [w])


def _lying_float_data() -> onnx.ModelProto:
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [1.0] * 16)
    del w.float_data[5:]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    return model(nodes, [vi("x", [1, 4])], [vi("y", None)], [w])


def _empty_initializer() -> onnx.ModelProto:
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [1.0] * 16)
    w.ClearField("float_data")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    return model(nodes, [vi("x", [1, 4])], [vi("y", None)], [w])


def _relu(x="x", y="y", name="relu"):
    return helper.make_node("Relu", [x], [y], name=name)


def _chain(n: int) -> onnx.ModelProto:
    nodes = [helper.make_node("Relu" if i % 2 else "Abs", [f"t{i}"], [f"t{i + 1}"], name=f"n{i}") for i in range(n)]
    return model(nodes, [vi("t0", [1, 64])], [vi(f"t{n}", None)])


def _nonzero() -> onnx.ModelProto:
    nodes = [helper.make_node("NonZero", ["x"], ["idx"], name="nz"),
             helper.make_node("Cast", ["idx"], ["f"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Relu", ["f"], ["y"], name="relu")]
    return model(nodes, [vi("x", [4, 4])], [vi("y", None)])


def _nan_weights() -> onnx.ModelProto:
    w = weight("w", 8, 8)
    values = np.ones((8, 8), np.float32)
    values[0, 0], values[1, 1] = np.nan, np.inf
    w = numpy_helper.from_array(values, "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    return model(nodes, [vi("x", [1, 8])], [vi("y", None)], [w])


def _ir(version: int) -> onnx.ModelProto:
    m = model([_relu()], [vi("x", [1, 4])], [vi("y", None)])
    m.ir_version = version
    return m


def _no_opset() -> onnx.ModelProto:
    m = model([_relu()], [vi("x", [1, 4])], [vi("y", None)])
    m.ClearField("opset_import")
    return m


def _macs_overflow() -> onnx.ModelProto:
    # each input 2^40 elements (at the limit), their product 2^60 MACs: past 2^53
    nodes = [helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")]
    return model(nodes, [vi("a", [2**20, 2**20]), vi("b", [2**20, 2**20])], [vi("y", None)])


def _constant_of_shape_huge() -> onnx.ModelProto:
    shape = numpy_helper.from_array(np.array([2**40, 2**40], np.int64), "s")
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["c"], name="cos"),
             helper.make_node("Add", ["x", "c"], ["y"], name="add")]
    return model(nodes, [vi("x", [1, 1])], [vi("y", None)], [shape])


def _sparse_huge(folder: Path) -> Path:
    path = folder / "model.onnx"
    with open(path, "wb") as f:  # a sparse file: 2 GiB on paper, no disk used
        f.write(_gemm_model().SerializeToString())
        f.truncate(2**31 + 1)
    return path


def _varint(n: int) -> bytes:
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        out += bytes([low | (0x80 if n else 0)])
        if not n:
            return out


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _nested_ifs(depth: int):
    """``depth`` If nodes, each in the previous one's then-branch. Written in protobuf's wire format by
    hand: past protobuf's nesting limit no library (onnx.helper included) builds it."""

    def make(folder: Path) -> Path:
        out = vi("y", [1]).SerializeToString()
        flat = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "leaf", [], [vi("y", [1])])
        leaf = flat.SerializeToString()
        inner = leaf
        for _ in range(depth):
            attrs = [_field(1, name) + _field(6, graph) + _varint(20 << 3) + _varint(5)  # type GRAPH
                     for name, graph in ((b"then_branch", inner), (b"else_branch", leaf))]
            node = _field(1, b"cond") + _field(2, b"y") + _field(4, b"If") + b"".join(_field(5, a) for a in attrs)
            inner = _field(1, node) + _field(2, b"g") + _field(12, out)
        top = model([], [vi("cond", [], TensorProto.BOOL), vi("x", [1])], [vi("y", [1])])
        graph = inner + b"".join(_field(11, i.SerializeToString()) for i in top.graph.input)
        top.ClearField("graph")
        path = folder / "model.onnx"
        path.write_bytes(top.SerializeToString() + _field(7, graph))
        return path

    return make


def _unknown_dtype() -> onnx.ModelProto:
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [1.0] * 16)
    w.data_type = 999
    return model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [vi("x", [1, 4])], [vi("y", None)], [w])


def _one(op: str, x_shape, inits=(), domain="", **attrs) -> onnx.ModelProto:
    node = helper.make_node(op, ["x"] + [i.name for i in inits], ["y"], name="n", domain=domain, **attrs)
    return model([node], [vi("x", x_shape)], [vi("y", None)], inits, domains=[domain] if domain else ())


CASES: list[Case] = [
    # --- not an ONNX file at all ---
    Case("empty", _bytes(b""), 2, "empty"),
    Case("truncated", _bytes(_gemm_model().SerializeToString()[:100]), 2, "truncated|not a readable"),
    Case("random-bytes", _bytes(np.random.default_rng(14).bytes(4096)), 2, "not a readable ONNX|truncated|no graph"),
    Case("yaml", _bytes(b"name: my-board\nmemory:\n  sram_kb: 512\n"), 2, "text file"),
    Case("json", _bytes(b'{"graph": {"node": []}}'), 2, "text file"),
    Case("utf16-text", _bytes("name: board\n".encode("utf-16")), 2, "UTF-16"),
    Case("png", _bytes(b"\x89PNG\r\n\x1a\n" + bytes(200)), 2, "PNG image"),
    Case("zip", _zip, 2, "ZIP archive"),
    Case("directory", _directory, 2, "directory"),
    Case("pickle", _pickle, 2, "pickle.*never unpickles"),
    Case("missing", lambda folder: folder / "nope.onnx", 2, "not found"),
    Case("oversized", _sparse_huge, 2, "2.0 GiB; edgefit reads models up to 2 GiB"),
    Case("a-tensor-not-a-model", _bytes(numpy_helper.from_array(np.ones(64, np.float32), "t").SerializeToString()),
         2, "not a readable ONNX|no graph nodes"),
    Case("subgraphs-nested-too-deep", _nested_ifs(120), 2, "not a readable ONNX|truncated"),
    Case("subgraphs-nested", _nested_ifs(20), 0, ""),
    Case("proto-without-nodes", _save(onnx.ModelProto(ir_version=9)), 2, "no graph nodes"),
    # --- external data ---
    Case("external-absolute", _external("/etc/passwd"), 2, "outside the model's folder"),
    Case("external-dotdot", _external("../secret.bin"), 2, "outside the model's folder"),
    Case("external-nested-dotdot", _external("sub/../../secret.bin"), 2, "outside the model's folder"),
    Case("external-symlink-out", lambda f: _external("link.bin", symlink_to=f / "outside.bin")(f), 2,
         "resolves outside"),
    Case("external-missing", _external("weights.bin", inside=False), 2, "does not exist"),
    Case("external-short-file", _external("weights.bin", nbytes=100), 2, "needs 16384 bytes"),
    Case("external-ok", _external("weights.bin"), 0, ""),
    # --- dimensions and sizes ---
    Case("int64-overflow-dims", _save(model([_relu()], [vi("x", [BIG, BIG])], [vi("y", None)])), 2, "over 2\\^40"),
    Case("huge-output-dims", _save(model([_relu()], [vi("x", [1, 4])], [vi("y", [BIG, 4])])), 2, "over 2\\^40"),
    Case("negative-dim", _save(model([_relu()], [vi("x", [1, 4])], [vi("y", [1, -4])])), 2, "negative dimension"),
    Case("inferred-huge", _save(_constant_of_shape_huge()), 2, "over 2\\^40"),
    Case("macs-overflow", _save(_macs_overflow()), 2, "past 2\\^53"),
    Case("raw-data-lies", _save(_lying_raw()), 2, "initializer 'w'.*holds 64 bytes"),
    Case("float-data-lies", _save(_lying_float_data()), 2, "initializer 'w'.*holds 5 values"),
    Case("initializer-without-data", _save(_empty_initializer()), 2, "initializer 'w'.*no data"),
    Case("unknown-data-type", _save(_unknown_dtype()), 2, "initializer 'w' has data type 999"),
    Case("attributes-blow-up-macs", _save(_one("MatMulNBits", [1, 4], [weight("w", 4, 4)], "com.microsoft",
                                               K=2**40, N=2**40)), 2, "MatMulNBits.*past 2\\^53"),
    Case("pads-blow-up-dims", _save(_one("Conv", [1, 1, 4, 4], [weight("w", 1, 1, 1, 1)], pads=[2**40, 0, 0, 0])),
         2, "over 2\\^40"),
    Case("kernel-larger-than-input", _save(_one("MaxPool", [1, 1, 4, 4], kernel_shape=[2**40, 1])), 2,
         "negative dimension"),
    # --- shapes that do not fit ---
    Case("unbroadcastable", _save(model([helper.make_node("Add", ["a", "b"], ["y"], name="add")],
                                        [vi("a", [1, 3]), vi("b", [1, 4])], [vi("y", None)])), 2, "Add.*Incompatible"),
    Case("matmul-mismatch", _save(model([helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")],
                                        [vi("a", [2, 3]), vi("b", [4, 5])], [vi("y", None)])), 2,
         "MatMul.*Incompatible"),
    Case("conv-channels", _save(model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
                                      [vi("x", [1, 3, 8, 8])], [vi("y", None)], [weight("w", 4, 5, 3, 3)])), 2,
         "conv.*3 input channels"),
    Case("output-shape-lies", _save(model([_relu()], [vi("x", [1, 3])], [vi("y", [1, 5])])), 2, "differ"),
    # --- graph structure ---
    Case("cycle", _save(model([_relu("b", "a", "r1"), _relu("a", "b", "r2"),
                               helper.make_node("Add", ["x", "b"], ["y"], name="add")],
                              [vi("x", [1])], [vi("y", None)])), 2, "cycle.*'r1'"),
    Case("cycle-behind-a-consumer", _save(model([helper.make_node("Add", ["x", "b"], ["y"], name="add"),
                                                 _relu("a", "b", "r1"), _relu("b", "a", "r2")],
                                                [vi("x", [1])], [vi("y", None)])), 2, "cycle: node 'r[12]'"),
    Case("undefined-input", _save(model([helper.make_node("Add", ["x", "nope"], ["y"], name="add")],
                                        [vi("x", [1])], [vi("y", None)])), 2, "'add'.*reads 'nope'"),
    Case("newline-in-a-name", _save(model([helper.make_node("Add", ["x", "evil\nname\x1b[31m"], ["y"], name="add")],
                                          [vi("x", [1])], [vi("y", None)])), 2, "reads 'evil\\\\nname\\\\x1b"),
    Case("unsorted", _save(model([_relu("a", "y", "second"), _relu("x", "a", "first")],
                                 [vi("x", [1])], [vi("y", None)])), 0, "not in topological order.*sorted"),
    Case("produced-twice", _save(model([_relu("x", "y", "r1"), _relu("x", "y", "r2")],
                                       [vi("x", [1])], [vi("y", None)])), 2, "produced twice"),
    Case("output-never-produced", _save(model([_relu()], [vi("x", [1])], [vi("y", None), vi("z", [1])])), 2,
         "output 'z'"),
    Case("unknown-onnx-op", _save(model([helper.make_node("NotAnOp", ["x"], ["y"], name="bad")],
                                        [vi("x", [1])], [vi("y", [1])])), 2, "NotAnOp"),
    Case("no-opset", _save(_no_opset()), 2, "opset"),
    Case("negative-opset", _save(model([_relu()], [vi("x", [1, 4])], [vi("y", None)], opset=-3)), 2, "Relu.*-3"),
    Case("empty-op-type", _save(_one("", [1, 4])), 2, "op_type"),
    Case("zero-strides", _save(_one("Conv", [1, 1, 4, 4], [weight("w", 1, 1, 1, 1)], strides=[0, 0])), 2,
         "strides must only contain positive"),
    Case("ir-version-0", _save(_ir(0)), 2, "ir_version"),
    # --- valid but odd: loads, and says what it assumed ---
    Case("chain-3000", _save(_chain(3000)), 0, ""),
    Case("data-dependent-dims", _save(_nonzero()), 0, "assumed to be 1"),
    Case("nan-weights", _save(_nan_weights()), 0, "'w' hold NaN or infinity"),
    Case("future-opset", _save(model([_relu()], [vi("x", [1, 4])], [vi("y", None)], opset=40)), 0, "opset 40"),
    Case("future-ir", _save(_ir(99)), 0, "IR version 99"),
    Case("custom-op", _save(model([_relu("x", "r"), helper.make_node("Fancy", ["r"], ["y"], name="fancy",
                                                                     domain="my.ops")],
                                  [vi("x", [1, 16])], [vi("y", [1, 16])], domains=["my.ops"])), 0,
         "'Fancy'.*no cost rule"),
    Case("custom-op-makes-the-output", _save(_one("Fancy", [1, 4], domain="my.ops")), 0, "no inferable shape.*'y'"),
    Case("dynamic-batch", _save(model([_relu()], [vi("x", ["N", 4])], [vi("y", None)])), 0, "batch.*assumed to be 1"),
    Case("zero-size-dim", _save(model([_relu()], [vi("x", [0, 4])], [vi("y", None)])), 0, ""),
]
