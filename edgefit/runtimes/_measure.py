"""Work in a child process: the run-count rule, the parent side of the JSON protocol, crash
isolation.

The parent writes ``request.json`` (the backend's ``module:Class``, which must be importable in a
fresh interpreter; the artifact; the settings) and, when given, ``inputs.npz``
into a private temporary folder, then runs ``python -m edgefit.runtimes._child request.json`` in
its own session (process group). The child writes ``result.json`` with the raw per-run latencies,
its peak RSS and its environment. Anything else — a segfault, ``os._exit``, the OOM killer, a hang
past ``timeout_s`` — becomes a :class:`~edgefit.runtimes.MeasurementError` here, and edgefit keeps
running. Conversions whose converter may crash (LiteRT, Vela) run the same way
(:func:`convert_in_child`).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from edgefit._io import TEMP_SUFFIX, remove_stale_temps
from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.runtimes._base import Artifact, MeasurementError, Timing

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_import("numpy")

STDERR_TAIL_CHARS = 2000
T = TypeVar("T")


@dataclass(frozen=True)
class MeasureSettings:
    """How to time one artifact. Validated on creation.

    The run-count rule: discard ``warmup`` runs; then time at least ``runs`` runs, and keep going
    until there are ``min_runs`` samples (200 by default, so that p99 is interpolated between real
    samples rather than being the maximum) — unless ``budget_s`` seconds of timed runs have passed
    first. ``runs`` is never cut short. ``timeout_s`` bounds the whole child (start-up, load,
    warm-up, runs). ``threads`` is 1 by default — one thread is the most repeatable figure on a
    shared machine, since a thread pool waits at every barrier for whichever of its threads was
    descheduled — and None means every CPU the child may use; ``cpus`` pins the child to those CPUs
    with ``os.sched_setaffinity`` before the runtime loads (Linux only).

    >>> MeasureSettings(runs=50).min_runs
    200
    """

    warmup: int = 10
    runs: int = 100
    threads: int | None = 1
    cpus: tuple[int, ...] | None = None
    min_runs: int = 200
    budget_s: float = 10.0
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        def bad(option: str, value: Any, allowed: str) -> EdgefitError:
            return EdgefitError(
                f"{option}={value!r} is not allowed", where=f"--{option}", fix=f"use {allowed}"
            )

        if not (isinstance(self.warmup, int) and self.warmup >= 0):
            raise bad("warmup", self.warmup, "an integer ≥ 0")
        if not (isinstance(self.runs, int) and self.runs >= 1):
            raise bad("runs", self.runs, "an integer ≥ 1")
        if self.threads is not None and not (isinstance(self.threads, int) and self.threads >= 1):
            raise bad("threads", self.threads, "an integer ≥ 1")
        if not (isinstance(self.min_runs, int) and self.min_runs >= 1):
            raise bad("min-runs", self.min_runs, "an integer ≥ 1")
        if not self.budget_s > 0:
            raise bad("budget-s", self.budget_s, "positive seconds")
        if not self.timeout_s > 0:
            raise bad("timeout-s", self.timeout_s, "positive seconds")
        if self.cpus is not None:
            object.__setattr__(self, "cpus", tuple(int(c) for c in self.cpus))
            allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
            if allowed is None:
                raise bad("cpus", self.cpus, "no pinning: this OS has no sched_setaffinity")
            if not self.cpus or not set(self.cpus) <= allowed:
                raise bad(
                    "cpus",
                    self.cpus,
                    f"a non-empty subset of the CPUs this process may use {sorted(allowed)}",
                )


def run_queue_wait_ns() -> int | None:
    """Nanoseconds this process's threads have spent runnable but waiting for a CPU (Linux
    schedstat)."""
    try:
        total = 0
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/schedstat") as fh:
                total += int(fh.read().split()[1])
        return total
    except (OSError, ValueError, IndexError):
        return None


# above this share of its time spent waiting for a CPU another process held, a timing includes
# foreign load and will not repeat on a quiet machine
QUIET_CPU_WAIT = 0.05
QUIET_ATTEMPTS = 4


def least_disturbed(
    measure: Callable[[], T], wait_of: Callable[[T], float | None], *, attempts: int
) -> T:
    """The one busy-machine guard: ``measure()`` again while another process kept this one
    waiting for a CPU (``wait_of`` above :data:`QUIET_CPU_WAIT`; None, off Linux, counts as
    quiet), at most ``attempts`` times, and keep the least disturbed result."""
    best: T | None = None
    for _ in range(max(1, attempts)):
        result = measure()
        if best is None or (wait_of(result) or 0.0) < (wait_of(best) or 0.0):
            best = result
        if (wait_of(result) or 0.0) <= QUIET_CPU_WAIT:
            break
    assert best is not None  # at least one attempt
    return best


def measure_quietly(rt, artifact: Artifact, *, attempts: int = QUIET_ATTEMPTS, **kw) -> Timing:
    """``rt.measure(artifact, **kw)`` under :func:`least_disturbed`: what `edgefit optimize` and
    `edgefit check` time a candidate with."""
    return least_disturbed(
        lambda: rt.measure(artifact, **kw), lambda t: t.cpu_wait_fraction, attempts=attempts
    )


def timed_loop(
    session, inputs: Mapping[str, Any], settings: MeasureSettings, threads: int = 1
) -> tuple[list[float], float | None]:
    """Warm up, then time runs by the rule of :class:`MeasureSettings`; the garbage collector is
    paused.

    Returns the per-run latencies (s) and the CPU-wait fraction of the timed part (see ``Timing``).
    """
    for _ in range(settings.warmup):
        session.run(inputs)
    samples: list[float] = []
    gc.collect()
    # a collection inside a timed run is noise that belongs to Python, not the runtime
    gc.disable()
    try:
        waited = run_queue_wait_ns()
        start = time.perf_counter()
        while True:
            samples.append(session.timed_run(inputs))
            n = len(samples)
            if n >= settings.runs and (
                n >= settings.min_runs or time.perf_counter() - start >= settings.budget_s
            ):
                break
        elapsed = time.perf_counter() - start
        after = run_queue_wait_ns()
    finally:
        gc.enable()
    if waited is None or after is None or elapsed <= 0:
        return samples, None
    return samples, min(1.0, max(0.0, (after - waited) / 1e9 / (elapsed * threads)))


def describe_exit(returncode: int) -> str:
    """``-11`` → ``"killed by signal SIGSEGV (-11)"``; ``3`` → ``"exited with status 3"``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by signal {name} ({returncode})"
    return f"exited with status {returncode}"


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-STDERR_TAIL_CHARS:]
    except OSError:
        return ""


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the edgefit package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # our own child's own session: nothing else is in it
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _private_folder(kind: str) -> tempfile.TemporaryDirectory:
    """A temporary folder for one child's request and result; those of a parent killed with ``kill
    -9`` (which never cleaned up) are removed first."""

    name = f"edgefit-{kind}"
    remove_stale_temps(tempfile.gettempdir(), name=name)
    return tempfile.TemporaryDirectory(prefix=f".{name}.{os.getpid()}.", suffix=TEMP_SUFFIX)


