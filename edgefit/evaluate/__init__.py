"""Accuracy on the user's data (labels) or fidelity to the original model (no labels).

>>> from edgefit.evaluate import load_npz, score
>>> data = load_npz("eval.npz")                 # doctest: +SKIP
"""

from edgefit.evaluate._data import EvalData, check_data, load_npz
from edgefit.evaluate._metrics import METRICS, Score, run_outputs, score, sqnr_db

__all__ = [
    "METRICS",
    "EvalData",
    "Score",
    "check_data",
    "load_npz",
    "run_outputs",
    "score",
    "sqnr_db",
]
