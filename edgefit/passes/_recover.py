"""The recover pass: a short fine-tune of a pruned or swapped model, distilled from the original.

Loss (Hinton et al. 2015), with student logits ``s``, teacher logits ``t`` and temperature ``T``::

    alpha * CE(s, y) + (1 - alpha) * T² * KL(softmax(t / T) ‖ softmax(s / T))

It reuses the examples' trainer (:func:`edgefit.examples.train_digits_cnn`, generic over
classifiers on in-memory arrays): AdamW with a one-cycle schedule, seeded, on ``context.threads``
threads, a progress bar only when ``context.progress``. Exact zeros that pruning made stay zero:
masks are held with ``torch.nn.utils.prune.custom_from_mask`` during training and baked in
afterwards.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.examples import TrainRecipe, evaluate_accuracy, train_digits_cnn
from edgefit.passes._base import (
    PassConfig,
    PassNotApplicable,
    PassResult,
    config_error,
    is_int,
    is_number,
    register_pass,
)
from edgefit.passes._context import PassContext

if TYPE_CHECKING:
    import numpy as np
    import torch
    import torch.nn.utils.prune as torch_prune
    from torch import nn
else:
    np, nn, torch_prune = lazy_import("numpy", "torch.nn", "torch.nn.utils.prune")

SEARCH_EPOCHS = (1, 3)


@dataclass(frozen=True)
class RecoverConfig(PassConfig):
    """How to fine-tune: ``epochs`` over ``context.train`` at peak learning rate ``lr``; with
    ``distill`` the teacher's softened outputs weigh ``1 - alpha`` of the loss at ``temperature``.
    ``max_shift`` > 0 adds random-shift augmentation (images only).

    >>> RecoverConfig(epochs=0)  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    edgefit.errors.EdgefitError: RecoverConfig.epochs: epochs=0 is not allowed
    (fix: use a positive integer)
    """

    epochs: int = 1
    lr: float = 2e-3
    distill: bool = True
    temperature: float = 4.0
    alpha: float = 0.5
    batch_size: int = 64
    max_shift: int = 0
    version: int = 1

    def __post_init__(self) -> None:
        name = type(self).__name__
        self._check_version()
        for field, ok, allowed in (
            ("epochs", is_int(self.epochs) and self.epochs >= 1, "a positive integer"),
            ("lr", is_number(self.lr) and 0 < self.lr <= 1, "a learning rate in (0, 1]"),
            ("distill", isinstance(self.distill, bool), "True or False"),
            (
                "temperature",
                is_number(self.temperature) and self.temperature > 0,
                "a positive number",
            ),
            ("alpha", is_number(self.alpha) and 0 <= self.alpha <= 1, "a weight in [0, 1]"),
            ("batch_size", is_int(self.batch_size) and self.batch_size >= 2, "an integer >= 2"),
            (
                "max_shift",
                is_int(self.max_shift) and self.max_shift >= 0,
                "a non-negative integer",
            ),
        ):
            if not ok:
                raise config_error(name, field, getattr(self, field), allowed)
        for field in ("lr", "temperature", "alpha"):
            self._set(field, float(getattr(self, field)))
        if not self.distill:  # without a teacher these do nothing: equal recipes hash equal
            self._set("temperature", 4.0)
            self._set("alpha", 0.5)

    @classmethod
    def search_space(
        cls, target_dtypes: Iterable[str] = (), knob_space: Mapping[str, Any] | None = None
    ) -> dict[str, tuple]:
        return {"epochs": SEARCH_EPOCHS, "distill": (True, False)}

    def recipe(self, seed: int) -> TrainRecipe:
        """The examples' :class:`TrainRecipe` for this config (no label smoothing: fine-tuning)."""
        return TrainRecipe(
            epochs=self.epochs,
            batch_size=self.batch_size,
            max_lr=self.lr,
            label_smoothing=0.0,
            max_shift=self.max_shift,
            distill_weight=1 - self.alpha if self.distill else 0.0,
            temperature=self.temperature,
            seed=seed,
        )


def _hold_zeros(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Mask every Conv/Linear weight that has exact zeros (pruning's) so training keeps them zero.
    An all-zero weight is a zero *initialization* (some nets zero-init their last layer), not
    pruning."""
    held: list[nn.Module] = []
    for module in model.modules():
        if not isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            continue
        zeros = module.weight == 0
        if bool(zeros.any()) and not bool(zeros.all()):
            torch_prune.custom_from_mask(module, "weight", module.weight.detach() != 0)
            held.append(module)
    return held


@register_pass(RecoverConfig, name="recover", consumes="torch", change_kind="weights")
def recover_module(
    model: torch.nn.Module, config: RecoverConfig, context: PassContext
) -> PassResult:
    """Fine-tune a copy of ``model`` on ``context.train`` (distilling from ``context.teacher``)."""
    if not isinstance(model, nn.Module):
        raise PassNotApplicable(
            f"recovery fine-tunes a torch module, not {type(model).__name__}",
            where="RecoverConfig",
            fix="give the torch model",
        )
    if context.train is None:
        raise EdgefitError(
            "recovery needs training data",
            where="PassContext.train",
            fix="pass train=(x, y) arrays",
        )
    teacher = context.teacher if config.distill else None
    if config.distill and teacher is None:
        raise EdgefitError(
            "distillation needs the original model",
            where="PassContext.teacher",
            fix="pass teacher=<the base model>, or RecoverConfig(distill=False)",
        )
    x, y = (np.asarray(a) for a in context.train)
    vx, vy = (np.asarray(a) for a in (context.val or context.train))
    val = (vx, vy)
    student = copy.deepcopy(model)
    held = _hold_zeros(student)
    before = evaluate_accuracy(student, *val)
    try:
        report = train_digits_cnn(
            student,
            {"train": (x, y), "val": val},
            recipe=config.recipe(context.seed),
            teacher=teacher,
            progress=context.progress,
            threads=context.threads,
        )
    except (
        RuntimeError
    ) as exc:  # a teacher that cannot take the student's inputs, mismatched labels …
        raise EdgefitError(
            f"recovery training failed: {str(exc).splitlines()[0][:200]}",
            where="RecoverConfig",
            fix="check that train data fits the model (and the teacher, with distill)",
        ) from None
    for module in held:
        torch_prune.remove(module, "weight")
    meta = {
        "pass": "recover",
        "recipe": f"{config.epochs} epoch(s) AdamW one-cycle, peak lr {config.lr}"
        + (
            f", distilled (alpha {config.alpha}, T {config.temperature})"
            if teacher is not None
            else ", labels only"
        ),
        "train_samples": len(x),
        "val_accuracy_before": before,
        "val_accuracy_after": report.val_accuracy,
        "val_source": "PassContext.val"
        if context.val is not None
        else "training data (no val given)",
        "seconds": round(report.seconds, 2),
        "zeros_held_in_layers": len(held),
    }
    return PassResult(student.eval(), meta, "weights")