def run_child(
    request: dict,
    folder: Path,
    *,
    timeout_s: float,
    label: str,
    where: str,
    doing: str,
    timeout_fix: str,
) -> dict:
    """Run ``python -m edgefit.runtimes._child`` on ``request`` (written to
    ``folder/request.json``) in its own session, and return what it wrote to ``request["result"]``.

    A crash (a signal, ``os._exit``, the OOM killer) or a hang past ``timeout_s`` — the child and
    anything it started are killed — raises :class:`MeasurementError` naming ``label`` and
    ``doing`` ("measurement", "conversion"); a Python exception in the child is re-raised here as
    one, or as the
    :class:`EdgefitError` it was.
    """
    (folder / "request.json").write_text(json.dumps(request, default=str))
    stderr_path = folder / "stderr.txt"
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgefit.runtimes._child", str(folder / "request.json")],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            env=_child_env(),
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise MeasurementError(
                f"{label} {doing} timed out after {timeout_s:g} s and was killed",
                returncode=None,
                stderr_tail=_tail(stderr_path),
                where=where,
                fix=timeout_fix,
            ) from None
        except BaseException:  # KeyboardInterrupt: never leave the child behind
            _kill_group(proc)
            raise
    result_path = Path(request["result"])
    try:
        result = json.loads(result_path.read_text()) if result_path.exists() else None
    except ValueError:  # cannot happen with the child's atomic write; a crash reads as no result
        result = None
    if result and "error" in result:
        _raise_child_error(
            result["error"], f"{label} {doing}", where, returncode, _tail(stderr_path)
        )
    if returncode != 0 or result is None:
        tail = _tail(stderr_path)
        last = tail.strip().splitlines()[-1] if tail.strip() else "no output on stderr"
        raise MeasurementError(
            f"{label} {doing} child {describe_exit(returncode)}: {last[:300]}",
            returncode=returncode,
            stderr_tail=tail,
            where=where,
            fix="the runtime crashed on this model; see stderr_tail, try another precision "
            "or runtime",
        )
    return result


