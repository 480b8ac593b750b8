"""The Core ML backend: PyTorch → .mlpackage (ML Program) with coremltools, weights compressed on
request.

Conversion and weight compression run on any OS; prediction only on macOS (coremltools'
``MLModel.predict`` calls Apple's Core ML framework). So on Linux :meth:`CoreML.available` is ok
(convert, compress, save) and :meth:`CoreML.runnable` is not: ``measure``/``infer`` raise
:class:`RuntimeUnavailableError` ("needs macOS", exit 2) and the artifact's parity says it was not
checked.

Precisions: ``fp32`` and ``fp16`` set the ML Program's compute precision; ``int8`` is fp16 compute
with int8 weights (``coremltools.optimize.coreml.linear_quantize_weights``, symmetric, per
channel): W8A16, because activation quantization calibrates by running the model, which needs
macOS. Options add 4-bit per-block weights (``compress="int4"``) or a k-means / uniform palette
(``compress="palettize"``, ``"palettize-uniform"``; k-means needs scikit-learn) to fp32/fp16.

The macOS path (``CoreMLSession``) follows the coremltools documentation but is **not run here**
(no Mac in this project's CI); see the tests for what is verified on Linux.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError, require
from edgefit.runtimes._base import (
    Artifact,
    Availability,
    Inputs,
    Runtime,
    RuntimeUnavailableError,
    Session,
    Timing,
)
from edgefit.runtimes._quiet import captured_output
from edgefit.runtimes._torch_source import as_torch_model, check_calibration, source_parity

if TYPE_CHECKING:
    import coremltools.optimize.coreml as cto
    import numpy as np
    import torch
else:
    # coremltools.optimize.coreml is first read after _coremltools() has set up its import
    cto, np, torch = lazy_import("coremltools.optimize.coreml", "numpy", "torch")

PIP = 'pip install "edgefit[coreml]" -c constraints.txt'
DEPLOYMENT_TARGETS = (
    "iOS15",
    "iOS16",
    "iOS17",
    "iOS18",
    "macOS12",
    "macOS13",
    "macOS14",
    "macOS15",
)
COMPRESSIONS = (None, "int4", "palettize", "palettize-uniform")
COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")
NEEDS_MACOS = (
    "Core ML prediction needs macOS: coremltools converts and compresses on Linux, but "
    "MLModel.predict "
    "runs only on macOS 10.13+ (convert here, measure on a Mac)"
)


@dataclass(frozen=True)
class CoreMLOptions:
    """Conversion options, frozen into the artifact (``metadata["options"]``).

    ``deployment_target``: ``minimum_deployment_target`` of the ML Program (int4 per-block needs
    iOS18/macOS15); ``compress``: extra weight compression for fp32/fp16 (None, ``int4`` per-block
    linear with ``block_size``, ``palettize`` k-means or ``palettize-uniform`` with ``nbits``);
    ``compute_units``: what Core ML may use when measuring on macOS; ``parity_samples``: inputs
    compared.
    """

    deployment_target: str = "iOS18"
    compress: str | None = None
    nbits: int = 4
    block_size: int = 32
    compute_units: str = "ALL"
    parity_samples: int = 8

    def __post_init__(self) -> None:
        def bad(option: str, value: Any, allowed: str) -> EdgefitError:
            return EdgefitError(
                f"{option}={value!r} is not allowed", where="options", fix=f"use {allowed}"
            )

        if self.deployment_target not in DEPLOYMENT_TARGETS:
            raise bad("deployment_target", self.deployment_target, ", ".join(DEPLOYMENT_TARGETS))
        if self.compress not in COMPRESSIONS:
            raise bad("compress", self.compress, "None, int4, palettize or palettize-uniform")
        if self.nbits not in (1, 2, 3, 4, 6, 8):
            raise bad("nbits", self.nbits, "1, 2, 3, 4, 6 or 8 palette bits")
        if self.block_size < 1:
            raise bad("block_size", self.block_size, "a positive block size")
        if self.compute_units not in COMPUTE_UNITS:
            raise bad("compute_units", self.compute_units, ", ".join(COMPUTE_UNITS))
        if self.parity_samples < 1:
            raise bad("parity_samples", self.parity_samples, "a positive count")
        if self.compress == "int4" and self.deployment_target not in ("iOS18", "macOS15"):
            raise bad(
                "deployment_target",
                self.deployment_target,
                "iOS18 or macOS15 for per-block int4 weights",
            )


def _coremltools():
    os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
    with captured_output():  # version warnings and "Failed to load _MLModelProxy" on Linux
        return require("coremltools", extra="coreml", purpose="converting to Core ML")


def bundle_bytes(path: Path) -> int:
    """Size of an .mlpackage bundle (every file in it)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _safe(name: str) -> str:
    safe = re.sub(r"\W", "_", name)
    return safe if safe and not safe[0].isdigit() else f"_{safe}"


