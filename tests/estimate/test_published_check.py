"""#17: Ethos-U55's published points check its Vela-calibrated estimate and never refit it."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefit.estimate import Estimator, Plan
from edgefit.estimate._published import (
    PublishedFile,
    calibration_path,
    find_published,
    published_path,
)
from edgefit.estimate._published_check import CheckRow, check_points, check_summary
from edgefit.graph import load_graph
from edgefit.targets import load_target


@pytest.fixture(scope="module")
def net():
    """One 3x3 conv, 3 -> 32 channels at 28x28: a graph without a torch export."""
    w = numpy_helper.from_array(np.ones((32, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[1] * 4)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 28, 28])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = helper.make_model(
        helper.make_graph([node], "net", [x], [y], initializer=[w]),
        opset_imports=[helper.make_opsetid("", 18)],
    )
    model.ir_version = 9
    return load_graph(model)


def _point(pid: str, unit: str, clock: float | None = None, metric: str = "latency_mean") -> dict:
    return {
        "id": pid,
        "model": "ds-cnn-kws",
        "precision": "int8",
        "scenario": "single-stream",
        "setting": "test",
        "clocks_hz": {unit: clock} if clock else {},
        "units": [unit],
        "metric": metric,
        "value": 2.0 if metric == "latency_mean" else 500.0,
        "unit": "ms" if metric == "latency_mean" else "samples/s",
        "source": "test",
        "confidence": "M",
    }


def _file(*points: dict) -> PublishedFile:
    return PublishedFile.model_validate(
        {
            "target": "ethos-u55",
            "proxy": "test",
            "reference_clocks_hz": {
                "npu": {"value": 5e8, "source": "test"},
                "cpu": {"value": 4e8, "source": "test"},
            },
            "points": list(points),
        }
    )


def test_an_npu_point_gets_the_vela_calibrated_estimate_at_its_clock(net):
    target = load_target("ethos-u55")
    at_400, at_ref = check_points(
        target, _file(_point("a", "npu", 4e8), _point("b", "npu")), {"ds-cnn-kws": net}
    )
    direct = Estimator(net, target, unit="npu", learned=None).estimate(Plan(dtype="int8"))
    assert direct.source == "calibrated"
    assert at_ref.estimate == at_ref.clock_scaled == pytest.approx(direct.latency_s)
    assert "vela.yaml" in at_ref.source
    assert at_400.clock_scaled == pytest.approx(direct.latency_s * 500 / 400)
    assert at_400.error == pytest.approx(direct.latency_s * 1.25 / 2e-3 - 1)


def test_a_point_on_another_unit_gets_the_datasheet_estimate(net):
    target = load_target("ethos-u55")
    (row,) = check_points(target, _file(_point("c", "cpu", 4.8e8)), {"ds-cnn-kws": net})
    sheet = Estimator(net, target, unit="cpu", profile=None, learned=None)
    latency = sheet.estimate(Plan(dtype="int8")).latency_s
    assert row.unit == "cpu" and row.source.startswith("datasheet")
    assert row.clock_scaled == pytest.approx(latency * 400 / 480)


def test_a_throughput_point_is_checked_as_a_rate(net):
    target = load_target("ethos-u55")
    (row,) = check_points(
        target, _file(_point("t", "npu", metric="throughput")), {"ds-cnn-kws": net}
    )
    latency = Estimator(net, target, unit="npu", learned=None).estimate(Plan(dtype="int8"))
    assert row.clock_scaled == pytest.approx(1 / latency.latency_s)
    assert row.error == pytest.approx(row.clock_scaled / 500 - 1)


def test_summary_gives_median_and_max_per_confidence():
    pub = _file(_point("a", "npu"), {**_point("b", "npu"), "confidence": "L"})
    rows = [
        CheckRow(pub.points[0], "npu", 1.0, 1.1, 1.1, "x"),
        CheckRow(pub.points[1], "npu", 1.0, 0.5, 0.5, "x"),
    ]
    summary = check_summary(rows)
    assert summary["points"] == 2 and summary["max_abs_error"] == pytest.approx(0.5)
    assert summary["by_confidence"]["M"]["median_abs_error"] == pytest.approx(0.1)
    assert set(summary["by_confidence"]) == {"M", "L"}


def test_shipped_ethos_u55_points_are_a_proxy_check_not_a_calibration():
    target = load_target("ethos-u55")
    pub = find_published(target)
    assert pub is not None and pub.proxy  # `fidelity --update` refuses a proxy
    assert "64-MAC" in pub.proxy and "400 MHz" in pub.proxy
    assert not calibration_path("ethos-u55").exists()
    assert published_path("ethos-u55").parent.joinpath("vela.yaml").is_file()
    for p in pub.points:
        assert p.note and p.confidence in "ML"  # each says why it is a proxy
    npu = [p for p in pub.points if p.units == ["npu"]]
    assert {p.model for p in npu} >= {"mobilenet-v2-0.35-96", "mobilenet-v2"}


def test_payload_lists_every_shipped_point_with_its_estimate_source(net, monkeypatch):
    import json

    import edgefit.graph._reference as reference
    from edgefit.estimate._published_check import check_payload

    monkeypatch.setattr(reference, "reference_graph", lambda name: net)  # no exports: one graph
    payload = check_payload(load_target("ethos-u55"))
    json.dumps(payload)  # JSON-ready
    assert "nothing is fitted" in payload["method"] and payload["proxy"]
    assert payload["points"] == len(payload["rows"]) == len(find_published(load_target("u55")).points)
    for row in payload["rows"]:
        wanted = "vela.yaml" if row["unit"] == "npu" else "datasheet"
        assert wanted in row["estimate_source"] and row["note"] and row["source"]
        assert row["error"] == pytest.approx(row["clock_scaled_estimate"] / row["published"] - 1)


def test_fidelity_on_ethos_u55_checks_the_vela_estimate_and_refuses_update(net, monkeypatch, run_cli):
    """`edgefit fidelity --target u55` shows the check (Vela-calibrated estimate vs each point), not
    a datasheet fit to the points; `--update` is one line, exit 2, and writes nothing."""
    import json

    import edgefit.graph._reference as reference

    monkeypatch.setattr(reference, "reference_graph", lambda name: net)
    code, out, err = run_cli("fidelity", "--target", "u55", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["method"].startswith("check:") and "fit" not in payload
    code, out, _ = run_cli("fidelity", "--target", "u55")
    assert code == 0 and "a check; nothing fitted" in out and "median |error|" in out
    code, _, err = run_cli("fidelity", "--target", "u55", "--update")
    assert code == 2 and "only check it" in err and len(err.strip().splitlines()) == 1
    assert not calibration_path("ethos-u55").exists()


def test_the_vela_profile_calibrates_the_npu_only(net):
    """Vela's figures are the Ethos-U NPU's: an estimate on the Cortex-M55 beside it stays
    datasheet (it used to take the NPU's fitted efficiencies and say 'calibrated ... vela.yaml')."""
    from edgefit.estimate import Estimator, Plan, find_profile
    from edgefit.estimate._profile import profile_from_dict

    u55 = load_target("u55")
    prof = find_profile(u55, "vela")
    assert prof is not None and prof.units == ("npu",)
    assert profile_from_dict(prof.to_dict()).units == ("npu",)
    npu = Estimator(net, u55).estimate(Plan(dtype="int8"))
    assert npu.source == "calibrated" and "vela.yaml" in npu.source_detail
    cpu = Estimator(net, u55, unit="cpu").estimate(Plan(dtype="int8"))
    datasheet = Estimator(net, u55, unit="cpu", profile=None).estimate(Plan(dtype="int8"))
    assert cpu.source == "datasheet" and "vela.yaml" not in cpu.source_detail
    assert cpu.latency_s == pytest.approx(datasheet.latency_s)
