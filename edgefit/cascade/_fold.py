"""A tier's calibrator, as the app will run it: folded into the ONNX graph, or a JSON sidecar
beside it.

The cascade routes on *calibrated* confidence, so the number the app compares with a tier's
threshold must be the very number edgefit measured. :func:`calibrator_confidence` is the one
reference implementation (numpy, float64) that calibration, threshold search and the checks here
all read;
:func:`fold_calibrator` writes a copy of the model whose extra output ``confidence`` computes the
same number inside the graph, so the app needs no code of its own. Where a graph cannot be folded
(the first output is not ``(N, classes)``, the weights live in external data, …)
:func:`write_sidecar` writes the calibrator as JSON and :func:`apply_sidecar` is the numpy an app
author can check their port against.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgefit._io import to_json, write_atomic
from edgefit._lazy import lazy_import
from edgefit.cascade._types import Calibrator
from edgefit.errors import EdgefitError

if TYPE_CHECKING:  # onnx loads when a calibrator is folded into a model
    import onnx

    from edgefit.graph import _read, _validate
else:
    onnx = lazy_import("onnx")
    _read, _validate = lazy_import("edgefit.graph._read", "edgefit.graph._validate")

SIDECAR_SCHEMA_ID = "edgefit-calibrator/1"
CONFIDENCE = "confidence"
CALIBRATED_PROBABILITIES = "calibrated_probabilities"
_MIN_OPSET = 7  # Less/Div with numpy broadcasting


class CannotFold(EdgefitError):
    """The calibrator cannot be folded into this graph; ``what`` says why. The caller writes a
    sidecar."""


def check_calibrator(calibrator: Calibrator) -> None:
    """Refuse a calibrator whose confidence would be undefined (a bad temperature, unusable knots),
    so the reference and the folded graph never disagree on garbage."""
    where = f"calibrator ({calibrator.method})"
    if calibrator.method not in ("temperature", "isotonic", "none"):
        raise EdgefitError(
            f"unknown calibration method {calibrator.method!r}",
            where=where,
            fix="use temperature, isotonic or none",
        )
    if calibrator.output_kind not in ("logits", "probabilities"):
        raise EdgefitError(
            f"unknown output kind {calibrator.output_kind!r}",
            where=where,
            fix="use logits or probabilities",
        )
    if calibrator.method == "temperature":
        t = calibrator.temperature
        if not (math.isfinite(t) and t > 0):
            raise EdgefitError(
                f"temperature {t} is not a positive finite number",
                where=where,
                fix="refit the temperature",
            )
    if calibrator.method == "isotonic":
        xs, ys = np.asarray(calibrator.knots_x, float), np.asarray(calibrator.knots_y, float)
        if xs.size == 0 or xs.size != ys.size:
            raise EdgefitError(
                f"isotonic calibrator has {xs.size} knots_x and {ys.size} knots_y",
                where=where,
                fix="give one knots_y per knots_x, at least one",
            )
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys)) and np.all(np.diff(xs) > 0)):
            raise EdgefitError(
                "isotonic knots must be finite with strictly increasing knots_x",
                where=where,
                fix="refit (scikit-learn's X_thresholds_ / y_thresholds_)",
            )


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)  # max-subtraction: no overflow for large logits
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _as_rows(outputs: Any) -> np.ndarray:
    x = np.asarray(outputs, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 1:
        raise EdgefitError(
            f"model outputs have shape {x.shape}, calibration reads (N, classes)",
            where="outputs",
            fix="pass the first output of the model, one row per request",
        )
    return x


def calibrated_probabilities(outputs: Any, calibrator: Calibrator) -> np.ndarray:
    """Class probabilities after calibration, shape (N, classes), float64. Temperature scaling
    changes them; isotonic and none leave the softmax (or the given probabilities) as they are."""
    check_calibrator(calibrator)
    x = _as_rows(outputs)
    if calibrator.method == "temperature":
        with np.errstate(divide="ignore"):  # log(0) = -inf is a zero probability, as in the graph
            z = x if calibrator.output_kind == "logits" else np.log(x)
        return _softmax(z / calibrator.temperature)
    return _softmax(x) if calibrator.output_kind == "logits" else x


def calibrator_confidence(outputs: Any, calibrator: Calibrator) -> np.ndarray:
    """The calibrated top-1 confidence of each row of ``outputs`` (N, classes): float64, shape
    (N,).

    This is the number a tier's threshold is compared with. Everything that needs it calls this one
    function; the folded graph and the sidecar are tested against it.

    >>> calibrator_confidence([[2.0, 0.0]], Calibrator("temperature", "logits", temperature=2.0))
    array([0.73105858])
    """
    top = calibrated_probabilities(outputs, calibrator).max(axis=1)
    if calibrator.method == "isotonic":
        return np.interp(top, calibrator.knots_x, calibrator.knots_y)
    return top


def describe(calibrator: Calibrator) -> str:
    """The calibrated confidence in words, for the sidecar, the cascade config and the model
    card."""
    top = (
        "the largest softmax probability of the logits"
        if calibrator.output_kind == "logits"
        else "the largest of the given probabilities"
    )
    if calibrator.method == "temperature":
        z = "logits" if calibrator.output_kind == "logits" else "log(probabilities)"
        return f"max(softmax({z} / {calibrator.temperature:.6g}))"
    if calibrator.method == "isotonic":
        return (
            f"{top}, mapped through the piecewise-linear interpolation of "
            f"({len(calibrator.knots_x)} "
            "knots_x, knots_y), clipped to the end knots (numpy.interp)"
        )
    return top


def write_sidecar(calibrator: Calibrator, path: str | Path, *, reason: str | None = None) -> Path:
    """Write the calibrator as JSON (schema ``edgefit-calibrator/1``) for an app that applies it
    itself; ``reason`` records why it was not folded into the graph.

    >>> cal = Calibrator("temperature", "logits", temperature=1.7)
    >>> write_sidecar(cal, "tier1.calibrator.json")  # doctest: +SKIP
    """
    check_calibrator(calibrator)
    doc = {
        "schema": SIDECAR_SCHEMA_ID,
        **calibrator.to_dict(),
        "reads": "the model's first output, (N, classes)",
        "confidence": describe(calibrator),
        "not_folded_because": reason,
    }
    return write_atomic(path, to_json(doc) + "\n")


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """Read a sidecar written by :func:`write_sidecar`; a wrong file is one line."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EdgefitError(
            f"cannot read calibrator sidecar {path} ({type(exc).__name__})",
            where="sidecar",
            fix="pass the .calibrator.json edgefit cascade wrote",
        ) from None
    return doc


