"""One reader for every quantity a user types: durations, calendar spans, shares, sizes, energies.

Every option that takes a number with a unit (``--budget 10m``, ``--slo-tpot 50ms``,
``--deadline 26w``, ``--max-regression 5%``, ``--overhead 4GiB``, ``energy=2mJ``) reads it here, so
one spelling means one thing everywhere and a typo is one :class:`~edgefit.errors.EdgefitError`
line that lists the spellings accepted.

**The rule for** ``m``: a bare ``m`` is *minutes* wherever a duration is read (``--budget 10m``, as
in ``timeout 10m``, Go and systemd). Months are only ever ``mo``, ``month`` or ``months``. A
calendar span (a deadline) refuses a bare ``m``, since a deadline in minutes is never meant and
reading it as months would break the rule; the error says to write ``6mo``. An upper-case ``M`` is
refused everywhere (ISO 8601 reads ``P6M`` as six months). Other units are case-insensitive
(``50MS`` is 50 ms, ``4gb`` is 4 GB).

Everything :mod:`edgefit._format` prints reads back: ``parse_duration(fmt.seconds(x))`` is ``x``
to the printed digits.

>>> parse_duration("10m", where="--budget"), parse_span_days("26w", where="--deadline")
(600.0, 182.0)
>>> parse_fraction("5%", where="--max-regression"), parse_bytes("4GiB", where="--overhead")
(0.05, 4294967296.0)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from edgefit.errors import EdgefitError

MONTH_DAYS = 365.25 / 12  # a calendar month on average: 30.44 days
YEAR_DAYS = 365.25


def _spellings(**groups: tuple[float, tuple[str, ...]]) -> tuple[dict[str, float], str]:
    """The table (every spelling, lower case → factor) and the list an error shows (the keyword
    names, smallest first)."""
    table = {name: factor for factor, names in groups.values() for name in names}
    return table, ", ".join(k for k, _ in sorted(groups.items(), key=lambda kv: kv[1][0]))


# unit (lower case) → factor to the base unit; the keyword names are the spellings errors show.
# No nanoseconds: no option of edgefit means anything below a microsecond, and `1ns` for a latency
# budget is a slip that should be one line, not a search that finds nothing.
DURATION_S, _DURATION = _spellings(
    us=(1e-6, ("us", "µs", "μs", "microsecond", "microseconds")),
    ms=(1e-3, ("ms", "msec", "millisecond", "milliseconds")),
    s=(1.0, ("s", "sec", "secs", "second", "seconds")),
    min=(60.0, ("min", "m", "mins", "minute", "minutes")),
    h=(3600.0, ("h", "hr", "hrs", "hour", "hours")),
)
SPAN_DAYS, _SPAN = _spellings(
    d=(1.0, ("d", "day", "days")),
    w=(7.0, ("w", "wk", "week", "weeks")),
    mo=(MONTH_DAYS, ("mo", "month", "months")),
    y=(YEAR_DAYS, ("y", "yr", "year", "years")),
)
BYTES, _BYTES = _spellings(
    B=(1.0, ("b", "byte", "bytes")),
    kB=(1e3, ("kb",)),
    MB=(1e6, ("mb",)),
    GB=(1e9, ("gb",)),
    TB=(1e12, ("tb",)),
    PB=(1e15, ("pb",)),
    KiB=(2.0**10, ("kib",)),
    MiB=(2.0**20, ("mib",)),
    GiB=(2.0**30, ("gib",)),
    TiB=(2.0**40, ("tib",)),
)
ENERGY_J, _ENERGY = _spellings(
    pJ=(1e-12, ("pj",)),
    nJ=(1e-9, ("nj",)),
    uJ=(1e-6, ("uj", "µj", "μj")),
    mJ=(1e-3, ("mj",)),
    J=(1.0, ("j",)),
)

_QUANTITY = re.compile(
    r"\s*\+?(?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?)\s*(?P<unit>[^\d\s.+-][^\s]*)?\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Kind:
    """How one kind of quantity is written: its spellings, the unit of a plain number (key and
    name; None: a plain number is refused), spellings refused with the reason (exact case), and
    what an error shows."""

    what: str
    table: dict[str, float]
    accepted: str
    example: str
    bare: tuple[str, str] | None
    refused: dict[str, str] = field(default_factory=dict)


_M_MONTHS = "'m' means minutes in edgefit; months are 'mo'"
DURATION = _Kind(
    "duration",
    DURATION_S,
    f"one of {_DURATION}",
    "50ms, 30s or 10min",
    ("s", "seconds"),
    {"M": "'M' is read as months by ISO 8601; minutes are 'min' or 'm'"},
)
SPAN = _Kind(
    "deadline",
    SPAN_DAYS,
    f"one of {_SPAN}",
    "180d, 26w, 6mo or 1y",
    None,
    {"m": _M_MONTHS, "M": _M_MONTHS},
)
SHARE = _Kind("share", {"%": 0.01, "": 1.0}, "a % sign or none", "5% or 0.05", ("", ""))
SIZE = _Kind("size", BYTES, f"one of {_BYTES}", "4GB, 3.5GiB or 512MB", None)
ENERGY = _Kind("energy", ENERGY_J, f"one of {_ENERGY}", "2mJ or 0.5J", ("j", "joules"))


def _read(
    text: str | float,
    kind: _Kind,
    *,
    where: str,
    what: str | None,
    lo: float = 0.0,
    lo_open: bool = True,
    hi: float | None = None,
) -> float:
    """``text`` in the kind's base unit, checked to lie in ``lo``..``hi``."""
    raw, what = str(text), what or kind.what
    match = _QUANTITY.fullmatch(raw)
    unit = match.group("unit") if match else None
    if match and unit is not None and unit in kind.refused:
        raise EdgefitError(
            f"cannot read {what} {raw.strip()!r}: {kind.refused[unit]}",
            where=where,
            fix=f"write it with {kind.accepted}, e.g. {kind.example}",
        )
    key = unit.lower() if unit is not None else (kind.bare[0] if kind.bare else None)
    if not match or key not in kind.table:
        plain = f"; a plain number is in {kind.bare[1]}" if kind.bare and kind.bare[1] else ""
        why = ": it needs a unit" if match and unit is None else ""
        raise EdgefitError(
            f"cannot read {what} {raw.strip()!r}{why}",
            where=where,
            fix=f"give a number with {kind.accepted}{plain}, e.g. {kind.example}",
        )
    value = float(match.group("num")) * kind.table[key]
    low_ok = value > lo if lo_open else value >= lo
    if not low_ok or not math.isfinite(value) or (hi is not None and value > hi):
        opening = "(" if lo_open else "["
        bound = f"above {lo:g}" if hi is None else f"in {opening}{lo:g}, {hi:g}]"
        raise EdgefitError(
            f"{what} {raw.strip()!r} is out of range",
            where=where,
            fix=f"give one {bound}, e.g. {kind.example}",
        )
    return value


