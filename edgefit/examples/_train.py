"""Train and evaluate classifiers on in-memory arrays (the digits example; reused to fine-tune or
distill optimized candidates).

torch and rich load on first use (:func:`edgefit._lazy.lazy_import`), so ``import
edgefit.examples`` stays light.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from edgefit._cpu import spare_threads
from edgefit._lazy import lazy_import

if TYPE_CHECKING:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from rich import console as rich_console
    from rich import progress as rich_progress
    from rich.progress import Progress, TaskID

    from edgefit.examples._data import Splits
else:
    torch, F = lazy_import("torch", "torch.nn.functional")
    rich_console, rich_progress = lazy_import("rich.console", "rich.progress")


@dataclass(frozen=True)
class TrainRecipe:
    """How :func:`train_digits_cnn` trains: AdamW with a one-cycle schedule, random-shift
    augmentation, label smoothing, and (with a teacher) knowledge distillation. Part of the cache
    key of trained weights, so any change retrains.

    >>> TrainRecipe(epochs=2).epochs
    2
    """

    epochs: int = 8
    batch_size: int = 64
    max_lr: float = 4e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.05
    max_shift: int = 2  # pixels at 32×32, half a pixel of the 8×8 source
    distill_weight: float = 0.5  # share of the loss from the teacher, when one is given
    temperature: float = 4.0
    seed: int = 0
    version: int = 1

    def __post_init__(self) -> None:
        if (
            self.epochs < 1
            or self.batch_size < 2
            or self.max_shift < 0
            or not 0 <= self.distill_weight <= 1
        ):
            raise ValueError(f"invalid training recipe: {self}")


@dataclass(frozen=True)
class TrainReport:
    """What a training run did; ``history`` is ``(epoch, mean train loss, val accuracy)`` per
    epoch, ``seconds`` is wall-clock time (measured) on ``threads`` CPU threads."""

    epochs: int
    seconds: float
    threads: int
    train_loss: float
    val_accuracy: float
    history: tuple[tuple[int, float, float], ...]


def default_threads() -> int:
    """Two CPU threads, or one when other work already keeps the machine's cores busy
    (:func:`edgefit._cpu.spare_threads`)."""
    return spare_threads()


@contextlib.contextmanager
def _cpu_setup(model: torch.nn.Module, threads: int) -> Iterator[None]:
    """``threads`` CPU threads and channels-last convolutions (faster on CPU) while training; the
    thread count and the model's memory layout are restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    # torch's stub of Module.to lacks its documented memory_format= keyword
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    try:
        yield
    finally:
        model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
        torch.set_num_threads(before)


