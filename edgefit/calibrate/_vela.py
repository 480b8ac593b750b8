"""Calibrate the Ethos-U55 estimate against Arm Vela, and check it on the MCU model zoo.

No Ethos-U55 is attached here, so the ground truth is Arm Vela's own performance estimate for the
accelerator and system configuration named in ``targets/ethos-u55.yaml`` (Vela's shipped
``vela.ini``).
:func:`calibrate_vela` builds tiny kernels of each estimator kernel class (``conv``, ``conv1x1``,
``dwconv``, ``gemm``, ``pool``, ``eltwise``, ``reduce``, ``datamove``) over MCU-sized shape grids
(:data:`KERNELS`), turns each into a fully int8 .tflite (the LiteRT backend's litert-torch PT2E
recipe), compiles it with Vela, and fits each class's efficiency, fall-off and overhead to Vela's
inference time under Vela's own pass structure (``fit_overlapped`` in
:mod:`edgefit.calibrate._vela_fit`). :func:`run_vela_fidelity` then compares the calibrated
estimate with Vela on whole models (time, SRAM, flash; :mod:`edgefit.calibrate._vela_fidelity`).

Each kernel is a tiny ``torch.nn`` module (:func:`kernel_module`); the estimator reads its ONNX
export and Vela compiles its int8 .tflite, with NHWC inputs/outputs as a TFLite-native deployment
has (NCHW I/O would add layout transposes on the NPU). litert-torch's PT2E quantizer leaves a
pooling or global-average op that reads the model input in float (Vela then leaves it on the CPU),
so those kernels, and the residual add, read the output of a depthwise 1×1 convolution; its cycles,
from Vela's per-layer report, are the sample's side cost (``Sample.other``). The add's ReLU is the
add's epilogue under the integer lowering, as in Vela. A ``datamove`` kernel is a depthwise 1×1
Conv1d over ``(1, c, l)``: litert-torch transposes its input to NLC and its output back to NCL,
and the transpose back is the fitted kernel (the transpose in and the convolution are its side
cost); :func:`remeasure_vela` measures one class again into the stored measurements.

The estimator is asked for the fp32 export with **every kernel int8** (an all-int8 plan) under the
integer lowering (:mod:`edgefit.estimate._lower_integer`, picked for the ``vela`` runtime): that is
what the int8-in/int8-out .tflite runs on the NPU. (The ``_calibrate._int8`` QDQ graph was not
used: edgefit's graph reader types QDQ Add, pooling and global-average kernels as fp32, which on
this target means the Cortex-M's fp32 path, and it adds input-quantize kernels that an int8-I/O
.tflite does not have.)

>>> profile = calibrate_vela("ethos-u55", budget_s=300)          # doctest: +SKIP
>>> summary = store_vela_fidelity(profile, vela_fidelity(profile))  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgefit._io import to_json, write_atomic
from edgefit._lazy import lazy_import
from edgefit.calibrate._calibrate import _yaml, measurements_path
from edgefit.calibrate._catalog import KernelSpec, sample_specs
from edgefit.calibrate._fidelity import FidelityRow
from edgefit.calibrate._vela_fidelity import _example, mcu_zoo, store_vela_rows, vela_rows
from edgefit.calibrate._vela_fit import (  # noqa: F401 (_main, PREFIXED: tests read them here)
    PREFIXED,
    RUNTIME,
    UNIT,
    _main,
    fit_vela_profile,
    residual,
)
from edgefit.errors import EdgefitError
from edgefit.estimate import Profile, profile_path
from edgefit.graph._torch import export_torch
from edgefit.runtimes import get_runtime
from edgefit.runtimes._litert import LiteRTOptions, convert_tflite
from edgefit.runtimes._litert_convert import _version
from edgefit.runtimes._torch_source import TorchModel
from edgefit.runtimes._vela_report import VelaConfig, run_vela, vela_version

if TYPE_CHECKING:
    import torch
    from torch import nn

    from edgefit import targets
else:  # torch builds the kernels and the target model needs pydantic: loaded when a sweep runs
    torch, nn, targets = lazy_import("torch", "torch.nn", "edgefit.targets")

SECONDS_PER_KERNEL = 2.7  # litert-torch int8 conversion (~2.3 s on 2 shared cores) + Vela (~0.3 s)
Progress = Callable[[str, int, int], None]

# (class, samples, grid) in the catalog's format (see kernels/catalog.yaml), sized for a
# microcontroller: activations of tens of KiB, weights up to ~0.5 MiB, the shapes of KWS / VWW /
# CIFAR / anomaly models.
KERNELS: tuple[tuple[str, int, dict], ...] = (
    (
        "conv",
        24,
        {
            "cin": [1, 3, 8, 16, 32, 64],
            "cout": [8, 16, 32, 64, 128],
            "hw": [8, 16, 32, 48, 96],
            "k": [3, 5],
            "stride": [1, 2],
        },
    ),
    (
        "conv1x1",
        20,
        {
            "cin": [8, 16, 32, 64, 128, 256],
            "cout": [8, 16, 32, 64, 128, 256],
            "hw": [3, 6, 12, 24, 48],
            "k": [1],
            "stride": [1],
        },
    ),
    (
        "dwconv",
        20,
        {"c": [8, 16, 32, 64, 128, 256], "hw": [6, 12, 24, 48, 96], "k": [3, 5], "stride": [1, 2]},
    ),
    ("gemm", 14, {"m": [1], "k": [16, 64, 128, 256, 640, 1024], "n": [10, 12, 64, 128, 256, 512]}),
    (
        "pool",
        8,
        {
            "c": [8, 16, 32, 64],
            "hw": [8, 16, 32, 48],
            "k": [2, 3],
            "op": ["MaxPool", "AveragePool"],
        },
    ),
    ("eltwise", 10, {"c": [8, 16, 32, 64, 128], "hw": [4, 8, 16, 32, 48]}),
    ("reduce", 6, {"c": [32, 64, 128, 256, 512], "hw": [3, 6, 12, 24]}),
    # a depthwise 1×1 Conv1d over (1, c, l): litert-torch's layout transposes around it
    ("datamove", 8, {"c": [8, 16, 24, 32, 64], "l": [16, 33, 50, 128, 256, 512]}),
)

# (example, knobs): the MLPerf Tiny references and the digits CNN, at several widths and input
# sizes
ZOO: tuple[tuple[str, dict], ...] = (
    ("ds-cnn-kws", {}),
    ("ds-cnn-kws", {"width": 0.5}),
    ("ds-cnn-kws", {"resolution": 98}),
    ("mobilenetv1-vww", {}),
    ("mobilenetv1-vww", {"width": 0.5, "resolution": 64}),
    ("mobilenetv1-vww", {"resolution": 128}),
    ("resnet8-cifar", {}),
    ("resnet8-cifar", {"width": 0.5}),
    ("resnet8-cifar", {"resolution": 64}),
    ("fc-autoencoder", {}),
    ("fc-autoencoder", {"width": 0.5}),
    ("digits-cnn", {}),
    ("digits-cnn", {"width": 0.5}),
    ("digits-cnn", {"resolution": 16}),
)


def vela_config(target):
    """The :class:`~edgefit.runtimes._vela_report.VelaConfig` named in ``target``'s notes."""

    return VelaConfig.from_notes(list(target.notes), where=f"target '{target.id}'")