def measure_in_child(
    runtime: str, artifact: Artifact, inputs: Mapping[str, Any] | None, settings: MeasureSettings
) -> Timing:
    """Run the timing child for ``runtime`` (``"module:Class"`` of the backend) and turn its
    result, or its failure, into a :class:`Timing`."""
    with _private_folder("measure") as tmp:
        folder = Path(tmp)
        request = {
            "mode": "measure",
            "runtime": runtime,
            "artifact": artifact.to_dict(),
            "settings": asdict(settings),
            "inputs": None,
            "result": str(folder / "result.json"),
        }
        if inputs is not None:
            arrays: dict[str, Any] = {k: np.asarray(v) for k, v in inputs.items()}
            np.savez(folder / "inputs.npz", **arrays)
            request["inputs"] = str(folder / "inputs.npz")
        result = run_child(
            request,
            folder,
            timeout_s=settings.timeout_s,
            label=artifact.runtime,
            where=str(artifact.path),
            doing="measurement",
            timeout_fix="raise the timeout, or lower --runs/--warmup",
        )
    return Timing.from_samples(
        result["samples"],
        peak_rss_bytes=result["peak_rss_bytes"],
        cpu_wait_fraction=result.get("cpu_wait_fraction"),
        environment=result["environment"],
    )


def convert_in_child(
    runtime: str,
    model_path: str | Path,
    precision: str,
    out_dir: str | Path,
    *,
    calibration: list[Mapping[str, Any]] | None = None,
    timeout_s: float = 900.0,
) -> Artifact:
    """``get_runtime(runtime).convert(onnx.load(model_path), precision, out_dir, calibration=…)``
    in a child process: a converter that crashes or hangs (LiteRT's, Vela's …) costs that artifact,
    not the caller."""
    if not timeout_s > 0:
        raise EdgefitError(
            f"timeout {timeout_s!r} s is not allowed",
            where="timeout_s",
            fix="give positive seconds",
        )
    with _private_folder("convert") as tmp:
        folder = Path(tmp)
        request = {
            "mode": "convert",
            "runtime": runtime,
            "model": str(model_path),
            "precision": precision,
            "out_dir": str(out_dir),
            "calibration": None,
            "result": str(folder / "result.json"),
        }
        if calibration is not None:
            feeds: dict[str, Any] = {
                f"{i}{_SEP}{name}": np.asarray(v)
                for i, feed in enumerate(calibration)
                for name, v in feed.items()
            }
            np.savez(folder / "calibration.npz", **feeds)
            request["calibration"] = str(folder / "calibration.npz")
        result = run_child(
            request,
            folder,
            timeout_s=timeout_s,
            label=runtime,
            where=str(model_path),
            doing="conversion",
            timeout_fix="convert this model by hand with a longer time limit",
        )
    return Artifact.from_dict(result["artifact"])


_SEP = "::"  # calibration.npz keys: "<sample index>::<input name>"


def load_calibration(path: str | Path) -> list[dict[str, Any]]:
    """The calibration feeds :func:`convert_in_child` saved (in sample order)."""
    feeds: dict[int, dict[str, Any]] = {}
    with np.load(path) as data:
        for key in data.files:
            index, _, name = key.partition(_SEP)
            feeds.setdefault(int(index), {})[name] = data[key]
    return [feeds[i] for i in sorted(feeds)]


def _raise_child_error(error: dict, doing: str, where: str, returncode: int, tail: str):
    if error.get(
        "edgefit"
    ):  # a usage error found in the child (bad inputs …): same exit code as here
        raise EdgefitError(error["what"], where=error.get("where"), fix=error.get("fix"))
    raise MeasurementError(
        f"{doing} failed: {error['type']}: {error['message'][:300]}",
        returncode=returncode,
        stderr_tail=error.get("traceback", "")[-STDERR_TAIL_CHARS:] or tail,
        where=where,
    )
