"""Recovery fine-tuning for a model that exists only as an ONNX file (after ``onnx-prune``).

The graph is rebuilt in torch (:func:`edgefit.runtimes._onnx_torch.onnx_to_torch`) with the
weights and biases of its Conv/Gemm/MatMul layers and the scale and shift of its BatchNorms
trainable (running statistics and every other constant stay fixed), trained with the examples'
trainer exactly as the ``recover`` pass trains a torch module (:class:`RecoverConfig`'s recipe,
seeded, distilled from the unpruned model), and the trained values are written back into the ONNX
initializers by name. Only weights change, never the graph, so there is no re-export.

Reshape targets that hard-code the exported batch size (``[1, 64]``) are relaxed to "copy the
batch" (``0``) in the training copy only, so it can train on mini-batches; the rebuild is checked
against onnxruntime before training starts.

>>> from edgefit.passes import RecoverConfig
>>> from edgefit.passes._onnx_prune import OnnxPruneConfig
>>> context = PassContext(train=(x, y))                                  # doctest: +SKIP
>>> results = prune_and_recover_onnx("model.onnx", OnnxPruneConfig(amount=0.25), context,
...                                  RecoverConfig(epochs=1))                 # doctest: +SKIP
>>> [r.metadata["pass"] for r in results]                                # doctest: +SKIP
['onnx-prune', 'onnx-recover']
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.examples import evaluate_accuracy, train_digits_cnn
from edgefit.passes._base import PassConfig, PassResult, apply_pass
from edgefit.passes._context import PassContext
from edgefit.passes._onnx import load
from edgefit.passes._onnx_prune import as_onnx_prune
from edgefit.passes._onnx_recalibrate import session_of
from edgefit.passes._recover import RecoverConfig
from edgefit.runtimes._ort_convert import save

if TYPE_CHECKING:
    import numpy as np
    import torch
    from onnx import numpy_helper

    from edgefit.runtimes import _onnx_torch
else:  # the torch rebuild of an ONNX graph brings numpy
    np, torch, numpy_helper = lazy_import("numpy", "torch", "onnx.numpy_helper")
    _onnx_torch = lazy_import("edgefit.runtimes._onnx_torch")

TRAINED_INPUTS = {"Conv": (1, 2), "Gemm": (1, 2), "MatMul": (1,), "BatchNormalization": (1, 2)}
PARITY_ATOL = 1e-3  # the torch rebuild against onnxruntime, relative to the output's scale


def trainable_names(model) -> frozenset[str]:
    """The float initializers recovery trains: layer weights and biases, BatchNorm scale/shift."""
    floats = {i.name for i in model.graph.initializer if i.data_type in (1, 10, 11, 16)}
    return frozenset(
        name
        for node in model.graph.node
        for k in TRAINED_INPUTS.get(node.op_type, ())
        if k < len(node.input) and (name := node.input[k]) in floats
    )


def batch_free(model) -> Any:
    """A copy of ``model`` whose Reshape targets copy the batch (``0``) where they spelled out
    the exported batch size, so the torch rebuild runs on mini-batches."""
    model = copy.deepcopy(model)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    batch = dims[0].dim_value if dims and dims[0].HasField("dim_value") else None
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Reshape" or batch is None or node.input[1] not in inits:
            continue
        shape = numpy_helper.to_array(inits[node.input[1]]).copy()
        if shape.ndim == 1 and len(shape) and shape[0] == batch and 0 not in shape[1:]:
            shape[0] = 0
            for a in node.attribute:  # torch exports allowzero=1; 0 must mean "copy" here
                if a.name == "allowzero":
                    a.i = 0
            name = f"{node.input[1]}.batch_free.{node.name}"
            model.graph.initializer.append(numpy_helper.from_array(shape.astype(np.int64), name))
            node.input[1] = name
    return model


def _rebuild(model, trainable: frozenset[str] | bool):
    return _onnx_torch.onnx_to_torch(batch_free(model), trainable=trainable)


def _check_parity(model, module, x) -> None:
    """The rebuild must compute what onnxruntime computes (two samples, batched in torch)."""
    sess = session_of(model)
    name = sess.get_inputs()[0].name
    ref = np.concatenate([sess.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])
    with torch.no_grad():
        got = module(torch.as_tensor(x)).numpy()
    scale = max(float(np.abs(ref).max()), 1.0)
    if got.shape != ref.shape or float(np.abs(got - ref).max()) > PARITY_ATOL * scale:
        raise EdgefitError(
            "the torch rebuild of this ONNX model does not match onnxruntime on mini-batches",
            where="onnx-recover",
            fix="recover this model from its torch source, or skip recovery",
        )


def write_back(model, module, names: frozenset[str]) -> Any:
    """A copy of ``model`` with the trained values of ``names`` in its initializers (their
    original dtypes kept)."""
    model = copy.deepcopy(model)
    trained = module.float_initializers()
    for init in model.graph.initializer:
        if init.name in names:
            dtype = numpy_helper.to_array(init).dtype
            init.CopyFrom(numpy_helper.from_array(trained[init.name].astype(dtype), init.name))
    return model


def recover_onnx(
    model: Any, config: RecoverConfig, context: PassContext, teacher: Any = None
) -> PassResult:
    """Fine-tune the weights of ONNX ``model`` (path or proto) on ``context.train``, distilled
    from ``context.teacher`` (a torch module) or else ``teacher`` (the unpruned ONNX model); the
    result is the recovered file in ``context.out_dir()``."""
    if context.train is None:
        raise EdgefitError(
            "recovery needs training data", where="PassContext.train", fix="pass --train-data"
        )
    proto = load(model)
    guide = context.teacher
    if config.distill and guide is None:
        if teacher is None:
            raise EdgefitError(
                "distillation needs the original model",
                where="PassContext.teacher",
                fix="pass the unpruned ONNX model as teacher, or RecoverConfig(distill=False)",
            )
        guide = _rebuild(load(teacher), False)
    x, y = (np.asarray(a) for a in context.train)
    vx, vy = (np.asarray(a) for a in (context.val or context.train))
    val = (vx, vy)
    names = trainable_names(proto)
    student = _rebuild(proto, names)
    _check_parity(proto, student, x[:2].astype(np.float32))
    before = evaluate_accuracy(student, *val)
    try:
        report = train_digits_cnn(
            student,
            {"train": (x, y), "val": val},
            recipe=config.recipe(context.seed),
            teacher=guide if config.distill else None,
            progress=context.progress,
            threads=context.threads,
        )
    except (RuntimeError, IndexError) as exc:  # labels that do not fit the outputs …
        raise EdgefitError(
            f"recovery training failed: {str(exc).splitlines()[0][:200]}",
            where="onnx-recover",
            fix="recovery trains classifiers: give integer class labels matching the outputs",
        ) from None
    recovered = write_back(proto, student, names)
    digest = hashlib.sha256(recovered.SerializeToString()).hexdigest()[:12]  # content-addressed
    path: Path = save(recovered, context.out_dir() / f"model.onnx-recover-{digest}.onnx")
    return PassResult(
        path,
        {
            "pass": "onnx-recover",
            "recipe": f"{config.epochs} epoch(s) AdamW one-cycle, peak lr {config.lr}, on the "
            "ONNX graph rebuilt in torch"
            + (", distilled from the unpruned model" if config.distill else ", labels only"),
            "trained_initializers": len(names),
            "train_samples": len(x),
            "val_accuracy_before": before,
            "val_accuracy_after": report.val_accuracy,
            "val_source": "PassContext.val" if context.val is not None else "training data",
            "seconds": round(report.seconds, 2),
        },
        "weights",
    )


def prune_and_recover_onnx(
    onnx_path: Any,
    config: PassConfig,
    context: PassContext,
    recover: RecoverConfig | None = None,
) -> tuple[PassResult, ...]:
    """Prune ONNX ``onnx_path`` (``config``: an :class:`OnnxPruneConfig`, or a plan's
    ``PruneConfig(method="channel")``) and, with ``recover``, fine-tune the pruned model distilled
    from the original (unless ``context.teacher`` is given): the results in order (the last one's
    ``model`` is the file to use next), for :func:`edgefit.passes.materialize` to record as two
    steps."""
    pruned = apply_pass(onnx_path, as_onnx_prune(config), context)
    if recover is None:
        return (pruned,)
    return pruned, recover_onnx(pruned.model, recover, context, teacher=onnx_path)