def kernel_module(spec: KernelSpec):
    """``(module, example_input)`` of one calibration kernel (NCHW, eval mode, seeded weights)."""
    p = spec.p
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(zlib.crc32(spec.label.encode()))  # str hash() changes per process
        k = spec.kclass
        if k in ("conv", "conv1x1", "dwconv"):
            cin = p["cin"] if "cin" in p else p["c"]
            cout = p["cout"] if "cout" in p else p["c"]
            module: nn.Module = nn.Sequential(
                nn.Conv2d(
                    cin,
                    cout,
                    p["k"],
                    p.get("stride", 1),
                    p["k"] // 2,
                    groups=cin if k == "dwconv" else 1,
                ),
                nn.ReLU(),
            )
            x = torch.randn(1, cin, p["hw"], p["hw"])
        elif k == "datamove":  # NCL in and out: transposed to NLC around the convolution
            module, x = nn.Conv1d(p["c"], p["c"], 1, groups=p["c"]), torch.randn(1, p["c"], p["l"])
        elif k == "gemm":
            module, x = nn.Linear(p["k"], p["n"]), torch.randn(p["m"], p["k"])
        elif k in PREFIXED:
            module, x = _Prefixed(k, p), torch.randn(1, p["c"], p["hw"], p["hw"])
        else:
            raise EdgefitError(
                f"no Vela calibration kernel for class '{k}'",
                where="KERNELS",
                fix=f"use {', '.join(c for c, _, _ in KERNELS)}",
            )
    return module.eval(), x


