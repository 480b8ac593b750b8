"""From a parsed ONNX proto to a counted :class:`Graph`: the pure-Python checks first, then strict
shape inference and onnx's full checker, then the per-layer counts, each bounded.

The order is the safety argument: the pure-Python checks of :mod:`._validate` stop anything hostile
(absurd dimensions, data that does not match its shape) before it reaches onnx's C++ code.
"""

from __future__ import annotations

import copy

import onnx

from edgefit.errors import EdgefitError
from edgefit.graph import _validate as v
from edgefit.graph._build import Graph, build_graph
from edgefit.graph._read import external_tensors

# initializers up to this size stay in the model onnx's shape inference sees (shape and axis
# constants)
_KEEP_INITIALIZER_BYTES = 4096


def validated_graph(proto, source: str, notes: list[str], fix_inputs) -> Graph:
    """Validate ``proto`` (the loader's own copy), infer shapes strictly, check, count, bound the
    counts.

    The pure-Python checks run first so nothing hostile reaches onnx's C++ code; the checker runs
    on the inferred model because ONNX requires shaped graph outputs, which inference fills in.
    """

    external = external_tensors(proto)
    if external:
        what = external[0][0]
        raise EdgefitError(
            f"{what} keeps its data in an external file, which an in-memory model cannot locate",
            where=f"MODEL {source}",
            fix="pass the .onnx file's path instead of the loaded model",
        )
    warnings = v.version_warnings(proto)
    order = v.check_structure(proto.graph, source)
    if order is not None:
        v.reorder(proto.graph, order)
        warnings.append(
            "the nodes were not in topological order (ONNX requires it); counted in a sorted order"
        )
    v.check_tensors(proto, source)
    v.check_value_dims(proto, source, inputs=False)
    model = fix_inputs(proto)
    v.check_value_dims(model, source)  # the inputs as fixed, before C++ multiplies them
    try:
        inferred = _infer_and_check(model)
    except Exception as exc:  # InferenceError, ValidationError, or a C++ error as another type
        raise EdgefitError(
            f"the model is invalid: {_onnx_reason(exc)}",
            where=f"MODEL {source}",
            fix="check the shapes and ops (onnx.checker.check_model(model, full_check=True))",
        ) from None
    v.check_value_dims(inferred, source)
    v.check_conv_channels(inferred, source)
    warnings += v.nonfinite_warnings(inferred)
    counted = _assume_unknown_dims(inferred, warnings)
    graph = build_graph(counted, source=source, notes=notes)
    graph.model = inferred
    graph.warnings = [v.one_line(w) for w in warnings + graph.warnings]
    graph.notes = [v.one_line(n) for n in graph.notes]
    v.check_costs(graph.layers, source)
    return graph


def _infer_and_check(model):
    """Strict shape inference (with data propagation) and the full checker, on the model without
    its large weights, whose shapes and types stand in as graph inputs.

    Both onnx calls serialize the whole proto; for a 100 MB model that is most of the load time.
    The weights' data was checked against their shapes already (:func:`check_tensors`); inference
    needs only small constants (shapes, axes), which stay.
    """
    light = onnx.ModelProto()
    light.CopyFrom(model)
    inputs = {i.name for i in light.graph.input}
    kept = []
    for init in light.graph.initializer:
        if init.ByteSize() <= _KEEP_INITIALIZER_BYTES:
            kept.append(init)
        elif init.name not in inputs:
            light.graph.input.append(
                onnx.helper.make_tensor_value_info(init.name, init.data_type, init.dims)
            )
    if len(kept) < len(light.graph.initializer):
        kept = [_copied(k) for k in kept]  # detached before the container is cleared
        del light.graph.initializer[:]
        light.graph.initializer.extend(kept)
        light.ir_version = max(light.ir_version, 4)  # inputs without initializers need IR 4
    inferred = onnx.shape_inference.infer_shapes(light, strict_mode=True, data_prop=True)
    checked = inferred
    if any(_unshaped(o) for o in inferred.graph.output):
        # made by an op onnx cannot infer (a custom domain's): the checker wants a shape field
        # there
        checked = _copied(inferred)
        for out in filter(_unshaped, checked.graph.output):
            out.type.tensor_type.shape.SetInParent()
    onnx.checker.check_model(checked, full_check=True)
    del model.graph.value_info[:]
    model.graph.value_info.extend(inferred.graph.value_info)
    del model.graph.output[:]
    model.graph.output.extend(inferred.graph.output)
    return model


def _onnx_reason(exc: Exception) -> str:
    """onnx's message on one line: its first line plus the node it names, if it says which."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__]
    context = next((ln for ln in lines[1:] if ln.startswith("==> Context")), "")
    text = lines[0] + (f" ({context.removeprefix('==> Context:').strip()})" if context else "")
    return text if len(text) <= 400 else text[:397] + "..."


def _assume_unknown_dims(model, warnings: list[str]):
    """Tensors whose dims inference could not fix (data-dependent shapes) are counted with those
    dims as 1.

    Returns ``model`` untouched when every shape is known, else a copy with the unknown dims set to
    1.
    """
    partial, rankless = v.unknown_dim_tensors(model)
    if rankless:
        warnings.append(
            f"{len(rankless)} tensors have no inferable shape ({v.few(rankless)}); the layers "
            "that make or "
            "read them count no MACs or bytes for them"
        )
    if not partial:
        return model
    warnings.append(
        f"{len(partial)} tensors have unknown (data-dependent or symbolic) dimensions "
        f"({v.few(partial)}); "
        "each unknown dimension is assumed to be 1, so counts are a lower bound"
    )
    counted = copy.deepcopy(model)
    wanted = set(partial)
    for vi in list(counted.graph.value_info) + list(counted.graph.output):
        if vi.name in wanted:
            for d in vi.type.tensor_type.shape.dim:
                if not d.HasField("dim_value"):
                    d.dim_value = 1
    return counted


def _unshaped(value_info) -> bool:
    return value_info.type.HasField("tensor_type") and not value_info.type.tensor_type.HasField(
        "shape"
    )


def _copied(message):
    clone = type(message)()
    clone.CopyFrom(message)
    return clone
