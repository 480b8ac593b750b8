"""Hold the planner against a real run: time a reference decoder on this CPU and compare with the
estimate.

The decoder (:mod:`edgefit.serve._reference`, random weights) is timed with torch on one thread (as
``edgefit bench`` and ``edgefit calibrate`` measure): the prefill of a ``prompt``-token prompt,
then one decode step at position ``prompt`` — repeated in place, so every run reads the same
``prompt`` cached tokens. Each run records its wall time and the measuring thread's CPU time; on a
shared machine the CPU time leaves out the time the thread waited for a core held by another
process (it keeps memory stalls, which are the decoder's own), so the comparison uses its median.
Importing this module is light; measuring needs torch.
"""

from __future__ import annotations

import gc
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from edgefit._lazy import lazy_import
from edgefit.errors import require
from edgefit.serve._arch import Architecture, load_architecture
from edgefit.serve._model import ServeModel

if TYPE_CHECKING:  # torch (the reference decoder) and pydantic (targets) load only when used
    from edgefit import targets
    from edgefit.serve import _reference
    from edgefit.targets import _host
else:
    targets, _host = lazy_import("edgefit.targets", "edgefit.targets._host")
    _reference = lazy_import("edgefit.serve._reference")


@dataclass(frozen=True)
class Measurement:
    """Measured prefill and decode times of one decoder on this machine (medians of the measuring
    thread's CPU time, seconds; the ``*_wall_s`` medians include waits for a CPU)."""

    model: str
    prompt_tokens: int
    prefill_s: float
    decode_s: float  # one output token at batch 1 with ``prompt_tokens`` tokens cached
    prefill_wall_s: float
    decode_wall_s: float
    runs: int
    environment: dict

    @property
    def decode_tokens_per_s(self) -> float:
        return 1.0 / self.decode_s

    def to_dict(self) -> dict:
        return {**asdict(self), "decode_tokens_per_s": self.decode_tokens_per_s}


def _time(fn, *, min_runs: int, budget_s: float, warmup: int) -> tuple[float, float, int]:
    """Medians of CPU time and wall time per call of ``fn`` (garbage collector paused)."""
    for _ in range(warmup):
        fn()
    cpu: list[float] = []
    wall: list[float] = []
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        while len(wall) < min_runs or time.perf_counter() - start < budget_s:
            c0, w0 = time.thread_time(), time.perf_counter()
            fn()
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - w0)
    finally:
        gc.enable()
    return statistics.median(cpu), statistics.median(wall), len(wall)


def measure_decoder(
    arch: Architecture | str = "gpt2", *, prompt: int = 128, seed: int = 0
) -> Measurement:
    """Time prefill and per-token decode of ``arch`` (random weights, fp32) on one CPU thread with
    torch."""
    torch = require("torch", extra="dev", purpose="measuring the reference decoder")

    arch = load_architecture(arch)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # torch then runs every kernel in this thread, whose CPU time we read
    try:
        model = _reference.ReferenceDecoder(arch, max_len=prompt + 1, seed=seed)
        tokens = torch.randint(
            0, arch.vocab_size, (1, prompt), generator=torch.Generator().manual_seed(seed)
        )
        pre_cpu, pre_wall, _ = _time(
            lambda: model.prefill(tokens), min_runs=3, budget_s=0.5, warmup=1
        )
        step = tokens[:, :1]
        dec_cpu, dec_wall, runs = _time(
            lambda: model.decode(step, prompt), min_runs=15, budget_s=1.0, warmup=3
        )
    finally:
        torch.set_num_threads(before)
    env = {
        "runtime": "torch",
        "runtime_version": torch.__version__,
        "threads": 1,
        "timer": "thread CPU time",
        "cpu": _host.probe_host().model,
        "machine": platform.machine(),
        "dtype": "fp32",
    }
    return Measurement(arch.name, prompt, pre_cpu, dec_cpu, pre_wall, dec_wall, runs, env)


def _estimate(measured: Measurement, target, runtime: str | None, use_calibration: bool) -> dict:
    model = ServeModel(
        load_architecture(measured.model),
        target,
        "fp32",
        "fp32",
        runtime=runtime,
        use_calibration=use_calibration,
    )
    decode, prefill = (
        model.decode(1, measured.prompt_tokens + 1),
        model.prefill(measured.prompt_tokens),
    )
    source = (
        f"calibrated estimate ({model.hw.calibrated})"
        if model.hw.calibrated
        else "datasheet estimate"
    )
    return {
        "source": source,
        "bandwidth": model.hw.bandwidth.provenance,
        "decode_s": decode.time_s,
        "decode_tokens_per_s": 1 / decode.time_s,
        "decode_bound": decode.bound,
        "prefill_s": prefill.time_s,
        "prefill_bound": prefill.bound,
        "decode_tokens_per_s_error": (1 / decode.time_s - measured.decode_tokens_per_s)
        / measured.decode_tokens_per_s,
        "prefill_s_error": (prefill.time_s - measured.prefill_s) / measured.prefill_s,
    }


def compare_with_plan(
    measured: Measurement, target: str = "host-cpu", runtime: str | None = None
) -> dict:
    """Measured vs the planner's estimates on ``target`` (fp32 weights and KV, batch 1):
    ``estimated`` uses the calibration profile when one exists, ``datasheet`` never does. Relative
    errors are (estimate − measured) ÷ measured."""
    t = targets.load_target(target)
    return {
        "model": measured.model,
        "target": t.id,
        "prompt_tokens": measured.prompt_tokens,
        "measured": measured.to_dict(),
        "estimated": _estimate(measured, t, runtime, True),
        "datasheet": _estimate(measured, t, runtime, False),
    }