def parse_duration(
    text: str | float, *, where: str, what: str | None = None, hi_s: float | None = None
) -> float:
    """Seconds from ``50ms``, ``0.2 s``, ``10m`` (minutes), ``1h``, ``5e-2s`` or plain seconds.

    >>> parse_duration("50ms", where="--slo-tpot"), parse_duration("1.5h", where="--budget")
    (0.05, 5400.0)
    """
    return _read(text, DURATION, where=where, what=what, hi=hi_s)


def parse_span_days(text: str | float, *, where: str, what: str | None = None) -> float:
    """Days in a calendar span: ``180d``, ``26w``, ``6mo`` (365.25/12 days each), ``1y``.

    A bare number is refused (days or weeks?), and so is ``m`` (see the module docstring).

    >>> parse_span_days("26w", where="--deadline"), round(parse_span_days("6mo", where="x"), 2)
    (182.0, 182.62)
    """
    return _read(text, SPAN, where=where, what=what)


def parse_fraction(
    text: str | float, *, where: str, what: str | None = None, hi: float = 1.0
) -> float:
    """A share in [0, hi] from ``5%`` or ``0.05``.

    >>> parse_fraction("5%", where="--cloud-share"), parse_fraction("0.1", where="--cloud-share")
    (0.05, 0.1)
    """
    return _read(text, SHARE, where=where, what=what, lo_open=False, hi=hi)


def parse_bytes(text: str | float, *, where: str, what: str | None = None) -> float:
    """Bytes from ``4GB`` (SI), ``3.5GiB`` (binary) or ``512B``; a plain number is refused, and
    0 is allowed (``--overhead 0GB``: none).

    >>> parse_bytes("4GB", where="--overhead"), parse_bytes("1KiB", where="--overhead")
    (4000000000.0, 1024.0)
    """
    return _read(text, SIZE, where=where, what=what, lo_open=False)


def parse_energy(
    text: str | float, *, where: str, what: str | None = None, hi_j: float | None = None
) -> float:
    """Joules in [0, hi_j] from ``2mJ``, ``0.5J``, ``300uJ`` or plain joules (0 is allowed: a
    tier that spends nothing on the device).

    >>> parse_energy("2mJ", where="--energy-budget"), parse_energy("0.5", where="x")
    (0.002, 0.5)
    """
    return _read(text, ENERGY, where=where, what=what, lo_open=False, hi=hi_j)


__all__ = [
    "BYTES",
    "DURATION_S",
    "ENERGY_J",
    "MONTH_DAYS",
    "SPAN_DAYS",
    "YEAR_DAYS",
    "parse_bytes",
    "parse_duration",
    "parse_energy",
    "parse_fraction",
    "parse_span_days",
]
