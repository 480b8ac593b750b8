"""Run Arm Vela on an int8 .tflite and read what it reports: :class:`VelaConfig`,
:class:`VelaReport`.

Vela (``ethos-u-vela``) compiles a fully int8 TFLite model for an Ethos-U NPU and estimates its
performance for one accelerator and one system configuration of its ``vela.ini``. edgefit takes the
three names from the target profile's notes (``vela-accelerator-config:``, ``vela-system-config:``,
``vela-memory-mode:``) and Vela's shipped ``Arm/vela.ini``, and runs ``python -m ethosu.vela`` with
``--verbose-performance --show-cpu-operations`` in a temporary folder. It reads:

* ``<name>_summary_<system>.csv``: ``inference_time`` (s), ``cycles_total``, ``cycles_npu``,
  ``sram_memory_used`` and ``off_chip_flash_memory_used`` (KiB), ``nn_macs`` …;
* ``<name>_per-layer.csv``: cycles and MACs per operator;
* the printed summary: which operators run on the NPU and which are left on the CPU.

Every figure is Vela's **estimate** for that configuration, not a measurement on hardware;
operators left on the CPU are not in its time at all.
"""

from __future__ import annotations

import csv
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError

if TYPE_CHECKING:
    from edgefit import targets
else:
    targets = lazy_import("edgefit.targets")  # loads pydantic and YAML: only for_target needs it

VELA_INI = "Arm/vela.ini"  # the configuration file shipped inside ethos-u-vela
PIP = 'pip install "edgefit[vela]" -c constraints.txt'
KIB = 1024


@dataclass(frozen=True)
class VelaConfig:
    """Which Ethos-U and which system Vela compiles for (names of Vela's ``vela.ini``).

    >>> VelaConfig.from_notes(["vela-accelerator-config: ethos-u55-128",
    ...                        "vela-system-config: Ethos_U55_High_End_Embedded",
    ...                        "vela-memory-mode: Shared_Sram"]).accelerator_config
    'ethos-u55-128'
    """

    accelerator_config: str
    system_config: str
    memory_mode: str
    config_file: str = VELA_INI
    optimise: str = "Performance"

    @classmethod
    def from_notes(cls, notes: list[str], *, where: str = "target") -> VelaConfig:
        found = {}
        for note in notes:
            key, sep, value = note.partition(":")
            if sep and key.strip() in (
                "vela-accelerator-config",
                "vela-system-config",
                "vela-memory-mode",
            ):
                found[key.strip()] = value.strip()
        missing = {"vela-accelerator-config", "vela-system-config", "vela-memory-mode"} - set(
            found
        )
        if missing:
            raise EdgefitError(
                f"the target has no Vela configuration (notes lack {', '.join(sorted(missing))})",
                where=where,
                fix="use --target ethos-u55, or add the vela-… notes to the target YAML",
            )
        return cls(
            found["vela-accelerator-config"],
            found["vela-system-config"],
            found["vela-memory-mode"],
        )

    @classmethod
    def for_target(cls, target: Any = "ethos-u55") -> VelaConfig:
        """The configuration named in a target profile (id, alias, YAML path or ``Target``)."""
        t = targets.load_target(target)
        return cls.from_notes(list(t.notes), where=f"target '{t.id}'")

    def args(self) -> list[str]:
        return [
            "--accelerator-config",
            self.accelerator_config,
            "--config",
            self.config_file,
            "--system-config",
            self.system_config,
            "--memory-mode",
            self.memory_mode,
            "--optimise",
            self.optimise,
        ]


@dataclass(frozen=True)
class VelaLayer:
    """One operator of Vela's per-layer report."""

    name: str
    original_op: str
    npu_op: str
    target: str  # "NPU" or "CPU"
    cycles: int
    macs: int


@dataclass(frozen=True)
class VelaReport:
    """What Vela estimated for one model on one configuration. Times in seconds, sizes in bytes.

    ``cpu_operators`` are the operators Vela left on the host CPU (Cortex-M), as ``"OpType =
    name"``; their time is **not** in ``inference_time_s``. ``summary`` is Vela's summary CSV row,
    as written.
    """

    vela_version: str
    config: VelaConfig
    inference_time_s: float
    inferences_per_second: float
    core_clock_hz: float
    cycles_total: int
    cycles_npu: int
    cycles_sram_access: int
    cycles_off_chip_flash_access: int
    sram_used_bytes: float
    off_chip_flash_used_bytes: float
    nn_macs: int
    npu_operators: int
    cpu_operators: tuple[str, ...]
    layers: tuple[VelaLayer, ...] = ()
    summary: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return (
            f"vendor compiler estimate (Arm Vela {self.vela_version}, "
            f"{self.config.accelerator_config}, "
            f"{self.config.system_config}, {self.config.memory_mode}), not a measurement"
        )

    def describe(self) -> str:
        """One line with units, for people: time, cycles, SRAM, flash, CPU fallbacks."""
        cpu = (
            f"{len(self.cpu_operators)} operator(s) left on the CPU and NOT included: "
            + ", ".join(self.cpu_operators[:5])
            if self.cpu_operators
            else "every operator on the NPU"
        )
        return (
            f"Arm Vela {self.vela_version} estimate for {self.config.accelerator_config} / "
            f"{self.config.system_config} / {self.config.memory_mode}: inference "
            f"{self.inference_time_s * 1e3:.3f} "
            f"ms ({self.cycles_total} cycles at {self.core_clock_hz / 1e6:g} MHz), SRAM "
            f"{self.sram_used_bytes / KIB:.1f} KiB, off-chip flash "
            f"{self.off_chip_flash_used_bytes / KIB:.1f} KiB, "
            f"{self.nn_macs} MACs; {cpu}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unit": {"time": "s", "memory": "bytes"}, "provenance": self.label}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VelaReport:
        fields = {k: v for k, v in data.items() if k not in ("unit", "provenance")}
        return cls(
            **{
                **fields,
                "config": VelaConfig(**fields["config"]),
                "cpu_operators": tuple(fields["cpu_operators"]),
                "layers": tuple(VelaLayer(**layer) for layer in fields.get("layers", ())),
            }
        )


