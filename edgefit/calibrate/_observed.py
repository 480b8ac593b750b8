"""The closed loop: latencies edgefit measured outside calibration, kept for `calibrate --refit`.

When `edgefit bench` (onnxruntime, this machine), `edgefit check` (host-cpu) or `edgefit optimize`
(host-cpu, the final pick) has timed an ONNX model, the model is lowered and profiled once more,
after the timing (never beside it), and the run is appended to ``<cache>/measured/<machine
id>.jsonl`` (``EDGEFIT_MEASURED_DIR`` overrides the folder; the test suite points it at a temporary
one): one JSON line per model, with its kernels (op, shapes, in-network times) and the whole-run
time the command measured. `edgefit calibrate --refit` adds the lines of the profile's own machine
to the corpus timings it fits on, and the profile's ``training["observed"]`` says how many there
were and which command measured them. Nothing else reads them: a profile changes only through
`calibrate`. `edgefit fidelity` does not record: its zoo is the held-out set.

The whole-run time is the measuring command's (bench and check: the p50 of a child process's
timed runs; optimize: the final pick's interleaved median), not calibration's interleaved quiet
rounds of the corpus; the kernel times come from the same profiler run calibration uses. A line
that cannot be read (a write cut short by a kill) is skipped and counted.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from edgefit._resources import user_cache_dir
from edgefit.calibrate._collect import ModelRun, runs_from_dict, runs_to_dict
from edgefit.estimate._fingerprint import Fingerprint, this_machine
from edgefit.estimate._learned import precision_class
from edgefit.estimate._lower_ort import lower

OBSERVED_FAMILY = "measured "  # an observed run's family: "measured <source>"
PROFILED_RUNS = 12  # the profiler runs behind each kernel time (as `calibrate --quick`)


def observed_path(machine: Fingerprint, folder: Path | None = None) -> Path:
    """The file of ``machine``'s observed runs, in ``folder`` (default: ``EDGEFIT_MEASURED_DIR``,
    else ``<cache>/measured``)."""
    default = os.environ.get("EDGEFIT_MEASURED_DIR") or user_cache_dir() / "measured"
    return Path(folder or default) / f"{machine.id}.jsonl"


def record(
    model: Path,
    *,
    threads: int,
    measured_s: float,
    source: str,
    machine: Fingerprint,
    folder: Path | None = None,
) -> ModelRun:
    """Profile ``model`` (an ONNX file just timed at ``measured_s`` by ``source``) and append
    the run to ``machine``'s file; returns the run."""
    data = Path(model).read_bytes()
    low = lower(data, threads=threads, runs=PROFILED_RUNS, warmup=3)
    run = ModelRun(
        # cross-validation folds by network name: two files of one name are two networks
        name=f"{Path(model).stem}-{hashlib.sha256(data).hexdigest()[:10]}",
        family=OBSERVED_FAMILY + source,
        recipe=precision_class(low),
        threads=threads,
        lowered=low,
        measured_s=float(measured_s),
    )
    line = {
        "at": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": source,
        "run": runs_to_dict([run])[0],
    }
    path = observed_path(machine, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    # one write of one line: a kill leaves at most a torn last line, which `load` skips
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(line, separators=(",", ":")) + "\n")
    return run


def keep(model: Path, *, threads: int, measured_s: float, source: str) -> dict:
    """:func:`record` on this machine for a command that measured ``model``: ``{"path", "error"}``
    (the file kept in, or why not). A failure here loses the record, never the command's result."""
    machine = this_machine("onnxruntime")
    try:
        record(model, threads=threads, measured_s=measured_s, source=source, machine=machine)
    except (OSError, RuntimeError, ValueError) as exc:  # onnxruntime's errors are RuntimeErrors
        return {"path": None, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    return {"path": str(observed_path(machine)), "error": None}


@dataclass(frozen=True)
class Observed:
    """One machine's observed runs, as read back."""

    runs: list[ModelRun]
    skipped: int  # lines that could not be read

    def summary(self) -> dict:
        sources: dict[str, int] = {}
        for r in self.runs:
            key = r.family.removeprefix(OBSERVED_FAMILY)
            sources[key] = sources.get(key, 0) + 1
        return {"runs": len(self.runs), "sources": sources, "unreadable_lines": self.skipped}


def load(machine: Fingerprint, folder: Path | None = None) -> Observed:
    """``machine``'s observed runs (none where it has no file)."""
    path = observed_path(machine, folder)
    if not path.is_file():
        return Observed([], 0)
    runs, skipped = [], 0
    for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not text.strip():
            continue
        try:
            runs += runs_from_dict([json.loads(text)["run"]])
        except (ValueError, KeyError, TypeError):
            skipped += 1
    return Observed(runs, skipped)