class CoreMLSession(Session):
    """An .mlpackage loaded by Core ML (macOS only). Core ML picks its own threads; ``threads`` is
    not used."""

    _model: Any  # coremltools.models.MLModel
    _inputs: dict[str, str]  # our input name → Core ML's
    _outputs: dict[str, str]
    _specs: dict[str, tuple[int, ...]]

    def __init__(self, artifact: Artifact, threads: int | None) -> None:
        if sys.platform != "darwin":
            raise RuntimeUnavailableError(
                NEEDS_MACOS, where="--runtime coreml", fix="measure on macOS"
            )
        ct = _coremltools()
        opts = CoreMLOptions(**artifact.metadata.get("options", {}))
        self._model = ct.models.MLModel(
            str(artifact.path), compute_units=getattr(ct.ComputeUnit, opts.compute_units)
        )
        io = artifact.metadata["io"]
        self._inputs, self._outputs = dict(io["inputs"]), dict(io["outputs"])
        self._specs = {n: tuple(s) for n, s in io["shapes"].items()}
        self.environment = {
            "runtime": "coreml",
            "version": ct.__version__,
            "compute_units": opts.compute_units,
            "macos": platform.mac_ver()[0],
            "threads_note": "Core ML schedules its own threads",
        }

    def input_specs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {n: (shape, "float32") for n, shape in self._specs.items()}

    def run(self, inputs: Inputs) -> dict[str, Any]:
        out = self._model.predict(
            {ml: np.asarray(inputs[n], dtype=np.float32) for n, ml in self._inputs.items()}
        )
        return {n: np.asarray(out[ml]) for n, ml in self._outputs.items()}


class CoreML(Runtime):
    """Core ML: converts PyTorch with coremltools (any OS), predicts with ``MLModel.predict``
    (macOS)."""

    name: ClassVar[str] = "coreml"
    description: ClassVar[str] = (
        "Apple Core ML (.mlpackage; converts and compresses anywhere, runs on macOS only)"
    )
    Options: ClassVar[type] = CoreMLOptions

    def available(self) -> Availability:
        if importlib.util.find_spec("coremltools") is None:
            return Availability(
                False, f"the Python package 'coremltools' is not installed ({PIP})"
            )
        ver = importlib.metadata.version("coremltools")
        where = (
            "converts and runs here"
            if sys.platform == "darwin"
            else "converts here; prediction needs macOS"
        )
        return Availability(True, f"coremltools {ver} ({where})", ver)

    def runnable(self) -> Availability:
        status = self.available()
        if status.ok and sys.platform != "darwin":
            return Availability(False, NEEDS_MACOS, status.version)
        return status

    def precisions(self) -> dict[str, str | None]:
        return {
            "fp32": None,
            "fp16": None,
            "int8": None,
            "int8-dynamic": "Core ML has no dynamic activation quantization; int8 here is int8 "
            "weights (W8A16)",
        }

    def open(self, artifact: Artifact, *, threads: int | None = None) -> CoreMLSession:
        return CoreMLSession(artifact, threads)

    def measure(
        self,
        artifact: Artifact,
        inputs: Inputs | None = None,
        *,
        warmup: int = 10,
        runs: int = 100,
        threads: int | None = 1,
        cpus: tuple[int, ...] | None = None,
        min_runs: int = 200,
        budget_s: float = 10.0,
        timeout_s: float = 600.0,
    ) -> Timing:
        """As :meth:`Runtime.measure`, on macOS; elsewhere "needs macOS" (exit 2) before anything
        is started."""
        self.require_runnable()
        return super().measure(
            artifact,
            inputs,
            warmup=warmup,
            runs=runs,
            threads=threads,
            cpus=cpus,
            min_runs=min_runs,
            budget_s=budget_s,
            timeout_s=timeout_s,
        )

    def convert(
        self,
        model: Any,
        precision: str,
        out_dir: str | Path,
        *,
        calibration: Sequence[Inputs] | None = None,
        **options: Any,
    ) -> Artifact:
        """Write ``<name>.<precision>[.<compress>].mlpackage`` under ``out_dir``.

        ``model`` is a :class:`~edgefit.runtimes.TorchModel`, a ``(module, example_input)`` tuple
        or an ONNX model edgefit can rebuild in PyTorch. Parity is checked on macOS only (on Linux
        ``metadata["parity"]`` is None and ``parity_note`` says why); ``calibration`` inputs, when
        given, are what parity compares on.
        """

        self.require_available()
        self.check_precision(precision)
        opts: CoreMLOptions = self.options(**options)
        if precision == "int8" and opts.compress:
            raise EdgefitError(
                f"compress={opts.compress!r} applies to fp32/fp16; int8 already compresses the "
                "weights",
                where="options",
                fix="drop compress, or use --precision fp16",
            )
        tm = as_torch_model(model)
        calibration = check_calibration(calibration, tm)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        suffix = (
            f".{opts.compress}{opts.nbits if opts.compress != 'int4' else ''}"
            if opts.compress
            else ""
        )
        path = out / f"{tm.name}.{precision}{suffix}.mlpackage"
        meta = _convert(tm, precision, opts, path)
        artifact = Artifact(path, "mlpackage", precision, self.name, meta)
        if self.runnable().ok:
            meta.update(source_parity(self, artifact, tm, calibration, opts.parity_samples))
        else:
            meta.update({"parity": None, "parity_note": f"not checked: {NEEDS_MACOS}"})
        return artifact


