"""Small trained tasks on real, bundled data for bench/test_bench_vs_defaults.py.

Only data that ships offline is used: the UCI digits that edgefit ships (1,797 handwritten digits,
the fixed 60/20/20 split of ``edgefit.examples.load_digits_splits``). No labelled audio or other
1-D sensor recording ships with any installed package (scipy's and CPython's .wav files are codec
test tones and a single pluck, with no labels), so the "1-D audio" task is an audio-style 1-D
convolutional net over the closest real 1-D signal at hand: each digit (at 16×16) read as a
256-sample sequence, row by row. Say so wherever its numbers appear.

Each task trains in seconds (seeded, one thread) and is cached like edgefit's examples
(``examples_cache_dir()``, plain state_dicts loaded with ``weights_only=True``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgefit.examples._cache import cache_key, examples_cache_dir, load_state_dict, save_state_dict

SEED = 0
VERSION = 2


def _ds(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class DSCNN(nn.Module):
    """MobileNet-style: a stride-2 3×3 stem, five depthwise-separable blocks (32 → 256 ch), GAP,
    linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU()
        )
        self.blocks = nn.Sequential(
            _ds(32, 64, 1), _ds(64, 128, 2), _ds(128, 128, 1), _ds(128, 256, 2), _ds(256, 256, 1)
        )
        self.head = nn.Linear(256, 10)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 256),
            nn.ReLU(),
            nn.Linear(256, 10),
        )

    def forward(self, x):
        return self.net(x)


class Attention(nn.Module):
    """A 2-layer transformer encoder over the 16 rows of a 16×16 digit (16 tokens × 16 pixels),
    d=128, 4 heads, feed-forward 256."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(16, 128)
        self.pos = nn.Parameter(torch.zeros(1, 16, 128))
        layer = nn.TransformerEncoderLayer(128, 4, 256, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        tokens = self.embed(x.reshape(x.shape[0], 16, 16)) + self.pos
        return self.head(self.encoder(tokens).mean(1))


class Conv1D(nn.Module):
    """Audio-style 1-D convnet (raw-waveform front end): 4 conv1d layers, GAP, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(1, 64, 9, stride=2, padding=4),
            nn.BatchNorm1d(64),
            nn.ReLU(),
            nn.Conv1d(64, 128, 5, stride=2, padding=2),
            nn.BatchNorm1d(128),
            nn.ReLU(),
            nn.Conv1d(128, 128, 3, padding=1),
            nn.BatchNorm1d(128),
            nn.ReLU(),
            nn.Conv1d(128, 256, 3, stride=2, padding=1),
            nn.BatchNorm1d(256),
            nn.ReLU(),
        )
        self.head = nn.Linear(256, 10)

    def forward(self, x):
        return self.head(self.net(x.reshape(x.shape[0], 1, 256)).mean(2))


@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    build: Callable[[], nn.Module]
    resolution: int  # digits upsampled to this size
    shape: tuple[int, ...]  # one sample as the model takes it (batch 1)
    epochs: int


TASKS = {
    t.name: t
    for t in (
        Task("digits-dscnn", "depthwise-heavy CNN", DSCNN, 32, (1, 1, 32, 32), 8),
        Task("digits-mlp", "MLP", MLP, 16, (1, 256), 30),
        Task("digits-attention", "attention (transformer encoder)", Attention, 16, (1, 256), 20),
        Task(
            "digits-1d",
            "1-D conv, audio-style (digits read as 256-sample signals)",
            Conv1D,
            16,
            (1, 256),
            20,
        ),
    )
}


def splits(task: Task) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from edgefit.examples import load_digits_splits

    data = load_digits_splits(task.resolution)
    return {
        k: (x.reshape((len(x),) + task.shape[1:]).astype(np.float32), y)
        for k, (x, y) in data.items()
    }


def trained(task: Task) -> nn.Module:
    """The task's model, trained (Adam, seeded, one thread) or loaded from the cache."""
    key = cache_key(
        {"bench-task": task.name, "version": VERSION, "epochs": task.epochs, "seed": SEED}
    )
    path = examples_cache_dir() / f"bench-{task.name}-{key}.pt"
    torch.manual_seed(SEED)
    model = task.build()
    state = load_state_dict(path)
    if state is not None:
        model.load_state_dict(state)
        return model.eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x, y = (torch.from_numpy(a) for a in splits(task)["train"])
        opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
        gen = torch.Generator().manual_seed(SEED)
        model.train()
        for _ in range(task.epochs):
            for idx in torch.randperm(len(x), generator=gen).split(64):
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    save_state_dict(model.state_dict(), path)
    return model.eval()


def export(task: Task, folder: Path) -> Path:
    import onnx

    from edgefit.graph._torch import export_torch

    path = folder / f"{task.name}.onnx"
    onnx.save(export_torch(trained(task), task.shape), str(path))
    return path


def accuracy_fn(x: np.ndarray, y: np.ndarray) -> Callable[[Path], float]:
    """``fn(onnx_path) -> accuracy`` on ``(x, y)``, one sample per run (the models take batch
    1)."""

    def accuracy(path: Path) -> float:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.log_severity_level = 1, 3
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        hits = sum(
            int(np.argmax(sess.run(None, {name: x[i : i + 1]})[0]) == y[i]) for i in range(len(x))
        )
        return hits / len(x)

    return accuracy
