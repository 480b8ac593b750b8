"""Gradient-boosted regression trees as plain arrays: trained with scikit-learn, stored as JSON,
evaluated with NumPy.

A profile must load safely (no pickle) and fast (no scikit-learn import at estimate time), so a
fitted ``HistGradientBoostingRegressor`` is flattened into five integer/float arrays over all its
trees' nodes plus the constant it starts from. :func:`TreeEnsemble.predict` walks every tree for
every row at once, level by level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgefit._lazy import lazy_import

if TYPE_CHECKING:
    from sklearn import ensemble as sk_ensemble
else:
    sk_ensemble = lazy_import("sklearn.ensemble")  # training only: estimates never load it


@dataclass(frozen=True)
class TreeEnsemble:
    base: float  # the ensemble's starting constant
    rate: float  # learning rate each tree's output is scaled by
    roots: np.ndarray  # int32, index of each tree's root node
    feature: np.ndarray  # int32, split feature per node (-1: leaf)
    threshold: np.ndarray  # float64, go left when x[feature] <= threshold
    left: np.ndarray  # int32, absolute node index
    right: np.ndarray  # int32
    value: np.ndarray  # float64, leaf output

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=float))
        rows = np.arange(len(x))
        total = np.full(len(x), self.base)
        for root in self.roots:
            node = np.full(len(x), root, dtype=np.int64)
            while True:
                feat = self.feature[node]
                inner = feat >= 0
                if not inner.any():
                    break
                go_left = x[rows, np.maximum(feat, 0)] <= self.threshold[node]
                node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
            total += self.rate * self.value[node]
        return total

    def to_dict(self) -> dict:
        return {
            "base": self.base,
            "rate": self.rate,
            "roots": self.roots.tolist(),
            "feature": self.feature.tolist(),
            "threshold": [round(float(t), 6) for t in self.threshold],
            "left": self.left.tolist(),
            "right": self.right.tolist(),
            "value": [round(float(v), 6) for v in self.value],
        }

    @classmethod
    def from_dict(cls, d: dict) -> TreeEnsemble:
        arrays = {
            k: np.asarray(d[k], dtype=np.int32) for k in ("roots", "feature", "left", "right")
        }
        n = len(arrays["feature"])
        for k in ("left", "right"):
            if len(arrays[k]) != n or (arrays[k] >= n).any():
                raise ValueError(f"tree arrays are inconsistent ({k})")
        if (arrays["roots"] >= n).any() or (arrays["roots"] < 0).any():
            raise ValueError("tree roots out of range")
        return cls(
            base=float(d["base"]),
            rate=float(d["rate"]),
            threshold=np.asarray(d["threshold"], dtype=float),
            value=np.asarray(d["value"], dtype=float),
            **arrays,
        )


def fit_ensemble(
    x: np.ndarray,
    y: np.ndarray,
    *,
    trees: int = 150,
    leaves: int = 15,
    rate: float = 0.1,
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> TreeEnsemble:
    """Fit scikit-learn's histogram gradient boosting on ``(x, y)`` and flatten its trees.

    Histogram boosting trains in seconds on tens of thousands of kernels; its split thresholds are
    real feature values (``num_threshold``: go left when ``x <= threshold``), and its leaf values
    already include the learning rate, so the flattened ensemble uses ``rate = 1``.
    """
    model = sk_ensemble.HistGradientBoostingRegressor(
        max_iter=trees,
        max_leaf_nodes=leaves,
        learning_rate=rate,
        min_samples_leaf=5,
        l2_regularization=0.1,
        early_stopping=False,
        random_state=seed,
    )
    model.fit(x, y, sample_weight=weights)
    roots, feature, threshold, left, right, value = [], [], [], [], [], []
    offset = 0
    for (predictor,) in model._predictors:  # noqa: SLF001 - the fitted trees; tested equal to model.predict
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        roots.append(offset)
        feature.append(np.where(leaf, -1, nodes["feature_idx"]))
        threshold.append(nodes["num_threshold"])
        left.append(np.where(leaf, 0, nodes["left"] + offset))
        right.append(np.where(leaf, 0, nodes["right"] + offset))
        value.append(nodes["value"])
        offset += len(nodes)
    base = float(np.ravel(model._baseline_prediction)[0])  # noqa: SLF001
    return TreeEnsemble(
        base=base,
        rate=1.0,
        roots=np.array(roots, np.int32),
        feature=np.concatenate(feature).astype(np.int32),
        threshold=np.concatenate(threshold),
        left=np.concatenate(left).astype(np.int32),
        right=np.concatenate(right).astype(np.int32),
        value=np.concatenate(value),
    )
