"""The digits data set shipped with edgefit, and its fixed train / val / test split.

``data/digits.csv.gz`` is the UCI "Optical Recognition of Handwritten Digits" test set (1797 8×8
images, pixel values 0..16; Alpaydin & Kaynak 1998, CC BY 4.0) as bundled by scikit-learn; see
``data/LICENSE-digits.txt``. numpy loads on first use (:func:`edgefit._lazy.lazy_import`), to
keep ``import edgefit.examples`` light.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from edgefit._lazy import lazy_import

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_import("numpy")

DIGITS_FILE = Path(__file__).resolve().parent / "data" / "digits.csv.gz"
DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)  # train / val / test, stratified per class
SPLIT_SEED = 0

Splits = dict[str, tuple["np.ndarray", "np.ndarray"]]


def data_sha256() -> str:
    """Checksum of the shipped data file (part of the trained model's cache key)."""
    return hashlib.sha256(DIGITS_FILE.read_bytes()).hexdigest()


def _read_raw() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) float32 pixels in [0, 1] and (1797,) int64 labels."""
    with gzip.open(DIGITS_FILE, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    return (table[:, :64] / 16.0).astype(np.float32).reshape(-1, 8, 8), table[:, 64]


def _bilinear_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) matrix M with M @ v = v resized bilinearly (half-pixel centres, like
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``)."""
    src = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
    src = np.clip(src, 0, size_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, size_in - 1)
    frac = (src - lo).astype(np.float32)
    m = np.zeros((size_out, size_in), np.float32)
    np.add.at(m, (np.arange(size_out), lo), 1 - frac)
    np.add.at(m, (np.arange(size_out), hi), frac)
    return m


def _split_indices(labels: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SPLIT_SEED)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_train = round(len(idx) * SPLIT_FRACTIONS[0])
        n_val = round(len(idx) * SPLIT_FRACTIONS[1])
        for name, chunk in zip(parts, np.split(idx, [n_train, n_train + n_val]), strict=True):
            parts[name].append(chunk)
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def _resized(
    resolution: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], float, float]:
    """(N, 1, R, R) upsampled pixels, labels, split indices, and the training split's mean and
    std."""
    images, labels = _read_raw()
    m = _bilinear_matrix(8, resolution)
    images = np.einsum("ri,nij,cj->nrc", m, images, m)[:, None]  # (N, 1, R, R)
    index = _split_indices(labels)
    # normalization statistics come from the training split only (no peeking at val / test)
    return (
        images,
        labels,
        index,
        float(images[index["train"]].mean()),
        float(images[index["train"]].std()),
    )


@functools.lru_cache(maxsize=4)
def _splits_cached(resolution: int) -> Splits:
    images, labels, index, mean, std = _resized(resolution)
    images = ((images - mean) / std).astype(np.float32)
    return {name: (images[i], labels[i].astype(np.int64)) for name, i in index.items()}


def digits_normalization(resolution: int = 32) -> tuple[float, float]:
    """The (mean, std) :func:`load_digits_splits` normalizes with at ``resolution`` (training
    split's)."""
    _, _, _, mean, std = _resized(int(resolution))
    return mean, std


def load_digits_pixel_splits() -> Splits:
    """The same split as :func:`load_digits_splits`, as the raw 8×8 pixels scaled to [0, 1]:
    float32 ``(N, 1, 8, 8)``, not resized or normalized — what a device's sensor pipeline would
    hand a model that resizes and normalizes inside its graph.

    >>> load_digits_pixel_splits()["test"][0].shape
    (360, 1, 8, 8)
    """
    images, labels = _read_raw()
    index = _split_indices(labels)
    return {
        name: (images[i][:, None].astype(np.float32), labels[i].astype(np.int64))
        for name, i in index.items()
    }


def load_digits_splits(resolution: int = 32) -> Splits:
    """The fixed, stratified 60 / 20 / 20 split of the digits set, as ``{"train" | "val" | "test":
    (x, y)}``.

    ``x`` is float32 ``(N, 1, resolution, resolution)`` (8×8 upsampled bilinearly, scaled to [0,
    1], then normalized with the training split's mean and std); ``y`` is int64 labels 0..9. The
    same split comes back on every call and machine (seeded). Arrays are fresh copies, safe to
    modify.

    >>> s = load_digits_splits()
    >>> s["train"][0].shape, s["val"][0].shape, s["test"][0].shape
    ((1078, 1, 32, 32), (359, 1, 32, 32), (360, 1, 32, 32))
    """
    return {name: (x.copy(), y.copy()) for name, (x, y) in _splits_cached(int(resolution)).items()}