def _prefixed_class():
    class Prefixed(nn.Module):
        """A depthwise 1×1 conv (gives the kernel a quantized input), then the pool / GAP /
        residual add."""

        def __init__(self, kclass: str, p: dict) -> None:
            super().__init__()
            self.kclass = kclass
            self.pre = nn.Conv2d(p["c"], p["c"], 1, groups=p["c"])
            self.op: nn.Module
            if kclass == "pool":
                self.op = (nn.MaxPool2d if p["op"] == "MaxPool" else nn.AvgPool2d)(p["k"], p["k"])
            elif kclass == "reduce":
                self.op = nn.AdaptiveAvgPool2d(1)
            # torch.add then nn.ReLU: the add + ReLU pattern litert-torch's PT2E quantizer matches
            else:
                self.op = nn.ReLU()

        def forward(self, x):
            y = self.pre(x)
            # the add reads the model input first: in edgefit's kernel table an add whose first
            # input comes from a conv is that conv's epilogue, and there would be no eltwise kernel
            # to fit
            return self.op(torch.add(x, y)) if self.kclass == "eltwise" else self.op(y)

    return Prefixed


def _Prefixed(kclass: str, p: dict):
    return _prefixed_class()(kclass, p)


def vela_time(tm, config, folder: Path, label: str):
    """Vela's report for the int8 .tflite (NHWC I/O, 4 random calibration samples) of ``tm`` (a
    TorchModel)."""
    path = folder / (re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:80] + ".tflite")
    convert_tflite(
        tm,
        "int8",
        path,
        None,
        LiteRTOptions(calibration_samples=4, parity_samples=1, channel_last_io=True),
    )
    report, _ = run_vela(path, config)
    path.unlink(missing_ok=True)
    return report


def prefix_seconds(report) -> float:
    """Vela's time for the depthwise 1×1 prefix of a :data:`PREFIXED` kernel (its per-layer
    cycles, and those of any layer before it: a ``datamove`` kernel's transpose in)."""
    ops = [layer.original_op for layer in report.layers]
    last = max((i for i, op in enumerate(ops) if op == "DepthwiseConv2D"), default=-1)
    cycles = sum(layer.cycles for layer in report.layers[: last + 1])
    return cycles / report.core_clock_hz