def apply_sidecar(outputs: Any, sidecar: dict[str, Any]) -> np.ndarray:
    """The calibrated confidence per row of ``outputs`` (N, classes) under a sidecar's calibrator:
    the numpy an app author checks a port against (it is :func:`calibrator_confidence`).

    >>> apply_sidecar([[2.0, 0.0]], {"schema": "edgefit-calibrator/1", "method": "none",
    ...                              "output_kind": "logits"}).round(4)
    array([0.8808])
    """
    found = sidecar.get("schema") if isinstance(sidecar, dict) else None
    if found != SIDECAR_SCHEMA_ID:
        raise EdgefitError(
            f"sidecar has schema {found!r}, this edgefit reads {SIDECAR_SCHEMA_ID!r}",
            where="sidecar.schema",
            fix="pass the .calibrator.json edgefit cascade wrote",
        )
    try:
        calibrator = Calibrator.from_dict(sidecar)
    except (KeyError, TypeError, ValueError) as exc:
        raise EdgefitError(
            f"sidecar is missing or garbles a calibrator field ({exc})",
            where="sidecar",
            fix="pass the .calibrator.json edgefit cascade wrote",
        ) from None
    return calibrator_confidence(outputs, calibrator)


def fold_calibrator(model_in: str | Path, calibrator: Calibrator, model_out: str | Path) -> Path:
    """Write a copy of ``model_in`` whose graph also outputs the calibrated confidence; returns
    ``model_out``.

    The first output is kept unchanged; ``confidence`` (float32, (N,)) is added, and for
    temperature scaling ``calibrated_probabilities`` (float32, (N, classes)) too. The graph
    computes in float32, so it matches :func:`calibrator_confidence` to float32 rounding times the
    steepest isotonic segment. Raises :class:`CannotFold` (the caller writes a sidecar) when the
    graph cannot take it.

    >>> fold_calibrator("tier1.onnx", Calibrator("temperature", "logits", temperature=1.7),
    ...                 "tier1.calibrated.onnx")  # doctest: +SKIP
    PosixPath('tier1.calibrated.onnx')
    """
    check_calibrator(calibrator)
    model = _load(Path(model_in))
    problem = fold_problem(model)
    if problem:
        raise CannotFold(
            problem, where=f"MODEL {model_in}", fix="apply the calibrator from its JSON sidecar"
        )
    _Folder(model).fold(calibrator)
    return write_atomic(model_out, model.SerializeToString())