def vela_version() -> str | None:
    try:
        return importlib.metadata.version("ethos-u-vela")
    except importlib.metadata.PackageNotFoundError:
        return None


def run_vela(
    tflite: str | Path,
    config: VelaConfig,
    out_dir: str | Path | None = None,
    *,
    timeout_s: float = 600.0,
) -> tuple[VelaReport, Path | None]:
    """Compile ``tflite`` with Vela; returns the report and the compiled ``*_vela.tflite`` (copied
    to ``out_dir`` when given, else None). A Vela failure is one :class:`EdgefitError` with Vela's
    last words."""
    version = vela_version()
    if version is None:
        raise EdgefitError(
            "compiling for an Ethos-U NPU needs Arm Vela (ethos-u-vela), which is not installed",
            where="--runtime vela",
            fix=PIP,
        )
    tflite = Path(tflite)
    with tempfile.TemporaryDirectory(prefix="edgefit-vela-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "ethosu.vela",
            str(tflite),
            *config.args(),
            "--output-dir",
            tmp,
            "--verbose-performance",
            "--show-cpu-operations",
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise EdgefitError(
                f"Vela did not finish within {timeout_s:g} s",
                where=str(tflite),
                fix="try a smaller model",
            ) from None
        stem = tflite.stem
        summary = Path(tmp) / f"{stem}_summary_{config.system_config}.csv"
        if proc.returncode != 0 or not summary.is_file():
            last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-3:]
            raise EdgefitError(
                f"Vela failed on {tflite.name} (exit {proc.returncode}): {' / '.join(last)[:400]}",
                where=str(tflite),
                fix="Vela needs a fully int8 (or int16) TFLite model; check "
                "`vela --supported-ops-report`",
            )
        report = parse_reports(
            summary, Path(tmp) / f"{stem}_per-layer.csv", proc.stdout, config, version
        )
        compiled = None
        if out_dir is not None:
            compiled = Path(out_dir) / f"{stem}_vela.tflite"
            compiled.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(tmp) / f"{stem}_vela.tflite", compiled)
    return report, compiled


def _number(row: dict[str, str], key: str) -> float:
    try:
        return float(row[key])
    except (KeyError, ValueError):
        raise EdgefitError(
            f"Vela's summary CSV has no number '{key}'",
            where="vela summary",
            fix=f"use ethos-u-vela 5.x ({PIP})",
        ) from None


def parse_reports(
    summary_csv: Path, per_layer_csv: Path, stdout: str, config: VelaConfig, version: str
) -> VelaReport:
    """Vela's summary CSV, per-layer CSV and printed operator placement → :class:`VelaReport`."""
    with open(summary_csv, newline="") as fh:
        row = next(csv.DictReader(fh))
    layers = parse_per_layer(per_layer_csv) if per_layer_csv.is_file() else ()
    placed = re.findall(r"^\s+(CPU|NPU): (.+)$", stdout, flags=re.MULTILINE)
    cpu_ops = tuple(desc.strip() for where, desc in placed if where == "CPU")
    npu_count = sum(1 for where, _ in placed if where == "NPU")
    counts = re.search(r"CPU operators = (\d+).*?NPU operators = (\d+)", stdout, flags=re.DOTALL)
    if counts:
        n_cpu, npu_count = int(counts.group(1)), int(counts.group(2))
        if n_cpu and not cpu_ops:
            cpu_ops = (
                tuple(
                    f"{layer.original_op} = {layer.name}"
                    for layer in layers
                    if layer.target == "CPU"
                )
                or ("unnamed",) * n_cpu
            )
    return VelaReport(
        vela_version=version,
        config=config,
        inference_time_s=_number(row, "inference_time"),
        inferences_per_second=_number(row, "inferences_per_second"),
        core_clock_hz=_number(row, "core_clock"),
        cycles_total=int(_number(row, "cycles_total")),
        cycles_npu=int(_number(row, "cycles_npu")),
        cycles_sram_access=int(_number(row, "cycles_sram_access")),
        cycles_off_chip_flash_access=int(_number(row, "cycles_off_chip_flash_access")),
        sram_used_bytes=_number(row, "sram_memory_used") * KIB,
        off_chip_flash_used_bytes=_number(row, "off_chip_flash_memory_used") * KIB,
        nn_macs=int(_number(row, "nn_macs")),
        npu_operators=npu_count,
        cpu_operators=cpu_ops,
        layers=layers,
        summary=dict(row),
    )


def parse_per_layer(path: Path) -> tuple[VelaLayer, ...]:
    """Vela's ``*_per-layer.csv``: one :class:`VelaLayer` per row (fused activations have 0
    cycles)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return tuple(
        VelaLayer(
            name=r.get("Name", "").strip(),
            original_op=r.get("Original Operator", ""),
            npu_op=r.get("NNG Operator", ""),
            target=r.get("Target", ""),
            cycles=int(float(r.get("Op Cycles") or 0)),
            macs=int(float(r.get("MAC Count") or 0)),
        )
        for r in rows
    )
