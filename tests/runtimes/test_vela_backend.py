"""Vela backend: the target's Vela configuration, report parsing, compiling ds-cnn-kws for ethos-u55, bench."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgefit.cli._app import app
from edgefit.errors import EdgefitError
from edgefit.runtimes import TorchModel, UnsupportedPrecisionError, get_runtime
from edgefit.runtimes._vela_report import VelaConfig, VelaReport, parse_reports, run_vela
from edgefit.targets import load_target

rt = get_runtime("vela")
needs_vela = pytest.mark.skipif(not rt.available().ok, reason=f"vela: {rt.available().reason}")


def test_config_comes_from_the_target_notes():
    config = VelaConfig.for_target("ethos-u55")
    assert (config.accelerator_config, config.system_config, config.memory_mode) == (
        "ethos-u55-128", "Ethos_U55_High_End_Embedded", "Shared_Sram")
    assert config.args()[:4] == ["--accelerator-config", "ethos-u55-128", "--config", "Arm/vela.ini"]
    with pytest.raises(EdgefitError, match="no Vela configuration"):
        VelaConfig.for_target(load_target("host-cpu"))


SUMMARY = ("experiment,network,core_clock,inferences_per_second,inference_time,sram_memory_used,"
           "off_chip_flash_memory_used,nn_macs,cycles_npu,cycles_sram_access,cycles_off_chip_flash_access,"
           "cycles_total\n"
           "default,m,500000000.0,2000.0,0.0005,10.5,20.25,1000,240000,100,200,250000\n")
PER_LAYER = ("Original Operator,NNG Operator,Target,Op Cycles,MAC Count,Name\n"
             "Conv2D,Conv2D,NPU,249000,1000,conv\nSin,Passthrough,CPU,0,0,sin\nReshape,MemoryCopy,NPU,1000,0,out\n")
STDOUT = """Network summary for m
CPU operators = 1 (33.3%)
NPU operators = 2 (66.7%)
   NPU: Conv2D = conv (outputs [1, 8, 8, 4])
   CPU: Sin = sin (outputs [1, 8, 8, 4])
   NPU: MemoryCopy = out (outputs [1, 256])
"""


def test_reports_are_parsed_with_units_and_cpu_fallbacks(tmp_path):
    (tmp_path / "s.csv").write_text(SUMMARY)
    (tmp_path / "l.csv").write_text(PER_LAYER)
    config = VelaConfig("ethos-u55-128", "Ethos_U55_High_End_Embedded", "Shared_Sram")
    report = parse_reports(tmp_path / "s.csv", tmp_path / "l.csv", STDOUT, config, "5.2.0")
    assert report.inference_time_s == 0.0005 and report.cycles_total == 250000 and report.core_clock_hz == 5e8
    assert report.sram_used_bytes == 10.5 * 1024 and report.off_chip_flash_used_bytes == 20.25 * 1024
    assert report.npu_operators == 2 and report.cpu_operators == ("Sin = sin (outputs [1, 8, 8, 4])",)
    assert [layer.target for layer in report.layers] == ["NPU", "CPU", "NPU"] and report.layers[0].cycles == 249000
    assert "NOT included" in report.describe() and "SRAM 10.5 KiB" in report.describe()
    assert VelaReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    assert report.to_dict()["provenance"].endswith("not a measurement")


def test_only_int8_is_offered(tmp_path):
    assert [p for p, reason in rt.precisions().items() if reason is None] == ["int8"]
    if rt.available().ok:
        with pytest.raises(UnsupportedPrecisionError, match="--precision int8"):
            rt.convert(object(), "fp32", tmp_path)


@pytest.fixture(scope="module")
def kws_artifact(tmp_path_factory):
    if not rt.available().ok:
        pytest.skip(f"vela: {rt.available().reason}")
    out = tmp_path_factory.mktemp("vela")
    return rt.convert(TorchModel.from_example("ds-cnn-kws"), "int8", out), out


@needs_vela
@pytest.mark.slow
def test_ds_cnn_kws_compiles_for_ethos_u55_with_time_sram_and_flash(kws_artifact):
    art, out = kws_artifact
    assert art.path.name == "ds-cnn-kws.int8_vela.tflite" and art.format == "tflite-vela"
    report = rt.report(art)
    assert report.config.accelerator_config == "ethos-u55-128" and report.config.memory_mode == "Shared_Sram"
    assert 20e-6 < report.inference_time_s < 5e-3, report.describe()  # a 2.7 M-MAC net on a 64 GMAC/s NPU
    assert report.cycles_total == pytest.approx(report.inference_time_s * report.core_clock_hz, rel=1e-6)
    assert 4 * 1024 < report.sram_used_bytes < 512 * 1024 and 16 * 1024 < report.off_chip_flash_used_bytes < 256 * 1024
    assert report.cpu_operators == () and report.nn_macs > 2e6
    assert sum(layer.cycles for layer in report.layers) == report.cycles_total
    stored = json.loads((out / "ds-cnn-kws.vela.json").read_text())
    assert stored["report"]["inference_time_s"] == report.inference_time_s
    assert art.metadata["parity"]["top1_agreement"] >= 0.75 and "SRAM" in art.metadata["note"]


@needs_vela
@pytest.mark.slow
def test_measure_is_the_labelled_vela_estimate(kws_artifact):
    art, _ = kws_artifact
    t = rt.measure(art)
    report = rt.report(art)
    assert t.p50 == t.p90 == t.p99 == t.mean == report.inference_time_s and t.jitter == 0 and t.n_runs == 1
    assert t.provenance.startswith("vendor compiler estimate (Arm Vela") and t.provenance.endswith("not a measurement")
    assert t.to_dict()["provenance"] == t.provenance and t.environment["sram_used_bytes"] == report.sram_used_bytes
    with pytest.raises(EdgefitError, match="do not match"):
        rt.measure(art, {"z": [0.0]})


@needs_vela
@pytest.mark.slow
def test_an_fp32_tflite_stays_on_the_cpu_and_says_so(tmp_path):
    from edgefit.runtimes.testing import tiny_model

    lite = get_runtime("litert").convert(tiny_model(), "fp32", tmp_path)
    report, compiled = run_vela(lite.path, VelaConfig.for_target("ethos-u55"), tmp_path / "out")
    assert report.cpu_operators and report.inference_time_s == 0 and compiled.is_file()


@needs_vela
@pytest.mark.slow
def test_bench_prints_and_stores_inference_time_sram_and_flash(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--example", "ds-cnn-kws", "--runtime", "vela", "--precision", "int8",
                                      "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "vendor compiler estimate (Arm Vela" in out and "not a measurement" in out
    assert "inference" in out and "SRAM" in out and "off-chip flash" in out and "KiB" in out
    (stored,) = tmp_path.glob("*.vela.json")
    report = json.loads(stored.read_text())["report"]
    assert report["inference_time_s"] > 0 and report["sram_used_bytes"] > 0 and report["off_chip_flash_used_bytes"] > 0
