"""The envelope verdict: each constraint of the target's envelope against the estimate."""

from __future__ import annotations

from edgefit.estimate._result import Check, Estimate


def _check(
    name: str,
    unit: str,
    limit,
    value: float,
    error: float,
    source: str,
    percentile: float | None = None,
) -> Check:
    fits = value <= limit.value
    far = value * (1 + error) if fits else value * (1 - error)
    return Check(
        constraint=name,
        unit=unit,
        limit=limit.value,
        value=value,
        fits=fits,
        certain=(far <= limit.value) == fits,
        source=source,
        percentile=percentile,
    )


def envelope_checks(est: Estimate, target) -> list[Check]:
    """Latency, memory per level (and physical capacity), power and energy checks for ``est``."""
    env, err, src = target.envelope, est.error, est.source
    checks = [
        _check(
            f"latency (p{env.latency_percentile:g} budget; estimate is the mean)",
            "s",
            env.latency_budget_s,
            est.latency_s,
            err,
            src,
            env.latency_percentile,
        )
    ]
    used: dict[str, float] = {}
    backing = next((m.name for m in target.memory_levels if m.kind != "cache"), None)
    for level, nbytes in (
        (est.weight_level, est.weight_bytes),
        (est.activation_level, est.peak_activation_bytes),
    ):
        used[level] = used.get(level, 0.0) + nbytes
        if backing and target.level(level).kind == "cache" and level != backing:
            used[backing] = (
                used.get(backing, 0.0) + nbytes
            )  # a cache holds a copy; memory holds the data
    for level in target.memory_levels:
        value = used.get(level.name, 0.0)
        if level.name in env.memory_bytes:
            checks.append(
                _check(
                    f"memory {level.name} (budget)",
                    "B",
                    env.memory_bytes[level.name],
                    value,
                    0.0,
                    "counted",
                )
            )
        elif value > level.capacity_bytes.value:
            checks.append(
                _check(
                    f"memory {level.name} (capacity)",
                    "B",
                    level.capacity_bytes,
                    value,
                    0.0,
                    "counted",
                )
            )
    if env.average_power_w is not None:
        at_rate = est.power_at_rate_w is not None
        value = est.power_at_rate_w if est.power_at_rate_w is not None else est.average_power_w
        label = (
            f"average power at {est.inference_rate_hz:g} inferences/s"
            if at_rate
            else "average power (back-to-back inference)"
        )
        checks.append(_check(label, "W", env.average_power_w, value, err, src))
    if env.energy_per_inference_j is not None:
        checks.append(
            _check("energy per inference", "J", env.energy_per_inference_j, est.energy_j, err, src)
        )
    return checks
