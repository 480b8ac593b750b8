"""The Vela backend: int8 .tflite (litert-torch) compiled by Arm Vela for an Ethos-U target; Vela's
estimate as timing.

No Ethos-U NPU is attached to this machine, so nothing is *measured*: ``convert`` makes the int8
.tflite (the LiteRT backend's recipe), compiles it with Vela for the accelerator and system
configuration named in the target profile (``ethos-u55`` by default; see
:mod:`~edgefit.runtimes._vela_report`), and stores Vela's report — inference time, cycles, SRAM and
off-chip flash use, per-layer cycles, operators left on the CPU — in the artifact's metadata and in
``<name>.vela.json`` beside it. ``measure`` returns that estimate as a
:class:`~edgefit.runtimes.Timing` (p50 = p90 = p99 = mean, jitter 0, one "run") whose provenance
reads "vendor compiler estimate (Arm Vela …), not a measurement" (``timing_kind = "estimated"``).

Outputs (``infer``, parity) come from running the int8 .tflite that Vela compiled on LiteRT's CPU
kernels: Arm designs the Ethos-U to match TFLite's int8 reference kernels, which is not verified
here.

>>> from edgefit.runtimes import get_runtime
>>> from edgefit.runtimes._torch_source import TorchModel
>>> model = TorchModel.from_example("ds-cnn-kws")  # doctest: +SKIP
>>> art = get_runtime("vela").convert(model, "int8", "out/")  # doctest: +SKIP
>>> VelaReport.from_dict(art.metadata["vela"]).inference_time_s  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from edgefit._io import to_json, write_atomic
from edgefit.errors import EdgefitError
from edgefit.runtimes._base import Artifact, Availability, Inputs, Runtime, Timing
from edgefit.runtimes._inputs import check_inputs
from edgefit.runtimes._litert import LiteRT, LiteRTOptions, LiteRTSession, convert_tflite
from edgefit.runtimes._measure import MeasureSettings
from edgefit.runtimes._torch_source import as_torch_model, check_calibration, source_parity
from edgefit.runtimes._vela_report import PIP, VelaConfig, VelaReport, run_vela, vela_version


@dataclass(frozen=True)
class VelaOptions:
    """``target``: the target profile (id, alias or YAML path) whose ``vela-…`` notes name the
    configuration; ``optimise``: Vela's ``--optimise`` (Performance or Size); ``channel_last_io``:
    NHWC model inputs/outputs as on a TFLite-native MCU deployment (on by default: NCHW I/O would
    add layout transposes that run on the NPU and are charged to the model); ``compile_timeout_s``:
    how long Vela's own process may run before it is killed (a hang is an error, not a stuck run);
    the rest as for LiteRT."""

    target: str = "ethos-u55"
    optimise: str = "Performance"
    per_channel: bool = True
    calibration_samples: int = 16
    parity_samples: int = 8
    channel_last_io: bool = True
    compile_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if not self.compile_timeout_s > 0:
            raise EdgefitError(
                f"compile_timeout_s={self.compile_timeout_s!r} is not allowed",
                where="options",
                fix="give positive seconds",
            )
        if self.optimise not in ("Performance", "Size"):
            raise EdgefitError(
                f"optimise={self.optimise!r} is not allowed",
                where="options",
                fix="use Performance or Size",
            )
        if self.calibration_samples < 1 or self.parity_samples < 1:
            raise EdgefitError(
                "calibration_samples and parity_samples must be ≥ 1",
                where="options",
                fix="use a positive count",
            )


class Vela(Runtime):
    """Arm Vela for Ethos-U NPUs: compiles int8 .tflite and reports its cycle estimate (no hardware
    run)."""

    name: ClassVar[str] = "vela"
    description: ClassVar[str] = (
        "Arm Vela for Ethos-U NPUs (int8 .tflite compiled for the target's Vela config; "
        "timing is Vela's estimate, not a measurement)"
    )
    Options: ClassVar[type] = VelaOptions
    timing_kind: ClassVar[str] = "estimated"
    default_precision: ClassVar[str] = "int8"

    def available(self) -> Availability:
        if (
            importlib.util.find_spec("ethosu") is None
            or importlib.util.find_spec("ethosu.vela") is None
        ):
            return Availability(
                False, f"the Python package 'ethos-u-vela' is not installed ({PIP})"
            )

        litert = LiteRT().available()
        if not litert.ok:
            return Availability(
                False, f"Vela compiles int8 .tflite made by litert-torch: {litert.reason}"
            )
        version = vela_version()
        return Availability(
            True, f"ethos-u-vela {version} (estimates only; {litert.reason})", version
        )

    def precisions(self) -> dict[str, str | None]:
        only = (
            "Ethos-U NPUs run int8 only here (Vela compiles a fully int8 .tflite): use "
            "--precision int8"
        )
        return {"int8": None, "fp32": only, "fp16": only, "int8-dynamic": only}

    def open(self, artifact: Artifact, *, threads: int | None = None):
        """A LiteRT session on the int8 .tflite Vela compiled (for outputs; timing comes from
        Vela)."""

        return LiteRTSession(_source_artifact(artifact), threads)

    def convert(
        self,
        model: Any,
        precision: str,
        out_dir: str | Path,
        *,
        calibration: Sequence[Inputs] | None = None,
        **options: Any,
    ) -> Artifact:
        """Write ``<name>.int8.tflite`` (the input to Vela), ``<name>.int8_vela.tflite`` (Vela's
        output, the artifact) and ``<name>.vela.json`` (the report) under ``out_dir``."""
        self.require_available()
        self.check_precision(precision)
        opts: VelaOptions = self.options(**options)
        config = VelaConfig.for_target(opts.target)
        config = VelaConfig(**{**asdict(config), "optimise": opts.optimise})
        tm = as_torch_model(model)
        calibration = check_calibration(calibration, tm)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        lite = convert_tflite(
            tm,
            "int8",
            out / f"{tm.name}.int8.tflite",
            calibration,
            LiteRTOptions(
                opts.per_channel,
                opts.calibration_samples,
                opts.parity_samples,
                opts.channel_last_io,
            ),
        )
        lite.metadata.update(source_parity(LiteRT(), lite, tm, calibration, opts.parity_samples))
        report, compiled = run_vela(lite.path, config, out, timeout_s=opts.compile_timeout_s)
        assert compiled is not None  # run_vela copies the compiled file out when given a folder
        meta = {
            **{k: v for k, v in lite.metadata.items() if k != "options"},
            "recipe": f"{lite.metadata['recipe']}; then Arm Vela {report.vela_version} "
            f"{' '.join(config.args())}",
            "source_tflite": str(lite.path),
            "vela": report.to_dict(),
            "options": asdict(opts),
            "note": report.describe(),
            "parity_note": "outputs of the int8 .tflite on LiteRT's CPU kernels (the Ethos-U is "
            "designed to "
            "match TFLite's int8 reference kernels; not verified on hardware here)",
        }
        if report.cpu_operators:
            meta["warning"] = (
                f"{len(report.cpu_operators)} operator(s) stay on the Cortex-M CPU; Vela's "
                "inference time covers the NPU part only"
            )
        # file names relative to this file: the folder may be renamed into place after conversion
        write_atomic(
            out / f"{tm.name}.vela.json",
            to_json(
                {"report": report.to_dict(), "tflite": lite.path.name, "compiled": compiled.name}
            )
            + "\n",
        )
        return Artifact(compiled, "tflite-vela", "int8", self.name, meta)

    def report(self, artifact: Artifact) -> VelaReport:
        """The :class:`VelaReport` stored in ``artifact`` at conversion."""
        self.check_artifact(artifact)
        return VelaReport.from_dict(artifact.metadata["vela"])

    def measure(
        self,
        artifact: Artifact,
        inputs: Inputs | None = None,
        *,
        warmup: int = 10,
        runs: int = 100,
        threads: int | None = 1,
        cpus: tuple[int, ...] | None = None,
        min_runs: int = 200,
        budget_s: float = 10.0,
        timeout_s: float = 600.0,
    ) -> Timing:
        """Vela's inference-time estimate as a Timing (one deterministic figure; nothing is run).

        The run-count settings do not apply; ``inputs`` are only checked against the model (an
        estimate does not depend on data).
        """

        MeasureSettings(
            warmup=warmup,
            runs=runs,
            threads=threads,
            cpus=cpus,
            min_runs=min_runs,
            budget_s=budget_s,
            timeout_s=timeout_s,
        )  # same validation as every runtime
        report = self.report(artifact)
        if inputs is not None:
            check_inputs(inputs, _specs(artifact))
        t = report.inference_time_s
        label = report.label
        if report.cpu_operators:
            label += (
                f"; NPU part only: {len(report.cpu_operators)} operator(s) left on the CPU "
                "are not included"
            )
        env = {
            "runtime": self.name,
            "version": report.vela_version,
            "estimate": label,
            "accelerator_config": report.config.accelerator_config,
            "system_config": report.config.system_config,
            "memory_mode": report.config.memory_mode,
            "cycles_total": report.cycles_total,
            "core_clock_hz": report.core_clock_hz,
            "sram_used_bytes": report.sram_used_bytes,
            "off_chip_flash_used_bytes": report.off_chip_flash_used_bytes,
            "cpu_operators": list(report.cpu_operators),
            "threads": threads,
            "inputs": "given (checked, not used: the estimate does not depend on data)"
            if inputs is not None
            else "none (the estimate does not depend on data)",
        }
        return Timing(
            mean=t,
            p50=t,
            p90=t,
            p99=t,
            max=t,
            std=0.0,
            jitter=0.0,
            n_runs=1,
            peak_rss_bytes=None,
            cpu_wait_fraction=None,
            environment=env,
        )


def _source_artifact(artifact: Artifact) -> Artifact:
    source = artifact.metadata.get("source_tflite")
    if not source or not Path(source).is_file():
        raise EdgefitError(
            f"the int8 .tflite Vela compiled is missing: {source}",
            where=str(artifact.path),
            fix="convert again (keep <name>.int8.tflite beside the _vela.tflite)",
        )
    return Artifact(Path(source), "tflite", "int8", "litert", {"io": artifact.metadata.get("io")})


def _specs(artifact: Artifact) -> dict[str, tuple[tuple[int, ...], str]]:
    return LiteRTSession(_source_artifact(artifact), 1).input_specs()