def _convert(tm, precision: str, opts: CoreMLOptions, path: Path) -> dict[str, Any]:
    """Trace, convert, compress and save; returns the metadata (recipe, weights, size, io
    names)."""
    ct = _coremltools()
    names_in = {n: _safe(n) for n in tm.input_names}
    names_out = {n: _safe(n) for n in tm.output_names}
    error: Exception | None = None
    with captured_output() as log, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            traced = torch.jit.trace(tm.module, tm.example_inputs)
            mlmodel = ct.convert(
                traced,
                convert_to="mlprogram",
                inputs=[
                    ct.TensorType(name=names_in[n], shape=tuple(t.shape))
                    for n, t in zip(tm.input_names, tm.example_inputs)
                ],
                outputs=[ct.TensorType(name=names_out[n]) for n in tm.output_names],
                minimum_deployment_target=getattr(ct.target, opts.deployment_target),
                compute_precision=ct.precision.FLOAT32
                if precision == "fp32"
                else ct.precision.FLOAT16,
            )
            mlmodel, weights = _compress(ct, mlmodel, precision, opts)
            if path.exists():
                shutil.rmtree(path)
            mlmodel.save(str(path))
        except EdgefitError:
            raise
        except Exception as exc:  # coremltools raises anything from tracing, MIL passes or saving
            error = exc
    if error is not None:
        last = "; ".join(log.tail(400).strip().splitlines()[-2:])
        raise EdgefitError(
            f"coremltools could not convert the model: {type(error).__name__}: "
            f"{str(error).splitlines()[0][:300] if str(error) else ''}"
            + (f" [converter output: {last}]" if last else ""),
            where="MODEL",
            fix="make the module traceable with torch.jit.trace, or try another runtime",
        ) from None
    return {
        "recipe": f"coremltools {ct.__version__}: torch.jit.trace → "
        "ct.convert(convert_to='mlprogram', "
        f"minimum_deployment_target={opts.deployment_target}, compute_precision="
        f"{'FLOAT32' if precision == 'fp32' else 'FLOAT16'})",
        "weights": weights,
        "size_bytes": bundle_bytes(path),
        "options": asdict(opts),
        "io": {
            "inputs": list(names_in.items()),
            "outputs": list(names_out.items()),
            "shapes": {n: list(t.shape) for n, t in zip(tm.input_names, tm.example_inputs)},
        },
        "note": "activations stay float (fp16/fp32): Core ML activation quantization calibrates "
        "by "
        "running the model, which needs macOS",
    }


def _compress(ct, mlmodel, precision: str, opts: CoreMLOptions):
    """Apply ``coremltools.optimize.coreml`` weight compression; returns (model, description)."""
    if precision == "int8":
        config = cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel"
        )
        return (
            cto.linear_quantize_weights(
                mlmodel, config=cto.OptimizationConfig(global_config=config)
            ),
            "int8 linear symmetric per-channel (linear_quantize_weights)",
        )
    if opts.compress == "int4":
        config = cto.OpLinearQuantizerConfig(
            mode="linear_symmetric",
            dtype="int4",
            granularity="per_block",
            block_size=opts.block_size,
        )
        return (
            cto.linear_quantize_weights(
                mlmodel, config=cto.OptimizationConfig(global_config=config)
            ),
            f"int4 linear symmetric per-block (block {opts.block_size}; linear_quantize_weights; "
            "weights whose "
            "input dimension does not divide by the block size stay float)",
        )
    if opts.compress in ("palettize", "palettize-uniform"):
        mode = "kmeans" if opts.compress == "palettize" else "uniform"
        if mode == "kmeans":
            require("sklearn", extra="coreml", purpose="k-means palettization (coremltools)")
        config = cto.OpPalettizerConfig(mode=mode, nbits=opts.nbits)
        return (
            cto.palettize_weights(mlmodel, config=cto.OptimizationConfig(global_config=config)),
            f"{opts.nbits}-bit {mode} palette (palettize_weights)",
        )
    return mlmodel, f"{precision} (uncompressed)"
