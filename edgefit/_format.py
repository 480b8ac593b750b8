"""Human-readable numbers with units (every printed number carries one)."""

from __future__ import annotations


def _scaled(value: float, unit: str, steps: list[tuple[float, str]], digits: int = 3) -> str:
    for factor, prefix in steps:
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    factor, prefix = steps[-1]
    return f"{value / factor:.{digits}g} {prefix}{unit}"


_SI = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")]
_SMALL = [(1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")]


def count(n: float, unit: str = "") -> str:
    """``count(1.82e9, "MACs") == '1.82 GMACs'``."""
    return _scaled(n, unit, _SI)


def nbytes(n: float) -> str:
    """Binary-free SI bytes: ``nbytes(2.5e6) == '2.5 MB'``."""
    return _scaled(n, "B", _SI)


def seconds(s: float) -> str:
    """``seconds(0.0123) == '12.3 ms'``."""
    if abs(s) >= 1:
        return f"{s:.3g} s"
    return _scaled(s, "s", _SMALL)


def watts(w: float) -> str:
    return _scaled(w, "W", [(1e3, "k")] + _SMALL)


def joules(j: float) -> str:
    return _scaled(j, "J", _SMALL)


def rate(ops_per_s: float, unit: str = "OP/s") -> str:
    return _scaled(ops_per_s, unit, _SI)
