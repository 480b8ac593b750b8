"""A runtime that crashes or hangs on a model costs that model, not the run: onnxruntime, LiteRT and Vela.

The faults are injected in the isolation child (``EDGEFIT_TEST_CHILD_FAULT``: SIGSEGV, SIGABRT or a hang
once the runtime is loaded), limited to one runtime (``…_RUNTIME``) or to the first child (``…_ONCE``),
so that the other candidates and exports of the same run go on normally.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgefit.runtimes import MeasurementError, get_runtime
from edgefit.runtimes._child import FAULT_ENV, FAULT_ONCE_ENV, FAULT_RUNTIME_ENV
from edgefit.runtimes.testing import tiny_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    import onnx

    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    onnx.save(tiny_model(), str(path))
    return path


def _fault(monkeypatch, fault: str, *, runtime: str | None = None, once: Path | None = None) -> None:
    monkeypatch.setenv(FAULT_ENV, fault)
    if runtime:
        monkeypatch.setenv(FAULT_RUNTIME_ENV, runtime)
    if once:
        monkeypatch.setenv(FAULT_ONCE_ENV, str(once))


@pytest.mark.parametrize("fault, reason", [("segv", "killed by signal SIGSEGV"), ("hang", "timed out after 20 s")])
def test_onnxruntime_crash_or_hang_fails_one_candidate_and_the_search_goes_on(tiny_onnx, tmp_path, monkeypatch,
                                                                              fault, reason):
    from edgefit.search import OptimizeConfig, optimize, pick, resolve_base, results_dict

    _fault(monkeypatch, fault, runtime="onnxruntime", once=tmp_path / "faulted")
    config = OptimizeConfig(target="host-cpu", out_dir=tmp_path / "out", trials=3, measure_timeout_s=20)
    base = resolve_base(tiny_onnx, None, None, None, None, None)
    run = optimize(config, base)
    failed = [c for c in run.candidates.values() if c.status == "failed"]
    assert len(failed) == 1 and failed[0].stage == "measure" and reason in failed[0].error, failed
    assert sum(c.status == "done" for c in run.candidates.values()) == 2  # the ones after it were measured
    res = results_dict(run, pick(list(run.candidates.values()), run.base_accuracy, max_drop=0.01, relative=False,
                                select="latency"),
                       run.base_key, run.base_accuracy)
    assert res["counts"]["failed"] == 1 and res["counts"]["materialized"] == 3


@pytest.fixture(scope="module")
def tflite(tmp_path_factory):
    return get_runtime("litert").convert(tiny_model(), "fp32", tmp_path_factory.mktemp("litert"))


@pytest.mark.parametrize("fault, reason", [("segv", r"litert measurement child killed by signal SIGSEGV \(-11\)"),
                                           ("abort", r"killed by signal SIGABRT \(-6\)"),
                                           ("hang", "litert measurement timed out after 6 s and was killed")])
def test_litert_crash_or_hang_in_the_measuring_child_is_a_measurement_error(tflite, monkeypatch, fault, reason):
    rt = get_runtime("litert")
    _fault(monkeypatch, fault, runtime="litert")
    start = time.monotonic()
    with pytest.raises(MeasurementError, match=reason):
        rt.measure(tflite, warmup=1, runs=5, min_runs=5, timeout_s=6)
    assert time.monotonic() - start < 60
    monkeypatch.delenv(FAULT_ENV)
    assert rt.measure(tflite, warmup=1, runs=5, min_runs=5, timeout_s=120).n_runs >= 5  # this process is fine


@pytest.fixture
def winner(tiny_onnx, tmp_path):
    from edgefit.records.testing import done_candidate

    folder = tmp_path / "candidates" / "candidate-x"
    folder.mkdir(parents=True)
    (folder / "model.fp32.onnx").write_bytes(tiny_onnx.read_bytes())
    return done_candidate("ab" * 8, accuracy=1.0, p50_s=1e-3, onnx=str(folder / "model.fp32.onnx"))


def _leftovers(out: Path) -> list[str]:
    return [p.name for p in out.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]


def test_vela_crash_is_recorded_and_litert_still_exports(winner, tmp_path, monkeypatch):
    from edgefit.search._export import export_target_formats

    if not get_runtime("vela").available().ok:
        pytest.skip(get_runtime("vela").available().reason)
    _fault(monkeypatch, "abort", runtime="vela")
    out = tmp_path / "out"
    records = {r["runtime"]: r for r in export_target_formats(SimpleNamespace(runtimes=("vela", "litert")), winner,
                                                              out)}
    assert records["vela"]["status"] == "failed", records["vela"]
    assert "vela conversion child killed by signal SIGABRT" in records["vela"]["reason"]
    assert not (out / "export" / "vela").exists()  # nothing half-made is left where an export belongs
    lite = records["litert"]
    assert lite["status"] == "written" and Path(lite["path"]).is_file() and lite["parity"]["top1_agreement"] == 1.0
    assert not _leftovers(out)


def test_vela_hang_is_killed_at_the_time_limit_and_recorded(winner, tmp_path, monkeypatch):
    from edgefit.search._export import export_target_formats

    if not get_runtime("vela").available().ok:
        pytest.skip(get_runtime("vela").available().reason)
    _fault(monkeypatch, "hang", runtime="vela")
    out = tmp_path / "out"
    start = time.monotonic()
    (vela,) = export_target_formats(SimpleNamespace(runtimes=("vela",)), winner, out, timeout_s=5)
    assert time.monotonic() - start < 60
    assert vela["status"] == "failed" and "vela conversion timed out after 5 s and was killed" in vela["reason"]
    assert not (out / "export" / "vela").exists() and not _leftovers(out)


def test_litert_export_crash_is_recorded_then_a_rerun_converts_and_a_third_reuses(winner, tmp_path, monkeypatch):
    from edgefit.search._export import export_target_formats

    target, out = SimpleNamespace(runtimes=("litert",)), tmp_path / "out"
    _fault(monkeypatch, "segv", runtime="litert")
    (crashed,) = export_target_formats(target, winner, out)
    assert crashed["status"] == "failed" and "litert conversion child killed by signal SIGSEGV" in crashed["reason"]
    assert not (out / "export" / "litert").exists() and not _leftovers(out)
    monkeypatch.delenv(FAULT_ENV)
    (written,) = export_target_formats(target, winner, out)
    assert written["status"] == "written" and not written["reused"] and Path(written["path"]).is_file()
    (again,) = export_target_formats(target, winner, out)
    assert again["reused"] and again["path"] == written["path"]


@pytest.mark.parametrize("fault, reason", [("segv", r"Vela failed on tiny\.int8\.tflite \(exit -11\)"),
                                           ("hang", "Vela did not finish within 3 s")])
def test_vela_compiler_crash_or_hang_is_one_error_and_its_process_is_gone(tmp_path, monkeypatch, fault, reason):
    """Vela itself runs in its own process (``python -m ethosu.vela``): here a stand-in that crashes or hangs."""
    from edgefit.errors import EdgefitError

    rt = get_runtime("vela")
    if not rt.available().ok:
        pytest.skip(rt.available().reason)
    fake = tmp_path / "fake" / "ethosu" / "vela"
    fake.mkdir(parents=True)
    (fake.parent / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text("import os, signal, time\n" + (
        "os.kill(os.getpid(), signal.SIGSEGV)\n" if fault == "segv" else "time.sleep(3600)\n"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(tmp_path / "fake"), os.environ.get("PYTHONPATH"))
                                                     if p))
    start = time.monotonic()
    with pytest.raises(EdgefitError, match=reason):
        rt.convert(tiny_model(), "int8", tmp_path / "out", compile_timeout_s=3)
    assert time.monotonic() - start < 120
    assert not list((tmp_path / "out").glob("*_vela.tflite"))
