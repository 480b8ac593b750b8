"""Turn a candidate's :class:`PassPlan` into a real model: swap → prune → recover → export ONNX →
quantize.

With ``plan.torchao`` the ONNX file is still exported from the fp32 module (the estimator reads its
graph), and the torchao-quantized module is saved beside it as a ``torch.export`` program
(``model.pt2``, the ``torch`` runtime's artifact): that is what is scored, measured and shipped.

Results are cached under ``context.out_dir()/candidate-<key>/``, where the key hashes the plan, the
base model and the context's data (:meth:`PassContext.fingerprint`): the same candidate asked for
twice is built once. A cache hit returns the ONNX file (and the .pt2), metadata but no torch
module.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._io import write_atomic
from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.examples import get_example
from edgefit.passes._base import apply_pass
from edgefit.passes._context import PassContext

# isort: off
# _plan first: importing it registers the built-in passes in run order (list_passes); the
# onnx-recover module imports the recover pass itself, so it comes after
from edgefit.passes._plan import PassPlan
from edgefit.passes._onnx_recover import prune_and_recover_onnx

# isort: on
from edgefit.passes._swap import build_base
from edgefit.runtimes._inputs import onnx_input_specs
from edgefit.runtimes._ort_convert import save
from edgefit.runtimes._torch import save_program

if TYPE_CHECKING:
    import onnx
    import torch

    from edgefit.graph import _torch as graph_torch
else:  # the exporter brings onnx: loaded when a candidate is built, not at import
    onnx, torch, graph_torch = lazy_import("onnx", "torch", "edgefit.graph._torch")

RESULT_FILE = "materialized.json"


@dataclass(frozen=True, eq=False)
class Materialized:
    """A materialized candidate: its ONNX file (what is measured and shipped), the torch module
    before export (``None`` for ONNX-only bases and cache hits), what every pass did, and the
    change kinds (:data:`edgefit.iteration.CHANGE_KINDS`) the candidate makes, for the
    iteration-cost model.

    A torchao candidate also has ``artifact_path`` (its ``.pt2``) and ``artifact_runtime``
    (``"torch"``): then the ONNX file is the fp32 graph the estimator reads, and the ``.pt2`` is
    the model. Both are ``None`` for pure-ONNX candidates."""

    onnx_path: Path
    torch_module: torch.nn.Module | None
    metadata: dict[str, Any]
    change_kinds: tuple[str, ...]
    artifact_path: Path | None = None
    artifact_runtime: str | None = None


def _input_shape(
    plan: PassPlan, context: PassContext, factory: str | None, onnx_base: Any
) -> tuple[int, ...] | None:
    example = factory if factory and ":" not in factory else None
    resolution = plan.swap.resolution if plan.swap else None
    if example and resolution is not None:
        return get_example(example).shape_for(resolution)
    if context.input_shape is not None:
        return context.input_shape
    if example:
        return get_example(example).shape_for()
    if onnx_base is not None:
        specs = onnx_input_specs(onnx_base)
        return next(iter(specs.values()))[0] if len(specs) == 1 else None
    return None


def _resolve(base: Any, context: PassContext) -> tuple[Any, Any, str | None]:
    """(torch module or None, ONNX proto or None, factory) of ``base``."""
    if isinstance(base, (str, Path)) and str(base).endswith(".onnx"):
        return None, onnx.load(str(base)), context.factory
    if isinstance(base, str):
        return build_base(base), None, context.factory or base
    if hasattr(base, "SerializeToString"):
        return (
            None,
            copy.deepcopy(base),
            context.factory,
        )  # saving clamps the IR version: not the caller's
    if hasattr(base, "state_dict") and callable(base):
        return base, None, context.factory
    raise EdgefitError(
        f"cannot materialize a base of type {type(base).__name__}",
        where="base",
        fix="give a torch module, an .onnx path or proto, an example name or 'module:function'",
    )


def _cached(folder: Path) -> Materialized | None:
    meta_file = folder / RESULT_FILE
    if not meta_file.is_file():
        return None
    meta = json.loads(meta_file.read_text())
    path = folder / meta["onnx_file"]
    artifact = folder / meta["artifact_file"] if meta.get("artifact_file") else None
    if not path.is_file() or (artifact is not None and not artifact.is_file()):
        return None
    return Materialized(
        path,
        None,
        {**meta, "cache": "hit"},
        tuple(meta["change_kinds"]),
        artifact,
        meta.get("artifact_runtime"),
    )


def materialize(
    base: Any, plan: PassPlan, context: PassContext | None = None, *, reuse: bool = True
) -> Materialized:
    """Run ``plan`` on ``base`` (a torch module, an ONNX path or proto, an example name or a
    ``"module:function"`` factory) and return the ONNX model it makes.

    The original model is the distillation teacher unless ``context.teacher`` says otherwise; the
    export shape is the example's at the swapped resolution, else ``context.input_shape``.

    >>> from edgefit.passes import PassPlan, QuantizeConfig, RecoverConfig, SwapConfig
    >>> plan = PassPlan(swap=SwapConfig(width=0.5), recover=RecoverConfig(epochs=1),
    ...                 quantize=QuantizeConfig())
    >>> m = materialize("digits-cnn", plan, PassContext(train=(x, y)))   # doctest: +SKIP
    >>> m.change_kinds                                                   # doctest: +SKIP
    ('architecture', 'weights', 'quantization')
    """
    context = context or PassContext()
    module, onnx_base, factory = _resolve(base, context)
    content_hash = plan.content_hash(module if module is not None else onnx_base)
    key = hashlib.sha256(
        f"{content_hash}\0{factory}\0{context.fingerprint()}".encode()
    ).hexdigest()[:20]
    folder = context.out_dir() / f"candidate-{key}"
    if reuse and (hit := _cached(folder)) is not None:
        return hit
    shape = _input_shape(plan, context, factory, onnx_base)
    ctx = replace(
        context,
        work_dir=folder,
        factory=factory,
        input_shape=shape,
        teacher=context.teacher if context.teacher is not None else module,
    )
    model, steps, kinds = module, [], []
    onnx_pruned = None
    if module is None and plan.prune is not None:  # an ONNX-only base: pruned on its graph
        results = prune_and_recover_onnx(onnx_base, plan.prune, ctx, plan.recover)
        onnx_pruned = results[-1].model
        steps += [r.metadata for r in results]
        kinds += [r.change_kind for r in results if r.change_kind]
    for config in (plan.swap, plan.prune, plan.recover) if onnx_pruned is None else ():
        if config is not None:
            result = apply_pass(model, config, ctx)
            model = result.model
            steps.append(result.metadata)
            kinds += [result.change_kind] if result.change_kind else []
    if onnx_pruned is not None:
        fp32 = onnx_pruned.rename(folder / "model.fp32.onnx")
    elif model is not None:
        if shape is None:
            raise EdgefitError(
                "exporting to ONNX needs the model's input shape",
                where="PassContext.input_shape",
                fix="pass PassContext(input_shape=(1, 3, 224, 224))",
            )
        fp32 = save(
            graph_torch.export_torch(model, shape, input_dtype=context.input_dtype),
            folder / "model.fp32.onnx",
        )
        steps.append(
            {
                "pass": "export",
                "recipe": "edgefit.graph._torch.export_torch (torch.onnx, opset 18)",
                "input_shape": list(shape),
            }
        )
    else:
        fp32 = save(onnx_base, folder / "model.fp32.onnx")
    onnx_path, artifact = fp32, None
    if plan.quantize is not None:
        result = apply_pass(fp32, plan.quantize, ctx)
        onnx_path = result.model.rename(folder / "model.onnx")
        steps.append(result.metadata)
        kinds += [result.change_kind] if result.change_kind else []
    if plan.torchao is not None:
        result = apply_pass(
            model, plan.torchao, ctx
        )  # an ONNX-only base: PassNotApplicable, with the reason
        assert shape is not None  # torchao needs a torch model, whose export checked the shape
        artifact = _save_torchao(result, shape, context.input_dtype, folder / "model.pt2")
        steps.append(
            {
                **result.metadata,
                "artifact": artifact.name,
                "export": "torch.export.export + torch.export.save (runtime 'torch')",
            }
        )
        kinds += [result.change_kind] if result.change_kind else []
    meta = {
        "plan": plan.to_dict(),
        "content_hash": content_hash,
        "cache_key": key,
        "factory": factory,
        "input_shape": list(shape) if shape else None,
        "passes": steps,
        "change_kinds": kinds,
        "onnx_file": onnx_path.name,
        "artifact_file": artifact.name if artifact else None,
        "artifact_runtime": "torch" if artifact else None,
    }
    write_atomic(folder / RESULT_FILE, json.dumps(meta, indent=1, default=str))
    return Materialized(
        onnx_path,
        model,
        {**meta, "cache": "miss"},
        tuple(kinds),
        artifact,
        "torch" if artifact else None,
    )


def _save_torchao(result, shape: tuple[int, ...], input_dtype: str, path: Path) -> Path:
    """The torchao-quantized module as a ``torch.export`` program named like the ONNX export
    (input, output)."""
    example = torch.zeros(shape, dtype=getattr(torch, input_dtype))
    meta = {
        "precision": f"torchao-{result.metadata['config']}",
        "recipe": result.metadata["recipe"],
    }
    return save_program(
        result.model, (example,), path, input_names=["input"], output_names=["output"], meta=meta
    )