def _random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels each way, replicating the (background)
    border; returned channels-last. Inputs that are not image batches pass through unchanged."""
    if x.dim() != 4:
        return x
    if max_shift:
        h, w = x.shape[-2:]
        padded = F.pad(x, (max_shift,) * 4, mode="replicate")
        offsets = torch.randint(0, 2 * max_shift + 1, (len(x), 2), generator=gen).tolist()
        x = torch.stack([padded[i, :, a : a + h, b : b + w] for i, (a, b) in enumerate(offsets)])
    return x.contiguous(memory_format=torch.channels_last)


def _loss(
    model: torch.nn.Module,
    teacher: torch.nn.Module | None,
    xb: torch.Tensor,
    yb: torch.Tensor,
    recipe: TrainRecipe,
) -> torch.Tensor:
    logits = model(xb)
    loss = F.cross_entropy(logits, yb, label_smoothing=recipe.label_smoothing)
    if teacher is None:
        return loss
    with torch.no_grad():
        soft = F.log_softmax(teacher(xb) / recipe.temperature, dim=1)
    kd = F.kl_div(
        F.log_softmax(logits / recipe.temperature, dim=1),
        soft,
        log_target=True,
        reduction="batchmean",
    )
    return (1 - recipe.distill_weight) * loss + recipe.distill_weight * kd * recipe.temperature**2


def _train_epoch(
    model: torch.nn.Module,
    teacher: torch.nn.Module | None,
    x: torch.Tensor,
    y: torch.Tensor,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    recipe: TrainRecipe,
    gen: torch.Generator,
) -> float:
    model.train()
    order = torch.randperm(len(x), generator=gen)
    total, seen = 0.0, 0
    for start in range(0, len(x), recipe.batch_size):
        idx = order[start : start + recipe.batch_size]
        if len(idx) < 2:  # BatchNorm cannot train on a batch of one
            continue
        loss = _loss(model, teacher, _random_shift(x[idx], recipe.max_shift, gen), y[idx], recipe)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total, seen = total + loss.item() * len(idx), seen + len(idx)
    return total / max(seen, 1)


def _progress(show: bool | None, total: int) -> tuple[Progress, TaskID]:
    console = rich_console.Console(stderr=True)
    show = console.is_terminal if show is None else show
    columns = (
        rich_progress.TextColumn("{task.description}"),
        rich_progress.BarColumn(),
        rich_progress.MofNCompleteColumn(),
        rich_progress.TimeElapsedColumn(),
        rich_progress.TextColumn("{task.fields[stats]}"),
    )
    bar = rich_progress.Progress(*columns, console=console, disable=not show, transient=False)
    return bar, bar.add_task("training (epochs)", total=total, stats="")


def train_digits_cnn(
    model: torch.nn.Module,
    splits: Splits,
    *,
    epochs: int | None = None,
    recipe: TrainRecipe | None = None,
    teacher: torch.nn.Module | None = None,
    progress: bool | None = None,
    threads: int | None = None,
) -> TrainReport:
    """Train ``model`` in place on ``splits["train"]``, reporting ``splits["val"]`` accuracy per
    epoch.

    ``epochs`` overrides ``recipe.epochs``. With a ``teacher`` the loss mixes in knowledge
    distillation (Hinton et al. 2015), which is how an optimized candidate recovers accuracy.
    ``progress`` shows a rich progress bar (default: when stderr is a terminal). Training is seeded
    from ``recipe.seed`` and runs on ``threads`` CPU threads (default: :func:`default_threads`, 2
    unless the machine is busy; torch's global setting is restored afterwards). The model is left
    in eval mode.

    >>> from edgefit.examples import get_example, load_digits_splits
    >>> model = get_example("digits-cnn").build(width=0.25, depth=0.5, pretrained=False)
    >>> report = train_digits_cnn(model, load_digits_splits(), epochs=1)
    >>> 0.0 <= report.val_accuracy <= 1.0
    True
    """
    recipe = replace(recipe or TrainRecipe(), **({"epochs": epochs} if epochs is not None else {}))
    x, y = (torch.as_tensor(a) for a in splits["train"])
    if teacher is not None:
        teacher.eval()
    history: list[tuple[int, float, float]] = []
    threads = threads or default_threads()
    start = time.perf_counter()
    with _cpu_setup(model, threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        gen = torch.Generator().manual_seed(recipe.seed)
        opt = torch.optim.AdamW(
            model.parameters(), lr=recipe.max_lr, weight_decay=recipe.weight_decay
        )
        steps = recipe.epochs * math.ceil(len(x) / recipe.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.max_lr, total_steps=steps)
        bar, task = _progress(progress, recipe.epochs)
        with bar:
            for epoch in range(1, recipe.epochs + 1):
                loss = _train_epoch(model, teacher, x, y, opt, sched, recipe, gen)
                val = evaluate_accuracy(model, *splits["val"])
                history.append((epoch, loss, val))
                bar.update(task, advance=1, stats=f"loss {loss:.3f}  val acc {val:.1%}")
    model.eval()
    seconds = time.perf_counter() - start
    return TrainReport(
        recipe.epochs, seconds, threads, history[-1][1], history[-1][2], tuple(history)
    )


def evaluate_accuracy(
    model: torch.nn.Module,
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    batch_size: int = 512,
) -> float:
    """Top-1 accuracy (a fraction in [0, 1]) of ``model`` on inputs ``x`` and integer labels ``y``.
    Runs in eval mode without gradients; the model's train/eval mode is restored afterwards.

    >>> from edgefit.examples import get_example, load_digits_splits
    >>> x, y = load_digits_splits()["test"]
    >>> 0.0 <= evaluate_accuracy(get_example("digits-cnn").build(pretrained=False), x, y) <= 1.0
    True
    """
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    was_training = model.training
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            pred = model(x[start : start + batch_size]).argmax(dim=1)
            correct += int((pred == y[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(x), 1)