def fold_or_sidecar(
    model_in: str | Path, calibrator: Calibrator, model_out: str | Path, sidecar_out: str | Path
) -> tuple[Path | None, Path | None]:
    """Fold where the graph allows, else write the sidecar: (calibrated model, sidecar), one of
    them None — the values of ``TierResult.calibrated_model`` and
    ``TierResult.calibrator_sidecar``."""
    try:
        return fold_calibrator(model_in, calibrator, model_out), None
    except CannotFold as exc:
        return None, write_sidecar(calibrator, sidecar_out, reason=exc.what)


def _load(path: Path):
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception:
        _read.read_onnx(path)  # raises the loader's one line (missing, empty, truncated, not ONNX)
        raise EdgefitError(
            f"{path} is not a readable ONNX model", where="MODEL", fix="re-export the model"
        ) from None


def fold_problem(model) -> str | None:
    """Why the calibrator cannot be folded into ``model`` (an ``onnx.ModelProto``), or None when it
    can."""
    external = onnx.TensorProto.EXTERNAL
    if any(t.data_location == external for _, t in _validate.iter_tensors(model.graph)):
        return "the model keeps weights in external data; a folded copy would have to rewrite them"
    if not model.graph.output:
        return "the model has no outputs"
    out = model.graph.output[0]
    tt = out.type.tensor_type if out.type.HasField("tensor_type") else None
    if tt is None or not tt.HasField("shape") or len(tt.shape.dim) != 2:
        rank = "unknown" if tt is None or not tt.HasField("shape") else len(tt.shape.dim)
        return f"the first output {out.name!r} has rank {rank}, not (N, classes)"
    if tt.elem_type not in _float_types():
        return (
            f"the first output {out.name!r} is "
            f"{onnx.TensorProto.DataType.Name(tt.elem_type)}, "
            "not a float"
        )
    opset = _default_opset(model)
    if opset is None or opset < _MIN_OPSET or model.ir_version < 4:
        return (
            f"the model's opset ({opset}, IR {model.ir_version}) is older than opset "
            f"{_MIN_OPSET} / IR 4"
        )
    taken = _names(model.graph) & {CONFIDENCE, CALIBRATED_PROBABILITIES}
    if taken:
        return f"the model already has a value named {sorted(taken)[0]!r}"
    return None


def _default_opset(model) -> int | None:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return versions[0] if versions else None


