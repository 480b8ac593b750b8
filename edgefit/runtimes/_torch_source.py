"""The source model of the PyTorch-based converters (LiteRT, Core ML, Vela): :class:`TorchModel`.

``Runtime.convert`` takes ``model: Any``; the ONNX backends read ONNX. litert-torch and coremltools
start from a ``torch.nn.Module`` and an example input, so these backends accept:

* a :class:`TorchModel` (module + example inputs + names), e.g.
  ``TorchModel.from_example("ds-cnn-kws")``;
* a ``(module, example_input)`` tuple;
* an ONNX model (path, ``onnx.ModelProto`` or edgefit ``Graph``, which is what ``edgefit bench``
  passes): it is rebuilt in PyTorch by :mod:`~edgefit.runtimes._onnx_torch` for the common CNN/MLP
  ops, and refused with the fix (pass the module) otherwise.

Parity is checked against the fp32 source: the module's own outputs for a torch source,
onnxruntime's outputs of the ONNX model for an ONNX source (which also checks the rebuild).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError, require
from edgefit.examples import get_example
from edgefit.runtimes._inputs import (
    check_inputs,
    load_onnx,
    model_stem,
    onnx_input_specs,
    random_inputs,
)
from edgefit.runtimes._ort_convert import clamp_ir
from edgefit.runtimes._parity import parity
from edgefit.runtimes._parity import reference_outputs as ort_outputs

if TYPE_CHECKING:
    import torch

    from edgefit.runtimes import _onnx_torch
else:
    # _onnx_torch loads numpy, which importing edgefit.runtimes must not
    torch, _onnx_torch = lazy_import("torch", "edgefit.runtimes._onnx_torch")

Specs = dict[str, tuple[tuple[int, ...], str]]


@dataclass(frozen=True, eq=False)
class TorchModel:
    """A ``torch.nn.Module`` (eval mode) with example inputs and the names its inputs/outputs go
    by.

    ``input_names``/``output_names`` default to ``x``/``input_1``… and ``y``/``output_1``…;
    ``reference`` is the ONNX model whose onnxruntime outputs are the parity reference when the
    module was rebuilt from ONNX (None: the module itself is the reference).

    >>> tm = TorchModel.from_example("ds-cnn-kws")                     # doctest: +SKIP
    >>> tm.specs()                                                     # doctest: +SKIP
    {'x': ((1, 1, 49, 10), 'float32')}
    """

    module: Any
    example_inputs: tuple
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()
    name: str = "model"
    reference: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.module, torch.nn.Module):
            raise EdgefitError(
                f"TorchModel needs a torch.nn.Module, got {type(self.module).__name__}",
                where="MODEL",
                fix="pass TorchModel(module, example_input)",
            )
        inputs = (
            self.example_inputs
            if isinstance(self.example_inputs, (tuple, list))
            else (self.example_inputs,)
        )
        if not inputs or not all(isinstance(t, torch.Tensor) for t in inputs):
            raise EdgefitError(
                "TorchModel.example_inputs must be one tensor or a tuple of tensors",
                where="MODEL",
                fix="pass TorchModel(module, torch.randn(1, 3, 224, 224))",
            )
        object.__setattr__(self, "example_inputs", tuple(inputs))
        object.__setattr__(self, "module", self.module.eval())
        if not self.input_names:
            names = (
                ("x",) if len(inputs) == 1 else tuple(f"input_{i + 1}" for i in range(len(inputs)))
            )
            object.__setattr__(self, "input_names", names)
        if len(self.input_names) != len(inputs):
            raise EdgefitError(
                f"{len(self.input_names)} input names for {len(inputs)} example inputs",
                where="TorchModel.input_names",
                fix="give one name per input",
            )
        object.__setattr__(self, "input_names", tuple(self.input_names))
        object.__setattr__(self, "output_names", tuple(self.output_names))

    @classmethod
    def from_example(cls, name: str, *, resolution: int | None = None, **knobs: Any) -> TorchModel:
        """A built-in example (``edgefit examples list``) at its default knobs or the given
        ones."""
        spec = get_example(name)
        return cls(
            spec.build(resolution=resolution, **knobs),
            (spec.example_input(resolution=resolution),),
            name=name.replace("/", "_"),
        )

    def specs(self) -> Specs:
        return {
            n: (tuple(t.shape), str(t.dtype).removeprefix("torch."))
            for n, t in zip(self.input_names, self.example_inputs)
        }

    def outputs(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        """Run the module on one input dict (numpy in, numpy out), named by ``output_names``."""
        with torch.no_grad():
            out = self.module(*(torch.as_tensor(sample[n]) for n in self.input_names))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        names = self.output_names or (
            ("y",) if len(outs) == 1 else tuple(f"output_{i + 1}" for i in range(len(outs)))
        )
        return {n: o.detach().numpy() for n, o in zip(names, outs)}

    def with_output_names(self) -> TorchModel:
        """This model with ``output_names`` filled in (by running it once when they were not
        given)."""
        if self.output_names:
            return self
        sample = {n: t.numpy() for n, t in zip(self.input_names, self.example_inputs)}
        return TorchModel(
            self.module,
            self.example_inputs,
            self.input_names,
            tuple(self.outputs(sample)),
            self.name,
            self.reference,
        )


def as_torch_model(model: Any) -> TorchModel:
    """Any accepted source (see the module docstring) → a :class:`TorchModel` with output names."""
    _torch()  # torch is installed (else the pip line), torchao's CUDA kernels stay unloaded
    if isinstance(model, TorchModel):
        return model.with_output_names()
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], torch.nn.Module):
        return TorchModel(model[0], model[1]).with_output_names()
    if isinstance(model, torch.nn.Module):
        raise EdgefitError(
            "a bare torch.nn.Module has no input shape",
            where="MODEL",
            fix="pass TorchModel(module, example_input) or (module, example_input)",
        )
    source = clamp_ir(copy.deepcopy(load_onnx(model)))
    module = _onnx_torch.onnx_to_torch(source)
    specs = onnx_input_specs(source)
    example = random_inputs(specs, seed=0)
    return TorchModel(
        module,
        tuple(torch.as_tensor(example[n]) for n in module.input_names),
        tuple(module.input_names),
        tuple(module.output_names),
        model_stem(source),
        reference=source,
    )


def _torch():
    # torchao (pulled in by litert-torch and coremltools) tries to load CUDA-only kernels on import
    # and warns
    os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")

    return require("torch", extra="dev", purpose="converting a PyTorch model")


def random_samples(tm: TorchModel, n: int, *, seed: int) -> list[dict[str, Any]]:
    return [random_inputs(tm.specs(), seed=seed + i) for i in range(n)]


def reference_outputs(
    tm: TorchModel, samples: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], str]:
    """fp32 reference outputs and what they came from (onnxruntime for an ONNX source, else
    torch)."""
    if tm.reference is not None:
        return ort_outputs(
            tm.reference, samples
        ), "the fp32 ONNX source model on onnxruntime's CPU provider"
    return [tm.outputs(s) for s in samples], "the fp32 torch module (eager, CPU)"


def source_parity(runtime, artifact, tm: TorchModel, calibration, n: int) -> dict[str, Any]:
    """Parity of ``artifact`` (run in-process by ``runtime``) against the fp32 source, for its
    metadata.

    Like :func:`edgefit.runtimes._parity.artifact_parity`: the first ``n`` calibration inputs when
    given (in-sample, said so), else ``n`` random inputs with seeds 1…n.
    """
    samples = list(calibration[:n]) if calibration else random_samples(tm, n, seed=1)
    reference, where = reference_outputs(tm, samples)
    session = runtime.open(artifact)
    converted = [session.run(sample) for sample in samples]
    return {
        "parity": parity(reference, converted).to_dict(),
        "parity_inputs": f"{len(samples)} "
        + ("calibration inputs (in-sample)" if calibration else "random normal inputs (seeds 1…)"),
        "parity_reference": where,
    }


def check_calibration(calibration, tm: TorchModel) -> list[dict[str, Any]] | None:
    if calibration is None:
        return None
    checked = [check_inputs(sample, tm.specs()) for sample in calibration]
    if not checked:
        raise EdgefitError(
            "calibration is empty", where="calibration", fix="give at least one input dict"
        )
    return checked
