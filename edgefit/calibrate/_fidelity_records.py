"""The reports of `edgefit fidelity` as typed, frozen records, one per kind (see
:mod:`edgefit.calibrate._fidelity_api`), so what prints them reads attributes
(``row.measured_s``, ``stats.kendall_tau``) rather than string keys.

The report dict stays what `--json` prints and the one source of every figure; each record is read
from it by :func:`edgefit._view.view` (the fields a record names; other keys are left alone, and
values are kept as the report holds them, so text printed from either is the same).

>>> s = record_of("zoo", {"median_abs_error": 0.05, "within_10pct": 0.9, "within_20pct": 1.0,
...     "kendall_tau": 0.8, "measurements": 1, "models": 1})
>>> s.rows, s.kendall_tau
((), 0.8)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgefit._view import view


@dataclass(frozen=True)
class HostRow:
    """One zoo model at one thread count: measured here against the learned estimate."""

    model: str
    family: str
    recipe: str
    threads: int
    measured_s: float
    estimated_s: float
    error: float
    covered: bool


@dataclass(frozen=True)
class ThreadStats:
    """The figures of one thread count's rows (``int8_*``: whether int8 being slower or faster
    than fp32 was caught by the estimate)."""

    points: int
    median_abs_error: float
    within_10pct: float
    within_25pct: float
    kendall_tau: float
    interval_coverage: float
    median_spread: float
    int8_slower: int
    int8_slower_caught: int
    int8_faster: int
    int8_faster_caught: int
    # "a of b": timed rounds left out as disturbed (absent in records written before)
    rounds_left_out: str = ""
    # points still over 1.2× their 1-thread time after being timed again (the host's slow mode)
    slower_than_1_thread: int = 0
    # points timed again for running over 1.2× their 1-thread time (absent before)
    retimed: int = 0


@dataclass(frozen=True)
class HostFidelity:
    """``kind == "host"``: the learned host-cpu profile against the fidelity zoo."""

    per_threads: dict[str, ThreadStats]
    rows: tuple[HostRow, ...]


@dataclass(frozen=True)
class ZooRow:
    model: str
    dtype: str
    macs: float
    measured_s: float
    estimated_s: float
    error: float


@dataclass(frozen=True)
class ZooFidelity:
    """``kind == "zoo"``: a catalog calibration profile against the model zoo."""

    median_abs_error: float
    within_10pct: float
    within_20pct: float
    kendall_tau: float
    measurements: int
    models: int
    rows: tuple[ZooRow, ...] = ()


@dataclass(frozen=True)
class Figures:
    """Median and largest |error| over some points (None: no point)."""

    points: int
    median_abs_error: float | None
    max_abs_error: float | None


@dataclass(frozen=True)
class CheckRow:
    """One published point against the estimate scaled to its clock."""

    id: str
    unit: str
    metric: str
    published: float
    clock_scaled_estimate: float
    error: float
    confidence: str


@dataclass(frozen=True)
class CheckFidelity:
    """``kind == "check"``: published points checking an estimate calibrated another way."""

    target: str
    method: str
    points: int
    median_abs_error: float | None
    max_abs_error: float | None
    by_confidence: dict[str, Figures]
    rows: tuple[CheckRow, ...]


@dataclass(frozen=True)
class Fit:
    """The published fit on all points: efficiency and overhead multipliers, and the active
    power at 1 V (None: no energy point)."""

    k_e: float
    k_o: float
    power_w_at_1v: float | None


@dataclass(frozen=True)
class PublishedRow:
    """One published point and its estimate predicted leaving its run out (None: no other point
    of that metric to fit on)."""

    id: str
    model: str
    precision: str
    scenario: str
    batch: int | None
    setting: str
    metric: str
    unit: str
    published: float
    loo_estimate: float | None
    loo_error: float | None
    fitted_estimate: float | None
    datasheet_estimate: float | None
    confidence: str
    source: str


@dataclass(frozen=True)
class PublishedFidelity:
    """``kind == "published"``: the estimate against a target's published measurements."""

    target: str
    proxy: str | None
    points: int
    predicted: int
    parameters: int
    loo_median_abs_error: float | None
    loo_max_abs_error: float | None
    datasheet_median_abs_error: float | None
    datasheet_max_abs_error: float | None
    fit: Fit | None
    rows: tuple[PublishedRow, ...]
    written: str | None


FidelityRecord = HostFidelity | ZooFidelity | CheckFidelity | PublishedFidelity

_RECORDS: dict[str, type[FidelityRecord]] = {
    "host": HostFidelity,
    "zoo": ZooFidelity,
    "check": CheckFidelity,
    "published": PublishedFidelity,
}


def record_of(kind: str, report: Mapping[str, Any]) -> FidelityRecord:
    """The report of a fidelity check of ``kind`` as its typed record."""
    return view(_RECORDS[kind], report)
