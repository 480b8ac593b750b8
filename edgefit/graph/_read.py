"""Read an ONNX file safely: refuse what is not ONNX before protobuf parses it, and read external
tensor data only from files inside the model's folder, each sized against its tensor first.

A model file is untrusted input. A pickle (a PyTorch checkpoint saved as .onnx) is named and never
opened, since unpickling runs code; a file over protobuf's 2 GiB limit is refused before it is read
into memory; an external-data path that leaves the model's folder is refused instead of followed.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

import onnx

from edgefit.errors import EdgefitError
from edgefit.graph import _validate as v

# protobuf cannot hold more, and onnx's checker and shape inference work on one in-memory proto
MAX_MODEL_BYTES = 2**31 - 1

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


@v.one_line_errors
def read_onnx(path: str | Path):
    """Read an ONNX file with one clear error for missing, empty, truncated, oversized or non-ONNX
    files.

    The file is parsed without its external data; that data is read only from files inside the
    model's folder (:func:`load_external_data`), after their sizes are checked against the tensors.
    """
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


def external_tensors(model) -> list:
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
    tensors = external_tensors(model)
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


def path_or_example(model: object, verb: str, accepts: str) -> tuple[Path | None, str]:
    """``(path, "")`` when ``model`` names a file, ``(None, name)`` when it is an example name:
    a string with no suffix and no folder that is not a file. ``verb`` and ``accepts`` word the
    one-line error for anything else (``cannot {verb} a list``; ``pass {accepts}``).

    >>> path_or_example("model.onnx", "check", "x"), path_or_example("ds-cnn-kws", "check", "x")
    ((PosixPath('model.onnx'), ''), (None, 'ds-cnn-kws'))
    """
    if model is None:
        raise EdgefitError(
            "no model given", where="MODEL", fix="pass an .onnx file or --example NAME"
        )
    if not isinstance(model, str | os.PathLike):
        raise EdgefitError(
            f"cannot {verb} a {type(model).__name__}", where="MODEL", fix=f"pass {accepts}"
        )
    if (
        not isinstance(model, str)
        or Path(model).is_file()
        or Path(model).suffix
        or os.sep in model
    ):
        return Path(model), ""
    return None, model
