"""Calibration profiles: per (target, runtime) fitted kernel efficiencies and overheads.

``profiles/<target-id>/<runtime>.yaml`` is written by ``edgefit calibrate``; it records the
environment it was measured in and its residual error, which becomes the estimate's error bar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgefit._resources import data_dir
from edgefit._yaml import load_yaml
from edgefit.errors import EdgefitError

PROFILE_VERSION = 1


@dataclass(frozen=True)
class KernelFit:
    efficiency: float  # fraction of the unit's peak ops reached
    overhead_s: float  # fixed cost per kernel launch
    n: int = 0  # measurements behind the fit
    median_abs_error: float = 0.0  # relative, on those measurements
    k_half: float = 0.0  # reduction length at which efficiency halves (0: constant efficiency)

    def efficiency_at(self, reduction: float) -> float:
        """Efficiency for a kernel whose dot products have ``reduction`` terms."""
        if self.k_half <= 0 or reduction <= 0:
            return self.efficiency
        return self.efficiency * reduction / (reduction + self.k_half)


@dataclass(frozen=True)
class Profile:
    target: str
    runtime: str
    kernels: dict[tuple[str, str], KernelFit]
    environment: dict = field(default_factory=dict)
    residual: dict = field(default_factory=dict)  # {"median_abs_error": 0.08, "p90_abs_error": …}
    fidelity: dict = field(default_factory=dict)
    memory_bandwidth_scale: float = 1.0  # measured ÷ datasheet bandwidth, for levels not measured
    level_bandwidth: dict[str, float] = field(
        default_factory=dict
    )  # measured bytes/s per memory level
    run_overhead_s: float = 0.0  # fixed cost of one inference call (measured on an Identity model)
    extra_overhead_s: dict[str, float] = field(
        default_factory=dict
    )  # per conv kernel in a network (± s), per dtype
    path: str = ""
    # per-kernel launch overhead fitted for a unit, used for the precisions the profile has no
    # fit for on that unit: launching a kernel costs the same whatever its precision, so a
    # calibrated int8 and a datasheet fp16 on one GPU are not ranked with two launch costs
    unit_overhead_s: dict[str, float] = field(default_factory=dict)
    # the compute units the fits were measured on (empty: every unit): Vela's figures calibrate
    # the Ethos-U NPU, and must not stand for the Cortex-M CPU beside it
    units: tuple[str, ...] = ()

    @property
    def error(self) -> float:
        """Relative error bar of whole-model estimates (p90 |error| of the fidelity run, else
        kernel fits)."""
        for source in (self.fidelity, self.residual):
            if source.get("p90_abs_error") is not None:
                return float(source["p90_abs_error"])
        return float(self.residual.get("median_abs_error", 0.5))

    def fit(self, kclass: str, dtype: str) -> KernelFit | None:
        """The fit for ``kclass`` in ``dtype``; kernels never measured in ``dtype`` (an int8
        model's softmax runs in float between dequantize and quantize) fall back to the class's
        fp32 fit."""
        return self.kernels.get((kclass, dtype)) or self.kernels.get((kclass, "fp32"))

    def to_dict(self) -> dict:
        return {
            "version": PROFILE_VERSION,
            "target": self.target,
            "runtime": self.runtime,
            **({"units": list(self.units)} if self.units else {}),
            "environment": self.environment,
            "memory_bandwidth_scale": self.memory_bandwidth_scale,
            "level_bandwidth_bytes_per_s": self.level_bandwidth,
            "run_overhead_s": self.run_overhead_s,
            "extra_overhead_s": self.extra_overhead_s,
            "residual": self.residual,
            "fidelity": self.fidelity,
            "kernels": {
                f"{k}/{d}": {
                    "efficiency": f.efficiency,
                    "k_half": f.k_half,
                    "overhead_s": f.overhead_s,
                    "n": f.n,
                    "median_abs_error": f.median_abs_error,
                }
                for (k, d), f in sorted(self.kernels.items())
            },
        }


def profile_from_dict(data: dict, *, path: str = "<dict>") -> Profile:
    try:
        kernels = {}
        for key, fit in (data.get("kernels") or {}).items():
            kclass, _, dtype = str(key).partition("/")
            kernels[(kclass, dtype)] = KernelFit(
                float(fit["efficiency"]),
                float(fit["overhead_s"]),
                int(fit.get("n", 0)),
                float(fit.get("median_abs_error", 0.0)),
                float(fit.get("k_half", 0.0)),
            )
            if (
                not 0 < kernels[(kclass, dtype)].efficiency <= 1.5
                or kernels[(kclass, dtype)].overhead_s < 0
            ):
                raise ValueError(f"kernel {key}: efficiency must be in (0, 1.5] and overhead ≥ 0")
        return Profile(
            target=str(data["target"]),
            runtime=str(data["runtime"]),
            kernels=kernels,
            environment=dict(data.get("environment") or {}),
            residual=dict(data.get("residual") or {}),
            fidelity=dict(data.get("fidelity") or {}),
            memory_bandwidth_scale=float(data.get("memory_bandwidth_scale", 1.0)),
            level_bandwidth={
                str(k): float(v)
                for k, v in (data.get("level_bandwidth_bytes_per_s") or {}).items()
            },
            run_overhead_s=float(data.get("run_overhead_s", 0.0)),
            extra_overhead_s={
                str(k): float(v) for k, v in (data.get("extra_overhead_s") or {}).items()
            },
            path=path,
            units=tuple(str(u) for u in data.get("units") or ()),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EdgefitError(
            f"invalid calibration profile: {exc}",
            where=path,
            fix="re-run `edgefit calibrate` to regenerate it",
        ) from None


def load_profile(path: str | Path) -> Profile:
    data, _ = load_yaml(path)
    if not isinstance(data, dict):
        raise EdgefitError(
            "a profile must be a YAML mapping", where=str(path), fix="re-run `edgefit calibrate`"
        )
    return profile_from_dict(data, path=str(path))


def profile_path(target_id: str, runtime: str, root: Path | None = None) -> Path:
    return (root or data_dir("profiles")) / target_id / f"{runtime}.yaml"


def find_profile(target, runtime: str | None = None) -> Profile | None:
    """The calibration profile for ``target`` on ``runtime`` (or its first runtime that has
    one)."""
    for name in [runtime] if runtime else list(target.runtimes):
        path = profile_path(target.id, name)
        if path.is_file():
            return load_profile(path)
    return None
