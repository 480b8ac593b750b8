"""The torch backend: a ``torch.export`` program (``.pt2``) in fp32, fp16 or torchao int8-dynamic,
timed under ``torch.compile`` (inductor) in the measurement child.

The artifact is our own file, never user input: :func:`save_program` writes the exported program
with ``torch.export.save`` and an ``edgefit.json`` extra file (input/output names, precision,
recipe), so a ``.pt2`` names its own inputs even when it is opened from a bare path. Conversion
starts from PyTorch (see :mod:`~edgefit.runtimes._torch_source`: a ``TorchModel``, a ``(module,
example)`` tuple, or an ONNX model rebuilt in PyTorch). ``int8-dynamic`` applies torchao's
``Int8DynamicActivationInt8WeightConfig`` to every ``nn.Linear`` (the
:class:`~edgefit.passes.TorchaoConfig` pass), then exports.

With ``compile=True`` (default) :meth:`TorchRuntime.open` wraps the program's module in
``torch.compile``; compilation happens on the first run, i.e. inside the measurement's warm-up, and
its seconds are recorded in the session environment (``compile_s``). Eager torchao int8 is several
times slower than fp32 on CPU; compiled, inductor fuses the quantize/int-matmul/dequantize chain.
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError, require
from edgefit.runtimes._base import Artifact, Availability, Inputs, Runtime, Session
from edgefit.runtimes._inputs import load_onnx
from edgefit.runtimes._onnx_rewrite import gemm_to_matmul
from edgefit.runtimes._torch_source import (
    TorchModel,
    as_torch_model,
    check_calibration,
    source_parity,
)
from edgefit.runtimes._torchao import PIP_TORCHAO, import_torchao, linear_names, quantize_linears

if TYPE_CHECKING:
    import numpy as np
    import torch
else:
    np, torch = lazy_import("numpy", "torch")

PIP_TORCH = 'pip install "edgefit[dev]" -c constraints.txt'
META_FILE = "edgefit.json"  # the extra file inside every .pt2 this backend writes


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class TorchOptions:
    """Conversion and session options, frozen into the artifact (``metadata["options"]``).

    ``compile``: run the program under ``torch.compile`` (inductor) when timed; ``torchao_config``:
    the :class:`~edgefit.passes.TorchaoConfig` name that makes ``int8-dynamic``
    (``"int8-dynamic"``, or ``"int8-weight"`` for weight-only int8; only with that precision);
    ``parity_samples``: inputs the parity check compares.
    """

    compile: bool = True
    torchao_config: str | None = None
    parity_samples: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.compile, bool):
            raise EdgefitError(
                f"compile={self.compile!r} is not allowed",
                where="options",
                fix="use True or False",
            )
        if self.torchao_config not in (None, "int8-dynamic", "int8-weight"):
            raise EdgefitError(
                f"torchao_config={self.torchao_config!r} is not allowed",
                where="options",
                fix="use 'int8-dynamic' or 'int8-weight' (with precision int8-dynamic)",
            )
        if self.parity_samples < 1:
            raise EdgefitError(
                "parity_samples must be ≥ 1", where="options", fix="use a positive count"
            )


def save_program(
    module, example_inputs: tuple, path: Path, *, input_names, output_names, meta: dict
) -> Path:
    """``torch.export`` ``module`` on ``example_inputs`` and save it to ``path`` with its names and
    ``meta``."""
    with torch.no_grad():
        program = torch.export.export(module.eval(), tuple(example_inputs))
    info = {**meta, "inputs": list(input_names), "outputs": list(output_names)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(path), extra_files={META_FILE: json.dumps(info, default=str)})
    return path


def load_program(path: Path):
    """The exported program at ``path`` and its ``edgefit.json`` (names from the graph when
    absent)."""
    if importlib.util.find_spec("torchao") is not None:
        import_torchao()  # a torchao-quantized program holds torchao tensor subclasses
    extra = {META_FILE: ""}
    try:
        program = torch.export.load(str(path), extra_files=extra)
    except Exception as exc:  # a truncated or foreign file: say which, in one line
        raise EdgefitError(
            f"cannot load the exported program {path}: {str(exc).splitlines()[0][:200]}",
            where="artifact",
            fix="convert again with the torch runtime",
        ) from None
    info = json.loads(extra[META_FILE]) if extra[META_FILE] else {}
    sig = program.graph_signature
    info.setdefault("inputs", list(sig.user_inputs))
    info.setdefault("outputs", [f"output_{i + 1}" for i in range(len(sig.user_outputs))] or ["y"])
    return program, info


def _half_io(module):
    """``module`` in fp16 with fp32 inputs and outputs (float inputs cast in, float outputs cast
    out)."""

    class HalfIO(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner.half()

        def forward(self, *args: torch.Tensor):
            out = self.inner(*(a.half() if a.is_floating_point() else a for a in args))
            if isinstance(out, (tuple, list)):
                return tuple(o.float() if o.is_floating_point() else o for o in out)
            return out.float() if out.is_floating_point() else out

    return HalfIO(module)


class TorchSession(Session):
    """One exported program, eager or under ``torch.compile``; numpy in, numpy out."""

    def __init__(self, artifact: Artifact, threads: int | None) -> None:
        require("torch", extra="dev", purpose="running a torch.export program")
        opts = TorchOptions(**artifact.metadata.get("options", {}))
        if threads:
            torch.set_num_threads(threads)
        program, self._info = load_program(Path(artifact.path))
        self._specs = _specs(program, self._info["inputs"])
        module = program.module()
        self._module = torch.compile(module) if opts.compile else module
        self._first = True
        self.environment = {
            "runtime": "torch",
            "version": torch.__version__,
            "torchao": _version("torchao"),
            "compile": "torch.compile (inductor)" if opts.compile else "eager",
            "intra_op_threads": torch.get_num_threads(),
            "precision": self._info.get("precision"),
            "timed": "the program's forward under torch.inference_mode (tensor conversion outside "
            "the clock)",
        }

    def input_specs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return dict(self._specs)

    def _tensors(self, inputs: Inputs) -> list:
        return [
            torch.from_numpy(np.ascontiguousarray(inputs[n], dtype=self._specs[n][1]))
            for n in self._specs
        ]

    def _forward(self, args: list):
        with torch.inference_mode():
            if not self._first:
                return self._module(*args)
            start = (
                time.perf_counter()
            )  # the first run compiles (when compiling): say how long it took
            out = self._module(*args)
            self.environment[
                "compile_s" if self.environment["compile"] != "eager" else "first_run_s"
            ] = round(time.perf_counter() - start, 3)
            self._first = False
            return out

    def run(self, inputs: Inputs) -> dict[str, Any]:
        out = self._forward(self._tensors(inputs))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return {n: o.detach().numpy() for n, o in zip(self._info["outputs"], outs)}

    def timed_run(self, inputs: Inputs) -> float:
        args = self._tensors(inputs)
        start = time.perf_counter()
        self._forward(args)
        return time.perf_counter() - start


def _specs(program, names: list[str]) -> dict[str, tuple[tuple[int, ...], str]]:
    placeholders = {
        n.name: n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder"
    }
    specs = {}
    for name, user in zip(names, program.graph_signature.user_inputs):
        val = placeholders.get(user)
        assert val is not None, f"torch.export recorded no example value for input {user!r}"
        specs[name] = (tuple(int(d) for d in val.shape), str(val.dtype).removeprefix("torch."))
    return specs


class TorchRuntime(Runtime):
    """PyTorch itself: ``torch.export`` programs, timed under ``torch.compile``; int8 via
    torchao."""

    name: ClassVar[str] = "torch"
    description: ClassVar[str] = (
        "PyTorch (torch.export .pt2, torch.compile inductor; int8-dynamic via torchao)"
    )
    Options: ClassVar[type] = TorchOptions

    def available(self) -> Availability:
        if importlib.util.find_spec("torch") is None:
            return Availability(
                False, f"the Python package 'torch' is not installed ({PIP_TORCH})"
            )
        version = _version("torch")
        ao = _version("torchao")
        return Availability(
            True,
            f"torch {version}" + (f", torchao {ao}" if ao else ", torchao not installed"),
            version,
        )

    def precisions(self) -> dict[str, str | None]:
        ao = None if importlib.util.find_spec("torchao") else f"needs torchao ({PIP_TORCHAO})"
        return {
            "fp32": None,
            "fp16": None,
            "int8-dynamic": ao,
            "int8": "static int8 (torchao / PT2E calibration) is not wired in edgefit; use "
            "int8-dynamic",
        }

    def open(self, artifact: Artifact, *, threads: int | None = None) -> TorchSession:
        return TorchSession(artifact, threads)

    def infer(
        self, artifact: Artifact, inputs: Inputs, *, threads: int | None = None
    ) -> dict[str, Any]:
        """One eager run in this process (parity and scoring: compiling would only cost seconds
        here)."""
        return super().infer(eager(artifact), inputs, threads=threads)

    def convert(
        self,
        model: Any,
        precision: str,
        out_dir: str | Path,
        *,
        calibration: Sequence[Inputs] | None = None,
        **options: Any,
    ) -> Artifact:
        """Write ``<name>.<precision>.pt2`` under ``out_dir``; ``metadata`` has the recipe and the
        parity.

        ``model`` is a :class:`~edgefit.runtimes.TorchModel`, a ``(module, example_input)`` tuple,
        or an ONNX model that edgefit can rebuild in PyTorch. ``calibration`` is only what parity
        is checked on (no precision here calibrates).
        """

        self.require_available()
        self.check_precision(precision)
        opts: TorchOptions = self.options(**options)
        if opts.torchao_config and precision != "int8-dynamic":
            raise EdgefitError(
                f"torchao_config={opts.torchao_config!r} with precision {precision!r}",
                where="options",
                fix="drop torchao_config, or use precision int8-dynamic",
            )
        tm = as_torch_model(_matmul_source(model) if precision == "int8-dynamic" else model)
        calibration = check_calibration(calibration, tm)
        module, meta = _prepare(tm.module, precision, opts)
        meta.update(
            precision=precision,
            source="ONNX model rebuilt in PyTorch (edgefit.runtimes._onnx_torch)"
            if tm.reference is not None
            else "PyTorch module",
        )
        out = Path(out_dir)
        path = save_program(
            module,
            tm.example_inputs,
            out / f"{tm.name}.{precision}.pt2",
            input_names=tm.input_names,
            output_names=tm.output_names,
            meta=meta,
        )
        meta["options"] = asdict(opts)
        artifact = Artifact(path, "torch-export", precision, self.name, meta)
        meta.update(source_parity(self, eager(artifact), tm, calibration, opts.parity_samples))
        return artifact


def _matmul_source(model: Any) -> Any:
    """An ONNX source with Gemm rewritten as MatMul + Add, so its rebuilt weights are Linear
    weights that torchao can quantize; a torch source as it is."""

    if isinstance(model, (TorchModel, tuple)) or hasattr(model, "state_dict"):
        return model

    source = copy.deepcopy(load_onnx(model))
    gemm_to_matmul(source)
    return source


def eager(artifact: Artifact) -> Artifact:
    """The same artifact opened without ``torch.compile`` (for in-process parity and scoring)."""
    return replace(
        artifact,
        metadata={
            **artifact.metadata,
            "options": {**artifact.metadata.get("options", {}), "compile": False},
        },
    )


def _prepare(module, precision: str, opts: TorchOptions) -> tuple[Any, dict[str, Any]]:
    """A copy of ``module`` at ``precision`` and the recipe that made it."""
    source = copy.deepcopy(module).eval()
    if precision == "fp32":
        return source, {"recipe": "the module as is (torch.export)"}
    if precision == "fp16":
        return _half_io(source), {
            "recipe": "module.half(), fp32 inputs cast to fp16 and float outputs back to fp32"
        }
    name = opts.torchao_config or "int8-dynamic"
    if not linear_names(source):  # the torchao pass refuses the same model the same way
        raise EdgefitError(
            "the model has no nn.Linear layer for torchao to quantize",
            where=f"torch runtime, precision int8-dynamic (torchao {name})",
            fix="convert it at fp32 or fp16, or quantize it with onnxruntime (int8)",
        )
    return quantize_linears(source, name)