def environment(config) -> dict:
    return {
        "runtime": RUNTIME,
        "runtime_version": vela_version(),
        "accelerator_config": config.accelerator_config,
        "system_config": config.system_config,
        "memory_mode": config.memory_mode,
        "config_file": f"ethos-u-vela {vela_version()} {config.config_file}",
        "converter": f"litert-torch {_version('litert-torch')} PT2E int8 (int8 inputs and "
        "outputs)",
        "ground_truth": "Arm Vela's performance estimate (no Ethos-U hardware measured)",
        "estimator_plan": "every kernel int8",
        "threads": 1,
        "measured_at": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def calibrate_vela(
    target_id: str = "ethos-u55",
    budget_s: float = 300.0,
    out: str | Path | None = None,
    progress: Progress | None = None,
    *,
    seed: int = 0,
) -> Profile:
    """Compile :data:`KERNELS` with Vela for ``target_id``'s configuration, fit, write the profile.

    ``budget_s`` scales the number of kernels (about :data:`SECONDS_PER_KERNEL` each, at least two
    per class); ``out`` defaults to ``profiles/<target>/vela.yaml``, with Vela's per-kernel times
    beside it in ``vela.measurements.json`` (see :func:`refit_vela`); ``progress(label, i, n)`` is
    called per kernel. Returns the written :class:`Profile` (its ``path`` set).
    """
    get_runtime(RUNTIME).require_available()
    target = targets.load_target(target_id)
    config = vela_config(target)
    full = sample_specs(list(KERNELS), seed=seed)
    specs = sample_specs(
        list(KERNELS), scale=min(1.0, budget_s / (SECONDS_PER_KERNEL * len(full))), seed=seed
    )
    raw = measure_kernels(specs, config, progress)
    if progress:
        progress("fitting", len(specs), len(specs))
    if not raw:
        raise EdgefitError(
            "Vela placed no calibration kernel on the NPU",
            where=f"target '{target.id}'",
            fix="check the target's vela-… notes and `vela --supported-ops-report`",
        )
    path = Path(out) if out else profile_path(target.id, RUNTIME)
    env = environment(config)
    write_atomic(measurements_path(path), to_json({"environment": env, "kernels": raw}) + "\n")
    return _fit_and_write(target, _measured(raw), env, path)


def measure_kernels(specs, config, progress: Progress | None = None) -> list[dict]:
    """Vela's time (and a :data:`PREFIXED` kernel's prefix time) for each catalog kernel in
    ``specs``; kernels Vela leaves partly on the CPU are dropped."""
    raw = []
    with tempfile.TemporaryDirectory(prefix="edgefit-calibrate-vela-") as tmp:
        for i, spec in enumerate(specs):
            if progress:
                progress(spec.label, i, len(specs))
            module, x = kernel_module(spec)
            report = vela_time(
                TorchModel(module, (x,), name=spec.kclass), config, Path(tmp), spec.label
            )
            if report.cpu_operators:  # not an NPU kernel: Vela's time would leave it out
                continue
            raw.append(
                {
                    "class": spec.kclass,
                    "params": dict(spec.params),
                    "seconds": report.inference_time_s,
                    "prefix_s": prefix_seconds(report) if spec.kclass in PREFIXED else 0.0,
                    "cycles_total": report.cycles_total,
                }
            )
    return raw


def remeasure_vela(
    measurements: str | Path,
    classes: tuple[str, ...],
    target_id: str = "ethos-u55",
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> Path:
    """Measure the catalog kernels of ``classes`` again (all of them, as :data:`KERNELS` lists)
    and put them in place of those classes' rows of the stored ``measurements``; the other rows
    are kept as they are, so a class added to the catalog needs no full sweep. Returns the path;
    :func:`refit_vela` then fits from it."""
    path = Path(measurements)
    doc = json.loads(path.read_text())
    config = vela_config(targets.load_target(target_id))
    # the full sweep's sample (seeded over the whole catalog), then only these classes
    specs = [s for s in sample_specs(list(KERNELS), seed=seed) if s.kclass in classes]
    if not specs:
        raise EdgefitError(
            f"no Vela calibration kernels for {', '.join(classes)}",
            where="remeasure_vela",
            fix=f"use {', '.join(c for c, _, _ in KERNELS)}",
        )
    raw = measure_kernels(specs, config, progress)
    kept = [row for row in doc["kernels"] if row["class"] not in classes]
    doc["kernels"] = kept + raw
    write_atomic(path, to_json(doc) + "\n")
    return path


def _measured(raw: list[dict]) -> list[tuple]:
    """Stored kernel rows → ``(class, label, fp32 ONNX export, seconds, prefix seconds)`` (modules
    rebuilt)."""

    measured = []
    for row in raw:
        spec = KernelSpec(row["class"], tuple(row["params"].items()))
        module, x = kernel_module(spec)
        measured.append(
            (
                spec.kclass,
                spec.label,
                export_torch(module, tuple(x.shape)),
                row["seconds"],
                row["prefix_s"],
            )
        )
    return measured


def _fit_and_write(target, measured, env: dict, path: Path) -> Profile:
    profile = fit_vela_profile(target, measured)
    profile = Profile(
        **{**profile.__dict__, "environment": env, "residual": residual(target, profile, measured)}
    )
    write_atomic(path, _yaml(profile))
    return Profile(**{**profile.__dict__, "path": str(path)})


def refit_vela(measurements: str | Path, out: str | Path, target_id: str = "ethos-u55") -> Profile:
    """Fit the profile again from stored Vela kernel times (no conversion, no Vela run: seconds,
    not minutes)."""
    doc = json.loads(Path(measurements).read_text())
    return _fit_and_write(
        targets.load_target(target_id), _measured(doc["kernels"]), doc["environment"], Path(out)
    )


def _label(name: str, knobs: dict) -> str:
    return name + "".join(f" {k}={v}" for k, v in knobs.items())


def _zoo_models(zoo):
    return (
        mcu_zoo()
        if zoo is None
        else [_example(name, knobs, _label(name, knobs)) for name, knobs in zoo]
    )


def vela_fidelity(
    profile: Profile, *, zoo=ZOO, progress: Progress | None = None
) -> list[FidelityRow]:
    """Estimated (``profile``, int8 plan) vs Vela inference time for every model of ``zoo``
    (``(example, knobs)`` pairs; None: the whole MCU zoo of
    :mod:`~edgefit.calibrate._vela_fidelity`).

    Models with operators Vela leaves on the CPU are skipped (Vela's time would not cover them).
    """

    rows, _ = vela_rows(profile, _zoo_models(zoo), progress=progress)
    return [r.fidelity_row() for r in rows]


def run_vela_fidelity(profile: Profile, *, zoo=None, progress: Progress | None = None) -> dict:
    """Time, SRAM and flash fidelity over the MCU zoo, stored beside the profile (what `edgefit
    calibrate` and `edgefit fidelity --target ethos-u55 --runtime vela` run); returns the summary
    with its rows."""
    rows, skipped = vela_rows(profile, _zoo_models(zoo), progress=progress)
    if not rows:
        raise EdgefitError(
            "no zoo model ran fully on the NPU",
            where="fidelity",
            fix="check the Vela configuration",
        )
    summary = store_vela_rows(profile, rows, skipped)
    return {**summary, "rows": [r.to_dict() for r in rows]}
