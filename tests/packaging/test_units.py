"""edgefit._units: the one reader of quantities a user types (#15 house tools).

Every accepted spelling reads to its value; what edgefit prints reads back; a bad or ambiguous
value is one EdgefitError line that names the option and the spellings accepted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefit import _format as fmt
from edgefit._units import (
    BYTES,
    DURATION_S,
    ENERGY_J,
    MONTH_DAYS,
    SPAN_DAYS,
    parse_bytes,
    parse_duration,
    parse_energy,
    parse_fraction,
    parse_span_days,
)
from edgefit.errors import EdgefitError

W = "--opt"


@pytest.mark.parametrize(
    "table, parse, base",
    [
        (DURATION_S, parse_duration, {"s": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0, "h": 3600.0}),
        (SPAN_DAYS, parse_span_days, {"d": 1.0, "w": 7.0, "mo": 365.25 / 12, "y": 365.25}),
        (BYTES, parse_bytes, {"b": 1.0, "kb": 1e3, "kib": 1024.0, "gb": 1e9, "gib": 2.0**30}),
        (ENERGY_J, parse_energy, {"j": 1.0, "mj": 1e-3, "uj": 1e-6, "nj": 1e-9, "pj": 1e-12}),
    ],
)
def test_every_spelling_reads_with_and_without_space_and_in_any_case(table, parse, base):
    for short, factor in base.items():
        assert table[short] == factor
    refused = {"m"} if parse is parse_span_days else set()
    for unit, factor in table.items():
        if unit in refused:
            continue
        for text in (f"3{unit}", f"3 {unit}", f" 3{unit.upper() if unit != 'm' else unit} "):
            assert parse(text, where=W) == pytest.approx(3 * factor), text


def test_word_spellings():
    assert parse_duration("2 minutes", where=W) == 120
    assert parse_duration("1 hour", where=W) == parse_duration("60min", where=W) == 3600
    assert parse_duration("250 µs", where=W) == parse_duration("250μs", where=W) == 250e-6
    assert parse_span_days("6 months", where=W) == pytest.approx(6 * MONTH_DAYS)
    assert parse_span_days("2 weeks", where=W) == parse_span_days("14 days", where=W) == 14
    assert parse_span_days("1 year", where=W) == parse_span_days("12mo", where=W) == 365.25


def test_plain_numbers_and_exponents():
    assert parse_duration("90", where=W) == 90 and parse_duration(0.2, where=W) == 0.2
    assert parse_duration("5e-2s", where=W) == pytest.approx(0.05)
    assert parse_duration("1.23e+03 s", where=W) == pytest.approx(1230)
    assert parse_energy("0.5", where=W) == 0.5 and parse_energy("0J", where=W) == 0
    assert parse_bytes("0GB", where=W) == 0
    assert parse_fraction("0.05", where=W) == 0.05 and parse_fraction("5%", where=W) == 0.05
    assert parse_fraction("150%", where=W, hi=2) == 1.5 and parse_fraction("0%", where=W) == 0


@pytest.mark.parametrize(
    "parse, text, needle",
    [
        # the ambiguity of #15: `m` is minutes for a duration, so a deadline refuses it
        (parse_span_days, "6m", "'m' means minutes in edgefit; months are 'mo'"),
        (parse_span_days, "6M", "months are 'mo'"),
        (parse_duration, "5M", "'M' is read as months"),
        (parse_span_days, "26", "it needs a unit"),
        (parse_bytes, "4096", "it needs a unit"),
        (parse_duration, "5x", "cannot read duration '5x'"),
        (parse_duration, "-1m", "cannot read duration"),
        (parse_duration, "m", "cannot read duration"),
        (parse_duration, "", "cannot read duration"),
        (parse_duration, "1ns", "cannot read duration"),
        (parse_duration, "inf", "cannot read duration"),
        (parse_duration, "nan", "cannot read duration"),
        (parse_duration, "0s", "out of range"),
        (parse_span_days, "0d", "out of range"),
        (parse_fraction, "150%", "out of range"),
        (parse_fraction, "lots", "cannot read share"),
        (parse_fraction, "5 pct", "cannot read share"),
        (parse_energy, "-1J", "cannot read energy"),
        (parse_energy, "2 W", "cannot read energy"),
        (parse_bytes, "4 GHz", "cannot read size"),
    ],
)
def test_bad_input_is_one_line_naming_the_option_and_the_spellings(parse, text, needle):
    with pytest.raises(EdgefitError) as info:
        parse(text, where=W)
    line = str(info.value)
    assert needle in line and line.startswith(f"{W}: ") and "\n" not in line
    assert "fix:" in line and "e.g." in line


def test_errors_list_the_spellings_accepted():
    def line(parse, text):
        with pytest.raises(EdgefitError) as info:
            parse(text, where=W)
        return str(info.value)

    assert "us, ms, s, min, h" in line(parse_duration, "5x")
    assert "d, w, mo, y" in line(parse_span_days, "6m")
    assert "B, kB, KiB, MB, MiB, GB, GiB" in line(parse_bytes, "4")
    assert "pJ, nJ, uJ, mJ, J" in line(parse_energy, "x")


def test_bounds():
    assert parse_duration("1h", where=W, hi_s=3600) == 3600
    with pytest.raises(EdgefitError, match=r"in \(0, 3600\]"):
        parse_duration("61min", where=W, hi_s=3600)
    with pytest.raises(EdgefitError, match=r"in \[0, 10\]"):
        parse_energy("11J", where=W, hi_j=10)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.floats(min_value=1e-6, max_value=3e4))
def test_what_edgefit_prints_as_a_duration_reads_back(seconds):
    shown = fmt.seconds(seconds)  # '12.3 ms', '1.5 s', '1.23e+03 s'
    assert parse_duration(shown, where=W) == pytest.approx(float(f"{seconds:.3g}"), rel=2e-3)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.floats(min_value=1.0, max_value=1e15))
def test_what_edgefit_prints_as_bytes_reads_back(n):
    assert parse_bytes(fmt.nbytes(n), where=W) == pytest.approx(float(f"{n:.3g}"), rel=2e-3)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.floats(min_value=1e-12, max_value=1e3))
def test_what_edgefit_prints_as_energy_reads_back(j):
    assert parse_energy(fmt.joules(j), where=W) == pytest.approx(float(f"{j:.3g}"), rel=2e-3)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_percent_and_share_agree(basis_points):
    share = basis_points / 10_000
    assert parse_fraction(f"{share:%}", where=W) == pytest.approx(share)
    assert parse_fraction(repr(share), where=W) == share


def test_the_callers_share_the_rule():
    """--budget, --deadline and the cascade's tiers go through _units: the same letter means the
    same thing in every command."""
    from edgefit.calibrate._report import parse_duration as budget
    from edgefit.cascade._tiers import parse_tier
    from edgefit.iteration import parse_deadline

    assert budget("10m", where="--budget") == 600
    with pytest.raises(EdgefitError, match="months are 'mo'"):
        parse_deadline("6m")
    assert parse_deadline("6mo") == pytest.approx(6 * MONTH_DAYS)
    tier = parse_tier("cloud:latency=800ms,p99=1.2s,energy=2mJ,accuracy=99%", 1)
    assert (tier.latency_s, tier.p99_s, tier.energy_j, tier.accuracy) == pytest.approx(
        (0.8, 1.2, 0.002, 0.99)
    )
    assert tier.usd_per_request == 0  # not stated: free
