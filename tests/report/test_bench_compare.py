"""bench/compare.py: ratios of a pytest-benchmark run against bench/baseline.json (CI's benchmark gate)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("bench_compare", ROOT / "bench" / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


INTERLEAVED = "test_bench_ratios.py::test_int8_over_fp32_interleaved"


def _run(times: dict[str, float], isa=("avx512_vnni",)) -> dict:
    """A pytest-benchmark JSON: ``times`` are minima; the interleaved benchmark carries its own ratio.
    Every other self-measured ratio of the committed baseline (start-up, …) is present at its baseline
    value, so a test changes only what it names."""
    benches = []
    for name, t in times.items():
        extra = {"isa": list(isa)} | ({"int8_over_fp32": t} if name == INTERLEAVED else {})
        benches.append({"fullname": f"bench/{name}", "stats": {"min": t, "median": t * 1.1}, "extra_info": extra})
    others: dict[str, dict] = {}
    for spec in json.loads((ROOT / "bench" / "baseline.json").read_text())["ratios"].values():
        if "benchmark" in spec and spec["benchmark"] not in times:
            others.setdefault(spec["benchmark"], {"isa": list(isa)})[spec["extra_info"]] = spec["value"]
    benches += [{"fullname": f"bench/{name}", "stats": {"min": 1.0, "median": 1.1}, "extra_info": extra}
                for name, extra in others.items()]
    return {"benchmarks": benches}


def _times(numpy=0.09, numba=0.01, int8_ratio=0.3) -> dict[str, float]:
    return {"test_bench_estimator.py::test_numpy_reference": numpy,
            "test_bench_estimator.py::test_numba_one_core": numba,
            INTERLEAVED: int8_ratio}


def _main(compare, tmp_path, run: dict, *extra: str) -> int:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    return compare.main([str(path), *extra])


def test_committed_baseline_is_well_formed(compare):
    base = json.loads((ROOT / "bench" / "baseline.json").read_text())
    assert base["schema"] == compare.SCHEMA and base["stat"] == "min"
    for spec in base["ratios"].values():
        assert spec["better"] in ("higher", "lower") and 0 < spec["tolerance"] < 1 and spec["value"] > 0


def test_ratios_within_tolerance_pass(compare, tmp_path, capsys):
    assert _main(compare, tmp_path, _run(_times())) == 0
    out = capsys.readouterr().out
    assert "estimator_numba_speedup_1core" in out and "::error" not in out


@pytest.mark.parametrize("times, name", [
    (_times(numba=0.05), "estimator_numba_speedup_1core"),        # Numba lost its speed-up
    (_times(int8_ratio=1.2), "ort_int8_over_fp32_latency_resnet18"),  # int8 slower than fp32
])
def test_a_worse_ratio_fails_with_an_annotation(compare, tmp_path, capsys, times, name):
    assert _main(compare, tmp_path, _run(times)) == 1
    assert f"::error title=bench ratio {name}::" in capsys.readouterr().out


def test_absolute_speed_does_not_matter(compare, tmp_path):
    slow_machine = {k: v * 7 if k != INTERLEAVED else v for k, v in _times().items()}
    assert _main(compare, tmp_path, _run(slow_machine)) == 0


def test_missing_benchmark_fails_and_other_isa_skips(compare, tmp_path, capsys):
    times = _times()
    times.pop("test_bench_estimator.py::test_numba_one_core")
    assert _main(compare, tmp_path, _run(times)) == 1
    capsys.readouterr()
    assert _main(compare, tmp_path, _run(_times(int8_ratio=1.2), isa=("avx2",))) == 0
    assert "::warning title=bench ratio ort_int8_over_fp32_latency_resnet18::not compared" in capsys.readouterr().out


def test_update_rewrites_values_only(compare, tmp_path):
    base = tmp_path / "baseline.json"
    base.write_text((ROOT / "bench" / "baseline.json").read_text())
    assert _main(compare, tmp_path, _run(_times(numba=0.045)), "--baseline", str(base), "--update") == 0
    new = json.loads(base.read_text())
    assert new["ratios"]["estimator_numba_speedup_1core"]["value"] == 2.0
    assert new["ratios"]["estimator_numba_speedup_1core"]["tolerance"] == 0.5


def test_unreadable_input_exits_2(compare, tmp_path):
    with pytest.raises(SystemExit) as info:
        compare.main([str(tmp_path / "missing.json")])
    assert info.value.code == 2
