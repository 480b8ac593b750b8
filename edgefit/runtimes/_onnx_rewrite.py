"""ONNX graph rewrites that the runtimes' converters need: ``Gemm`` → ``MatMul`` (+ ``Add``).

onnxruntime's dynamic quantizer and ``MatMulNBitsQuantizer`` handle MatMul only, and the
ONNX→torch rebuild marks only MatMul weights as linear for torchao, while a ``torch.nn.Linear``
exports as Gemm. The rewrite lives here, below the passes, so the torch runtime and the quantize
pass share it without the runtimes importing the passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import

if TYPE_CHECKING:
    from onnx import helper, numpy_helper
else:
    helper, numpy_helper = lazy_import("onnx.helper", "onnx.numpy_helper")


def _attr(node, name: str, default: Any) -> Any:
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def gemm_to_matmul(model) -> int:
    """Rewrite every ``Gemm`` with a constant weight, ``alpha = beta = 1`` and no ``transA`` as
    ``MatMul`` (+ ``Add`` for the bias), in place; returns how many were rewritten.

    onnxruntime's dynamic quantizer and ``MatMulNBitsQuantizer`` handle MatMul only, while a
    ``torch.nn.Linear`` exports as Gemm. The MatMul keeps the Gemm's name (``keep_float`` still
    applies).
    """
    inits = {i.name: i for i in model.graph.initializer}
    new_nodes, count, replaced = [], 0, set()
    for node in model.graph.node:
        ok = (
            node.op_type == "Gemm"
            and node.input[1] in inits
            and _attr(node, "alpha", 1.0) == 1.0
            and _attr(node, "beta", 1.0) == 1.0
            and not _attr(node, "transA", 0)
        )
        if not ok:
            new_nodes.append(node)
            continue
        weight = node.input[1]
        if _attr(node, "transB", 0):
            transposed = numpy_helper.to_array(inits[weight]).T.copy()
            replaced.add(weight)  # the untransposed original goes unless something else reads it
            weight = f"{weight}_T_{count}"
            model.graph.initializer.append(numpy_helper.from_array(transposed, weight))
        has_bias = len(node.input) > 2 and node.input[2]
        mm_out = f"{node.output[0]}_matmul" if has_bias else node.output[0]
        new_nodes.append(
            helper.make_node("MatMul", [node.input[0], weight], [mm_out], name=node.name)
        )
        if has_bias:
            new_nodes.append(
                helper.make_node(
                    "Add", [mm_out, node.input[2]], [node.output[0]], name=f"{node.name}_bias"
                )
            )
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)
    used = {name for n in model.graph.node for name in n.input} | {
        o.name for o in model.graph.output
    }
    kept = [i for i in model.graph.initializer if i.name in used or i.name not in replaced]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return count
