"""Ethos-U55 fidelity: the calibrated estimate vs Arm Vela on whole int8 models, per family.

Each model of the MCU zoo (the built-in MLPerf-Tiny-like examples of
:data:`~edgefit.calibrate._vela.ZOO` and the ``"mcu"`` specs of :mod:`edgefit.calibrate._zoo`) is
converted to a fully int8 .tflite (the calibration's litert-torch recipe), compiled by Vela, and
compared with the estimate of its fp32 ONNX export under an all-int8 plan with the integer
lowering: inference time, SRAM (Vela's "Total SRAM used" vs the estimate's peak activation bytes,
i.e. the arena model of :mod:`edgefit.estimate._arena`) and off-chip flash (Vela's "Total Off-chip
Flash used" vs the estimate's weight bytes).

**Leave-one-family-out**: the kernel fits are made on the calibration kernel catalog only, never on
zoo models, and no whole-model correction is fitted on the zoo, so every family is predicted by a
model fitted without it (the method is stored with the result). Models with operators Vela leaves
on the CPU are skipped and listed (Vela's time would not cover them).

>>> summary = run_vela_fidelity(load_profile(profile_path("ethos-u55", "vela")))   # doctest: +SKIP
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgefit._io import to_json, write_atomic
from edgefit._lazy import lazy_import
from edgefit.calibrate._calibrate import _yaml
from edgefit.calibrate._fidelity import FidelityRow, summarize
from edgefit.calibrate._report import fidelity_path
from edgefit.calibrate._zoo import zoo_onnx, zoo_specs
from edgefit.estimate import Estimator, Plan, Profile
from edgefit.examples import get_example
from edgefit.graph import load_graph
from edgefit.graph._examples import example_onnx_path
from edgefit.runtimes._torch_source import TorchModel

if TYPE_CHECKING:
    import onnx
    import torch

    from edgefit import targets
    from edgefit.calibrate import _vela
else:  # onnx, torch and the target model (pydantic) load when a run starts; the Vela sweep
    # imports this module (an import cycle, resolved at call time)
    onnx, torch, targets, _vela = lazy_import(
        "onnx", "torch", "edgefit.targets", "edgefit.calibrate._vela"
    )

Progress = Callable[[str, int, int], None]
METHOD = (
    "leave-one-family-out: kernel fits on the calibration kernel catalog only (never on zoo "
    "models); "
    "no whole-model correction fitted on the zoo, so each family is predicted without it"
)
EXAMPLE_FAMILY = {
    "ds-cnn-kws": "kws",
    "mobilenetv1-vww": "mobilenet",
    "resnet8-cifar": "resnet",
    "fc-autoencoder": "autoencoder",
    "digits-cnn": "vgg",
}


@dataclass(frozen=True)
class ZooModel:
    """One fidelity model: how to build it for Vela (torch) and for the estimator (ONNX)."""

    label: str
    family: str
    torch_model: Callable[[], object]  # → TorchModel
    onnx_model: Callable[[Path], object]  # folder → ONNX path or ModelProto


@dataclass(frozen=True)
class VelaRow:
    """Estimate vs Vela for one model: seconds and bytes."""

    model: str
    family: str
    macs: float
    measured_s: float
    estimated_s: float
    sram_measured: float
    sram_estimated: float
    flash_measured: float
    flash_estimated: float

    def fidelity_row(self) -> FidelityRow:
        return FidelityRow(self.model, "int8", self.macs, self.measured_s, self.estimated_s)

    def to_dict(self) -> dict:
        return {
            **self.__dict__,
            "dtype": "int8",
            "error": self.estimated_s / self.measured_s - 1,
            "sram_error": self.sram_estimated / self.sram_measured - 1,
            "flash_error": self.flash_estimated / self.flash_measured - 1,
        }


def mcu_zoo() -> list[ZooModel]:
    """The examples' MCU zoo plus the zoo module's ``"mcu"`` specs."""
    models = [_example(name, knobs, _vela._label(name, knobs)) for name, knobs in _vela.ZOO]
    return models + [_spec_model(spec) for spec in zoo_specs(tag="mcu")]


def _example(name: str, knobs: dict, label: str) -> ZooModel:
    def torch_model():
        spec = get_example(name)
        return TorchModel(
            spec.build(**knobs),
            (spec.example_input(resolution=knobs.get("resolution")),),
            name=name,
        )

    def onnx_model(_folder: Path):
        return example_onnx_path(
            name, input_shape=get_example(name).shape_for(knobs.get("resolution")), **knobs
        )

    return ZooModel(label, EXAMPLE_FAMILY.get(name, name), torch_model, onnx_model)


def _spec_model(spec) -> ZooModel:
    def torch_model():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            x = torch.randn(*spec.input_shape)
        return TorchModel(spec.build(), (x,), name=spec.name)

    def onnx_model(folder: Path):
        return zoo_onnx(spec, "fp32", folder)

    return ZooModel(spec.name, spec.family, torch_model, onnx_model)


def vela_rows(
    profile,
    zoo: Iterable[ZooModel],
    *,
    progress: Progress | None = None,
    reports: dict | None = None,
) -> tuple[list[VelaRow], list[dict]]:
    """Rows for every model Vela places fully on the NPU, and the skipped ones (``reports``: label
    → VelaReport already made for the same configuration, to skip the conversion and the
    compile)."""
    target = targets.load_target(profile.target)
    config = _vela.vela_config(target)
    zoo = list(zoo)
    rows: list[VelaRow] = []
    skipped: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="edgefit-fidelity-vela-") as tmp:
        for i, model in enumerate(zoo):
            if progress:
                progress(model.label, i, len(zoo))
            try:
                report = (reports or {}).get(model.label) or _vela.vela_time(
                    model.torch_model(), config, Path(tmp), model.label
                )
            except Exception as exc:  # noqa: BLE001 - a model the converter cannot make is listed, not fatal
                skipped.append(
                    {"model": model.label, "family": model.family, "reason": str(exc)[:300]}
                )
                continue
            if report.cpu_operators:
                skipped.append(
                    {
                        "model": model.label,
                        "family": model.family,
                        "cpu_operators": len(report.cpu_operators),
                    }
                )
                continue
            src = model.onnx_model(Path(tmp))
            graph = load_graph(
                onnx.load(str(src)) if isinstance(src, (str, Path)) else src, source=model.label
            )
            est = Estimator(graph, target, profile=profile).estimate(Plan(dtype="int8"))
            rows.append(
                VelaRow(
                    model.label,
                    model.family,
                    float(graph.macs),
                    report.inference_time_s,
                    est.latency_s,
                    report.sram_used_bytes,
                    est.peak_activation_bytes,
                    report.off_chip_flash_used_bytes,
                    est.weight_bytes,
                )
            )
    return rows, skipped


def _share(err: np.ndarray, bound: float) -> float:
    return float((np.abs(err) <= bound).mean()) if len(err) else float("nan")


def vela_summary(rows: list[VelaRow]) -> dict:
    """Time figures of :func:`~edgefit.calibrate._fidelity.summarize`, plus SRAM and flash errors
    and the same per family."""
    summary = summarize([r.fidelity_row() for r in rows])
    sram = np.array([r.sram_estimated / r.sram_measured - 1 for r in rows])
    flash = np.array([r.flash_estimated / r.flash_measured - 1 for r in rows])
    summary.update(
        {
            "families": len({r.family for r in rows}),
            "sram_median_abs_error": float(np.median(np.abs(sram))),
            "sram_within_5pct": _share(sram, 0.05),
            "flash_median_abs_error": float(np.median(np.abs(flash))),
            "flash_within_5pct": _share(flash, 0.05),
            "method": METHOD,
        }
    )
    per = {}
    for family in sorted({r.family for r in rows}):
        group = [r for r in rows if r.family == family]
        t = np.array([r.estimated_s / r.measured_s - 1 for r in group])
        per[family] = {
            "models": len(group),
            "median_abs_error": float(np.median(np.abs(t))),
            "within_10pct": _share(t, 0.10),
            "sram_median_abs_error": float(
                np.median(np.abs([r.sram_estimated / r.sram_measured - 1 for r in group]))
            ),
            "flash_median_abs_error": float(
                np.median(np.abs([r.flash_estimated / r.flash_measured - 1 for r in group]))
            ),
        }
    summary["per_family"] = per
    return summary


def store_vela_rows(profile, rows: list[VelaRow], skipped: list[dict]) -> dict:
    """Write ``<profile>.fidelity.json`` (summary + rows) and the summary into the profile YAML."""

    env = {
        **profile.environment,
        "measured": "Vela inference_time, Total SRAM used, Total Off-chip Flash used "
        "per zoo model, int8",
        "skipped": skipped,
    }
    summary = {**vela_summary(rows), "environment": env}
    doc = {"summary": summary, "rows": [r.to_dict() for r in rows]}
    write_atomic(fidelity_path(profile.path), to_json(doc) + "\n")
    write_atomic(profile.path, _yaml(Profile(**{**profile.__dict__, "fidelity": summary})))
    return summary


def load_rows(path: str | Path) -> list[VelaRow]:
    """The rows stored in a ``vela.fidelity.json`` (to recompute the summary without Vela)."""
    fields = VelaRow.__dataclass_fields__
    return [
        VelaRow(**{k: v for k, v in row.items() if k in fields})
        for row in json.loads(Path(path).read_text())["rows"]
    ]
