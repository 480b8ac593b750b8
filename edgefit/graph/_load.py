"""Load a model (ONNX file, ONNX proto, torch module or built-in example) into a :class:`Graph`."""

from __future__ import annotations

import copy
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from edgefit.errors import EdgefitError
from edgefit.graph import _validate as v
from edgefit.graph._build import Graph, build_graph

# onnxruntime 1.31 reads IR ≤ 13 while onnx 1.23 writes 14 by default
MAX_IR_VERSION = 10
# protobuf cannot hold more, and onnx's checker and shape inference work on one in-memory proto
MAX_MODEL_BYTES = 2**31 - 1
# initializers up to this size stay in the model onnx's shape inference sees (shape and axis
# constants)
_KEEP_INITIALIZER_BYTES = 4096

# (offset, magic, what the file is): formats people save under .onnx by mistake; checked before
# parsing
_MAGIC = [
    (0, b"\x80\x02", "a Python pickle (a PyTorch/scikit-learn checkpoint?)"),
    (0, b"\x80\x03", "a Python pickle (a PyTorch/scikit-learn checkpoint?)"),
    (0, b"\x80\x04", "a Python pickle (a PyTorch/scikit-learn checkpoint?)"),
    (0, b"\x80\x05", "a Python pickle (a PyTorch/scikit-learn checkpoint?)"),
    (0, b"PK\x03\x04", "a ZIP archive (a PyTorch .pt checkpoint is one)"),
    (0, b"PK\x05\x06", "an empty ZIP archive"),
    (0, b"\x89PNG", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF8", "a GIF image"),
    (0, b"%PDF", "a PDF document"),
    (0, b"\x1f\x8b", "a gzip archive"),
    (0, b"\x7fELF", "an executable"),
    (0, b"\x89HDF", "an HDF5 file (a Keras .h5 model?)"),
    (0, b"\x93NUMPY", "a NumPy array"),
    (4, b"TFL3", "a TensorFlow Lite model"),
    (0, b"\xff\xfe", "a UTF-16 text file"),
    (0, b"\xfe\xff", "a UTF-16 text file"),
]

InputShape = str | tuple[int, ...] | list[int] | dict[str, tuple[int, ...]] | None


def parse_input_shape(spec: InputShape) -> dict[str, tuple[int, ...]] | tuple[int, ...] | None:
    """``"1x3x224x224"``, ``"1,3,224,224"``, ``"x:1x3x224x224;y:1x10"`` or a tuple/dict → shapes.

    >>> parse_input_shape("input:1x3x32x32")
    {'input': (1, 3, 32, 32)}
    >>> parse_input_shape("1,3,32,32")
    (1, 3, 32, 32)
    """
    if spec is None or isinstance(spec, dict):
        return spec
    if isinstance(spec, (tuple, list)):
        return tuple(int(d) for d in spec)
    named: dict[str, tuple[int, ...]] = {}
    plain: tuple[int, ...] | None = None
    for part in filter(None, (p.strip() for p in re.split(r"[;\s]+", str(spec)))):
        name, _, dims = part.rpartition(":")
        try:
            shape = tuple(int(d) for d in re.split(r"[x,×]", dims) if d)
        except ValueError:
            shape = ()
        if not shape or any(d <= 0 for d in shape):
            raise EdgefitError(
                f"cannot read input shape '{part}'",
                where="--input-shape",
                fix="write it like 1x3x224x224, or name:1x3x224x224 for several inputs",
            )
        if name:
            named[name] = shape
        else:
            plain = shape
    return named or plain


@v.one_line_errors
def read_onnx(path: str | Path):
    """Read an ONNX file with one clear error for missing, empty, truncated, oversized or non-ONNX
    files.

    The file is parsed without its external data; that data is read only from files inside the
    model's folder (:func:`load_external_data`), after their sizes are checked against the tensors.
    """
    import onnx

    path = Path(path)
    if not path.exists():
        raise EdgefitError(f"model file not found: {path}", where="MODEL", fix="check the path")
    if path.is_dir():
        raise EdgefitError(
            f"{path} is a directory, not a model file", where="MODEL", fix="pass an .onnx file"
        )
    size = path.stat().st_size
    if size == 0:
        raise EdgefitError(
            f"model file is empty: {path}", where="MODEL", fix="re-export the model"
        )
    check_file(path, size)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError, or others on garbage
        raise EdgefitError(
            f"{path} is not a readable ONNX model ({type(exc).__name__}); the file is truncated "
            "or not ONNX",
            where="MODEL",
            fix="re-export it with torch.onnx.export or pass a valid .onnx file",
        ) from None
    if not model.graph.node:
        raise EdgefitError(
            f"{path} holds no graph nodes; it is not an ONNX model or is truncated",
            where="MODEL",
            fix="re-export the model",
        )
    load_external_data(model, path.parent, str(path))
    return model


def _fix_input_shapes(model, input_shape, notes: list[str]):

    shapes = parse_input_shape(input_shape)
    initializers = {i.name for i in model.graph.initializer}
    real_inputs = [i for i in model.graph.input if i.name not in initializers]
    if isinstance(shapes, tuple):
        if len(real_inputs) != 1:
            names = ", ".join(i.name for i in real_inputs)
            raise EdgefitError(
                f"the model has {len(real_inputs)} inputs ({names}); a plain shape is ambiguous",
                where="--input-shape",
                fix="name each input: name:1x3x224x224;other:1x10",
            )
        shapes = {real_inputs[0].name: shapes}
    shapes = shapes or {}
    unknown = set(shapes) - {i.name for i in real_inputs}
    if unknown:
        raise EdgefitError(
            f"the model has no input named {sorted(unknown)}",
            where="--input-shape",
            fix=f"inputs are: {', '.join(i.name for i in real_inputs)}",
        )
    for vi in real_inputs:
        dims = vi.type.tensor_type.shape.dim
        if vi.name in shapes:
            wanted = shapes[vi.name]
            if len(wanted) != len(dims):
                raise EdgefitError(
                    f"input '{vi.name}' has rank {len(dims)}, the shape given has {len(wanted)}",
                    where="--input-shape",
                    fix="give one size per dimension",
                )
            for d, size in zip(dims, wanted):
                if d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != size:
                    raise EdgefitError(
                        f"input '{vi.name}' has fixed size {d.dim_value}, not {size}",
                        where="--input-shape",
                        fix="match the model's fixed dimensions",
                    )
                d.Clear()
                d.dim_value = size
            continue
        dynamic = [
            i for i, d in enumerate(dims) if not (d.HasField("dim_value") and d.dim_value >= 0)
        ]
        if dynamic == [0]:
            dims[0].Clear()
            dims[0].dim_value = 1
            notes.append(f"input '{vi.name}': dynamic batch dimension assumed to be 1")
        elif dynamic:
            shape = "x".join(
                str(d.dim_value) if d.HasField("dim_value") and d.dim_value >= 0 else "?"
                for d in dims
            )
            raise EdgefitError(
                f"input '{vi.name}' has dynamic dimensions ({shape})",
                where="MODEL",
                fix=f"pass --input-shape {vi.name}:{shape.replace('?', 'N')} with sizes",
            )
    del model.graph.value_info[:]
    return model


@v.one_line_errors
def load_graph(model: Any, input_shape: InputShape = None, *, source: str | None = None) -> Graph:
    """Load ``model`` — a path to an .onnx file, an ``onnx.ModelProto`` or a ``torch.nn.Module`` —
    into a Graph.

    Torch modules are exported with ``torch.onnx.export`` and need ``input_shape``. Dynamic
    dimensions are fixed from ``input_shape``; a dynamic batch alone is assumed to be 1 (and
    noted).

    Every model is validated before anything is counted (:mod:`edgefit.graph._validate`): a broken
    one (cycle, undefined input, a tensor whose data does not match its shape, unbroadcastable
    shapes, absurd dimensions) raises :class:`EdgefitError` naming the node or tensor; a valid but
    odd one (unknown dims, NaN weights, a newer opset, custom ops) loads, and ``Graph.warnings``
    say what was assumed.

    >>> g = load_graph("resnet18.onnx")  # doctest: +SKIP
    """
    import onnx

    notes: list[str] = []
    if isinstance(model, (str, Path)):
        source = source or str(model)
        proto = read_onnx(model)
    elif isinstance(model, onnx.ModelProto):
        source = source or (model.graph.name or "onnx model")
        proto = copy.deepcopy(model)
    elif _is_torch_module(model):
        from edgefit.graph._torch import export_torch

        shape = parse_input_shape(input_shape)
        if not isinstance(shape, tuple):
            raise EdgefitError(
                "a torch module needs one input shape to export",
                where="--input-shape",
                fix="pass --input-shape 1x3x224x224",
            )
        source = source or f"torch:{type(model).__name__}"
        proto = export_torch(model, shape)
        input_shape = None
    else:
        raise EdgefitError(
            f"cannot load a model of type {type(model).__name__}",
            where="MODEL",
            fix="pass an .onnx path, an onnx.ModelProto or a torch.nn.Module",
        )
    return validated_graph(
        proto, source, notes, lambda m: _fix_input_shapes(m, input_shape, notes)
    )


def _is_torch_module(obj: Any) -> bool:
    return any(
        c.__module__.startswith("torch") and c.__name__ == "Module" for c in type(obj).__mro__
    )


def check_file(path: Path, size: int) -> None:
    """Refuse an oversized file, or a file of a known other format, before protobuf parses it.

    A pickle is named as such and never opened: unpickling runs arbitrary code.
    """
    if size > MAX_MODEL_BYTES:
        raise EdgefitError(
            f"{path} is {size / 2**30:.1f} GiB; edgefit reads models up to 2 GiB in one file",
            where="MODEL",
            fix="save the weights as external data (onnx.save_model(..., "
            "save_as_external_data=True))",
        )
    with open(path, "rb") as f:
        head = f.read(1024)
    kind = next((what for at, magic, what in _MAGIC if head[at : at + len(magic)] == magic), None)
    if kind is None and _is_text(head):
        kind = "a text file (YAML, JSON or similar)"
    if kind:
        raise EdgefitError(
            f"{path} is {kind}, not an ONNX model",
            where="MODEL",
            fix="pass an .onnx file (export with torch.onnx.export; edgefit never unpickles "
            "files)",
        )


def _is_text(head: bytes) -> bool:
    """All printable UTF-8: an ONNX protobuf starts with a control byte (field tags 0x08, 0x12
    …)."""
    for cut in range(4):  # the 1024-byte window may split a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    else:
        return False
    return bool(text) and all(c.isprintable() or c in "\t\r\n" for c in text)


def _external_tensors(model) -> list:
    import onnx

    return [
        (what, t)
        for what, t in v.iter_tensors(model.graph)
        if t.data_location == onnx.TensorProto.EXTERNAL
    ]


def load_external_data(model, folder: Path, source: str) -> None:
    """Read external tensor data, only from files inside ``folder``, each sized against its tensor
    first.

    onnx's own loader would follow any path the file names; a hostile model could point at
    ``/etc/passwd`` or ``../../secrets``. Absolute paths, ``..`` and symlinks leaving the folder
    are refused.
    """
    import onnx

    tensors = _external_tensors(model)
    if not tensors:
        return
    root = folder.resolve()
    total = model.ByteSize()
    plan = []
    for what, t in tensors:
        v.check_dims(list(t.dims), what, source)
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")

        def refuse(why: str, what=what, loc=loc) -> EdgefitError:
            return EdgefitError(
                f"{what} keeps its data in '{loc}', {why}",
                where=f"MODEL {source}",
                fix="keep external data files beside the .onnx file, named relatively",
            )

        if (
            not loc
            or PurePosixPath(loc).is_absolute()
            or PureWindowsPath(loc).is_absolute()
            or ".." in PurePosixPath(loc.replace("\\", "/")).parts
        ):
            raise refuse(
                "a path outside the model's folder (absolute or with '..'); edgefit does not read "
                "it"
            )
        file = (folder / loc).resolve()
        if not file.is_relative_to(root):
            raise refuse("which resolves outside the model's folder; edgefit does not read it")
        if not file.is_file():
            raise refuse("which does not exist beside the model")
        try:
            offset = int(info.get("offset") or 0)
            length = int(info["length"]) if info.get("length") else file.stat().st_size - offset
        except ValueError:
            raise refuse("with an offset or length that is not a number") from None
        want = v.tensor_nbytes(t)
        if want is None or offset < 0 or length != want or offset + length > file.stat().st_size:
            raise refuse(
                f"but its shape {list(t.dims)} needs {want} bytes and the file holds "
                f"{max(0, min(length, file.stat().st_size - offset))} at offset {offset}"
            )
        total += length
        plan.append((t, file, offset, length))
    if total > MAX_MODEL_BYTES:
        raise EdgefitError(
            f"the model and its external data hold {total / 2**30:.1f} GiB; edgefit reads models "
            "up to 2 GiB",
            where=f"MODEL {source}",
            fix="count a smaller export of the model",
        )
    for t, file, offset, length in plan:
        with open(file, "rb") as f:
            f.seek(offset)
            t.raw_data = f.read(length)
        t.data_location = onnx.TensorProto.DEFAULT
        del t.external_data[:]


def validated_graph(proto, source: str, notes: list[str], fix_inputs) -> Graph:
    """Validate ``proto`` (the loader's own copy), infer shapes strictly, check, count, bound the
    counts.

    The pure-Python checks run first so nothing hostile reaches onnx's C++ code; the checker runs
    on the inferred model because ONNX requires shaped graph outputs, which inference fills in.
    """

    external = _external_tensors(proto)
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
    except (
        Exception
    ) as exc:  # InferenceError, ValidationError, or a C++ error surfacing as another type
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
    import onnx

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