def _names(graph) -> set[str]:
    names = {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
    names |= {i.name for i in graph.initializer}
    for node in graph.node:
        names.update(node.output)
        names.add(node.name)
    return names


def _float_types() -> frozenset[int]:
    return frozenset(
        {
            onnx.TensorProto.FLOAT,
            onnx.TensorProto.FLOAT16,
            onnx.TensorProto.DOUBLE,
            onnx.TensorProto.BFLOAT16,
        }
    )


class _Folder:
    """Appends the calibrator's nodes to a graph; reductions follow the model's opset (``axes``
    became an input of ReduceSum at opset 13 and of ReduceMax at 18), so the model's own opset
    import is kept."""

    PREFIX = "edgefit_calibrator/"

    def __init__(self, model) -> None:
        self.graph = model.graph
        opset = _default_opset(model)
        assert opset is not None  # fold_calibrator checks fold_problem(model) first
        self.opset: int = opset
        self.taken = _names(model.graph)

    def _name(self, stem: str) -> str:
        name = self.PREFIX + stem
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name

    def const(self, stem: str, values: Any, dtype: Any) -> str:
        name = self._name(stem)
        self.graph.initializer.append(
            onnx.numpy_helper.from_array(np.asarray(values, dtype=dtype), name)
        )
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        output = output or self._name(op.lower())
        self.graph.node.append(
            onnx.helper.make_node(op, inputs, [output], name=self._name(op), **attrs)
        )
        return output

    def reduce(self, op: str, x: str, *, keepdims: int, output: str | None = None) -> str:
        axes_as_input = self.opset >= (18 if op == "ReduceMax" else 13)
        if axes_as_input:
            return self.node(
                op, [x, self.const("axis1", [1], np.int64)], output, keepdims=keepdims
            )
        return self.node(op, [x], output, axes=[1], keepdims=keepdims)

    def fold(self, calibrator: Calibrator) -> None:
        first = self.graph.output[0]
        x = first.name
        if first.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            x = self.node("Cast", [x], to=onnx.TensorProto.FLOAT)
        if calibrator.method == "temperature":
            z = x if calibrator.output_kind == "logits" else self.node("Log", [x])
            scaled = self.node(
                "Div", [z, self.const("temperature", calibrator.temperature, np.float32)]
            )
            probs = self.node("Softmax", [scaled], CALIBRATED_PROBABILITIES, axis=1)
            self._add_output(
                CALIBRATED_PROBABILITIES, [d for d in first.type.tensor_type.shape.dim]
            )
        else:
            probs = self.node("Softmax", [x], axis=1) if calibrator.output_kind == "logits" else x
        if calibrator.method == "isotonic":
            self._isotonic(probs, calibrator)
        else:
            self.reduce("ReduceMax", probs, keepdims=0, output=CONFIDENCE)
        self._add_output(CONFIDENCE, [first.type.tensor_type.shape.dim[0]])

    def _isotonic(self, probs: str, calibrator: Calibrator) -> None:
        """np.interp as a table lookup: i = how many knots lie at or below the confidence (0..K),
        then y = y_lo[i] + slope[i] * (c - x_lo[i]); rows 0 and K have slope 0, which is the clip
        at both ends."""
        xs, ys = (
            np.asarray(calibrator.knots_x, np.float64),
            np.asarray(calibrator.knots_y, np.float64),
        )
        slope = np.concatenate([[0.0], np.diff(ys) / np.diff(xs), [0.0]])
        x_lo = np.concatenate([[xs[0]], xs])
        y_lo = np.concatenate([[ys[0]], ys])
        top_col = self.reduce("ReduceMax", probs, keepdims=1)  # (N, 1)
        top = self.node("Reshape", [top_col, self.const("flat", [-1], np.int64)])  # (N,)
        below = self.node(
            "Less", [top_col, self.const("knots_x", xs, np.float32)]
        )  # (N, K): c < x_k
        n_below = self.reduce(
            "ReduceSum", self.node("Cast", [below], to=onnx.TensorProto.INT64), keepdims=0
        )
        index = self.node("Sub", [self.const("n_knots", len(xs), np.int64), n_below])

        def table(stem: str, values: np.ndarray) -> str:
            return self.node("Gather", [self.const(stem, values, np.float32), index], axis=0)

        offset = self.node("Sub", [top, table("x_lo", x_lo)])
        rise = self.node("Mul", [table("slope", slope), offset])
        self.node("Add", [table("y_lo", y_lo), rise], CONFIDENCE)

    def _add_output(self, name: str, dims: list) -> None:
        vi = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        for d in dims:
            vi.type.tensor_type.shape.dim.add().CopyFrom(d)
        self.graph.output.append(vi)
