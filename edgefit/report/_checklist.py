"""The production-ready checklist: accuracy floor, envelope fit, export parity, determinism.

Each item is ``pass``, ``fail`` or ``unknown`` (the run could not tell: say what would), with the
evidence in one sentence that carries its numbers, units and sources.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgefit import _format as fmt
from edgefit.report._target import UNIT_FMT

if TYPE_CHECKING:
    from edgefit.records import DoneCandidate, Results

STATUSES = ("pass", "fail", "unknown")
NOISY_CPU_WAIT = 0.05  # above this share of CPU wait, a measurement includes other processes' load


@dataclass(frozen=True)
class Item:
    name: str
    status: str
    evidence: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


def _accuracy(res: Results, win: DoneCandidate | None) -> Item:
    sel = res.selection
    if win is None:
        return Item("accuracy floor", "fail", f"no candidate qualified: {sel.reason}")
    acc = win.accuracy
    ok = acc.value >= sel.accuracy_floor - 1e-12
    return Item(
        "accuracy floor",
        "pass" if ok else "fail",
        f"{acc.kind} {acc.value:.4f} {'≥' if ok else '<'} floor {sel.accuracy_floor:.4f} "
        f"(baseline {res.baseline.accuracy:.4f}; measured with onnxruntime on "
        f"{acc.data or '?'}, "
        f"n = {acc.n})",
    )


def _envelope(win: DoneCandidate | None) -> Item:
    if win is None:
        return Item("envelope fit", "unknown", "no chosen model")
    checks = win.checks
    bad = [c for c in checks if not c.fits]
    if bad:
        text = "; ".join(
            f"{c.constraint}: {_show(c.unit, c.value)} > {_show(c.unit, c.limit)} ({c.source})"
            for c in bad
        )
        return Item(
            "envelope fit", "fail", f"{len(bad)} of {len(checks)} constraints exceeded: {text}"
        )
    sources = sorted({c.source for c in checks})
    hedge = (
        " (estimates from datasheet figures carry a ±50 % error bar: confirm on the device)"
        if "datasheet" in sources
        else ""
    )
    return Item(
        "envelope fit",
        "pass",
        f"all {len(checks)} constraints fit (sources: {', '.join(sources)}){hedge}",
    )


def _show(unit: str, value: float) -> str:
    return UNIT_FMT.get(unit, lambda v: f"{v:g}")(value)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _parity(win: DoneCandidate | None, results_dir: Path | None) -> Item:
    name = "export parity"
    if win is None:
        return Item(name, "unknown", "no chosen model was exported")
    exported = results_dir / "model.onnx" if results_dir is not None else None
    scored = Path(win.onnx)
    if exported is None or not exported.is_file():
        return Item(
            name,
            "unknown",
            "the exported model.onnx is not next to results.json; re-run `edgefit optimize` "
            "or keep the output folder together",
        )
    if not scored.is_file():
        return Item(
            name,
            "unknown",
            f"the evaluated file {scored} is gone, so model.onnx cannot be compared with it",
        )
    a, b = _sha256(exported), _sha256(scored)
    if a != b:
        return Item(
            name,
            "fail",
            f"model.onnx (sha256 {a[:12]}…) differs from the evaluated candidate "
            f"(sha256 {b[:12]}…)",
        )
    return Item(
        name,
        "pass",
        f"model.onnx is byte-identical to the candidate whose accuracy and latency are "
        f"reported (sha256 {a[:12]}…): the numbers are the exported file's own, measured with "
        f"onnxruntime",
    )


def _determinism(win: DoneCandidate | None, target) -> Item:
    name = "determinism (p99, jitter)"
    if win is None:
        return Item(name, "unknown", "no chosen model")
    lat = win.latency
    if lat.source != "measured":
        return Item(
            name,
            "unknown",
            "latency was estimated, not measured: p99 and jitter need a measurement on the "
            "device (`edgefit bench MODEL --runtime …` where its runtime is installed)",
        )
    env = getattr(target, "envelope", None)
    parts, ok = [], True
    p99, jitter = lat.p99_s, lat.jitter_s
    if env is not None:
        fits = p99 <= env.latency_budget_s.value
        ok &= fits
        budget = env.latency_budget_s.value
        parts.append(f"p99 {fmt.seconds(p99)} {'≤' if fits else '>'} budget {fmt.seconds(budget)}")
    else:
        parts.append(f"p99 {fmt.seconds(p99)} (target not loaded: budget unknown)")
    if jitter is not None and env is not None and env.jitter_s is not None:
        fits = jitter <= env.jitter_s.value
        ok &= fits
        parts.append(
            f"jitter {fmt.seconds(jitter)} {'≤' if fits else '>'} "
            f"{fmt.seconds(env.jitter_s.value)}"
        )
    elif jitter is not None:
        parts.append(f"jitter {fmt.seconds(jitter)} (the target sets no jitter limit)")
    wait = lat.cpu_wait_fraction
    detail = f"measured on {lat.runtime}, {lat.threads} thread(s), {lat.n_runs} runs"
    if wait is not None and wait > NOISY_CPU_WAIT:
        detail += (
            f"; {wait:.0%} CPU wait: other processes shared the CPU, so the tail is pessimistic"
        )
    return Item(name, "pass" if ok else "fail", f"{'; '.join(parts)} ({detail})")


def checklist(
    res: Results,
    win: DoneCandidate | None,
    base: DoneCandidate | None,
    target,
    results_dir: Path | None,
) -> list[Item]:
    """The four checks a model must pass before it ships (see module docstring)."""
    return [
        _accuracy(res, win),
        _envelope(win),
        _parity(win, results_dir),
        _determinism(win, target),
    ]


def verdict(items: list[Item]) -> str:
    """``ready`` when every item passes, ``not ready`` when one fails, else ``unverified``."""
    if any(i.status == "fail" for i in items):
        return "not ready"
    return "ready" if all(i.status == "pass" for i in items) else "unverified"
