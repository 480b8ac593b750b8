"""The cascade's outputs from a hand-built result: the app's config against its schema, the model cards'
figures, the report section's tables and plots, and the files write_outputs leaves."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest

from edgefit.cascade._card import model_card, quantity_text
from edgefit.cascade._config import CONFIG_SCHEMA_ID, cascade_config, config_errors, config_schema, validate_config
from edgefit.cascade._types import Quantity
from edgefit.errors import EdgefitError

COMMAND = "edgefit cascade --example digits --latency-budget 120ms"


# --- cascade-config.json -----------------------------------------------------------------------------

def test_config_validates_and_carries_the_routing(sample_result):
    cfg = cascade_config(sample_result)
    validate_config(cfg)
    assert cfg["schema"] == CONFIG_SCHEMA_ID == config_schema()["properties"]["schema"]["const"]
    assert [(t["name"], t["threshold"]) for t in cfg["tiers"]] == [("tier1", 0.75), ("tier2", 0.8), ("cloud", None)]
    assert [t["expected_share"] for t in cfg["tiers"]] == [0.7037, 0.1907, 0.1056]  # the report split's
    assert cfg["tiers"][0]["latency_p50"] == {"value": 0.0042, "unit": "s", "interval": 0.25,
                                              "source": "estimate: roofline, glasses-npu datasheet profile"}
    assert cfg["tiers"][1]["calibrator"]["knots_x"] == [0.31, 0.55, 0.8, 0.97]
    assert cfg["tiers"][2]["calibrator"] is None and cfg["tiers"][2]["model"] is None
    assert "tier1 answers when its calibrated confidence ≥ 0.75, else tier2" in cfg["routing"]
    assert cfg["objective"]["description"] == "maximize accuracy with expected latency ≤ 120 ms"
    json.dumps(cfg, allow_nan=False)


def test_config_names_the_calibrated_model_or_the_sidecar(sample_result, tmp_path):
    t1, t2, cloud = sample_result.tiers
    folded = replace(t1, calibrated_model=str(tmp_path / "models" / "tier1.calibrated.onnx"))
    sidecar = replace(t2, calibrator_sidecar=str(tmp_path / "models" / "tier2.calibrator.json"))
    cfg = cascade_config(replace(sample_result, tiers=(folded, sidecar, cloud)))
    validate_config(cfg)
    one, two = cfg["tiers"][:2]
    assert one["model"] == "tier1.calibrated.onnx" and one["calibrator"]["applied"] == "folded"
    assert one["calibrator"]["confidence_output"] == "confidence" and one["calibrator"]["sidecar"] is None
    assert two["model"] == "tier2.onnx" and two["calibrator"]["applied"] == "sidecar"
    assert two["calibrator"]["sidecar"] == "tier2.calibrator.json"


def _drop(d, path):
    *head, last = path
    for p in head:
        d = d[p]
    del d[last]


def _set(d, path, value):
    *head, last = path
    for p in head:
        d = d[p]
    d[last] = value


@pytest.mark.parametrize("edit, where", [
    (lambda d: _drop(d, ["tiers", 1, "threshold"]), "tiers[1].threshold"),
    (lambda d: _drop(d, ["routing"]), "routing"),
    (lambda d: _drop(d, ["tiers", 0, "latency_p50", "source"]), "tiers[0].latency_p50.source"),
    (lambda d: _set(d, ["tiers", 0, "expected_share"], "70%"), "tiers[0].expected_share"),
    (lambda d: _set(d, ["tiers", 0, "calibrator", "temperature"], "hot"), "tiers[0].calibrator.temperature"),
    (lambda d: _set(d, ["tiers", 2, "threshold"], "never"), "tiers[2].threshold"),
    (lambda d: _set(d, ["expected", "cloud_share"], 1.5), "expected.cloud_share"),
    (lambda d: _set(d, ["schema"], "edgefit-cascade-config/2"), "schema"),
])
def test_schema_rejects_with_the_json_path(sample_result, edit, where):
    cfg = copy.deepcopy(cascade_config(sample_result))
    edit(cfg)
    with pytest.raises(EdgefitError) as info:
        validate_config(cfg)
    line = str(info.value)
    assert line.startswith(f"cascade config: {where}: ") and "\n" not in line


def test_builtin_check_without_jsonschema(sample_result, monkeypatch):
    """Without the jsonschema package the schema id and the required fields are still checked."""
    import sys

    monkeypatch.setitem(sys.modules, "jsonschema", None)  # import jsonschema now raises ImportError
    cfg = copy.deepcopy(cascade_config(sample_result))
    assert config_errors(cfg) == []
    del cfg["tiers"][2]["threshold"]
    cfg["schema"] = "something/1"
    assert config_errors(cfg) == ["schema: 'something/1' is not 'edgefit-cascade-config/1'",
                                  "tiers[2].threshold: missing field"]
    with pytest.raises(EdgefitError, match=r"cascade config: \(top level\): not a JSON object"):
        validate_config([])


# --- model cards -------------------------------------------------------------------------------------

def test_model_card_carries_the_tiers_figures(sample_result):
    card = model_card(sample_result, 0, command=COMMAND)
    for text in ["# Model card: tier1 (tier 1 of 3, glasses-npu)",
                 "calibrated confidence is ≥ **0.75**, else the request goes to tier2",
                 "It answers **70.37%** of all requests on the report split (540 samples; 71.20% on the select",
                 "| accuracy alone (answers every request) | 90.83% | report (540 samples) | measured",
                 "| accuracy on the requests it answers in the cascade | 98.16% |",
                 "| ECE before calibration | 0.0871 |", "| ECE after calibration (temperature) | 0.0192 |",
                 "temperature T = 1.734", "| temperature | 0.0213 | chosen |", "| isotonic | 0.0287 |  |",
                 "calibration split (360 samples)", "outputs read as logits (detected: rows do not sum to 1)",
                 "| latency p50 | 4.2 ms ± 25% (estimate: roofline, glasses-npu datasheet profile) |",
                 "| latency p99 | 6.1 ms ± 25%", "| energy per inference | 1.83 mJ ± 30% (estimate: glasses-npu",
                 "| calibration | 360 |", "| select | 540 |", "seed 7", "UCI handwritten digits",
                 "takes 7 days and $10,000 per change", "One iteration of a weights change is 38 days",
                 "edgefit cannot know", f"| command | `{COMMAND}` |", "| onnxruntime | 1.31.1 |",
                 "| machine.cpu | AMD EPYC 7B13 |"]:
        assert text in card, text


def test_model_card_of_the_last_tier(sample_result):
    card = model_card(sample_result, 2, command=COMMAND)
    assert "As the last tier it answers every request" in card
    assert "| accuracy alone (answers every request) | 98.50% | report (540 samples) | stated: --tier cloud" in card
    assert "| latency p50 | 800 ms (stated: --tier cloud:latency=800ms) |" in card
    assert "| cost per request | $0.0004 (stated: --tier cloud:usd=0.0004) |" in card
    assert "No calibrator" in card and "ECE" not in card.split("## Metrics")[1].split("##")[0]
    assert "A cloud tier has no device loop in edgefit" in card and "waited for tiers 1–3, 836 ms" in card


def test_model_card_of_a_folded_tier_and_an_unknown_target(sample_result, tmp_path):
    t1, t2, cloud = sample_result.tiers
    t2 = replace(t2, spec=replace(t2.spec, target=str(tmp_path / "my-board.yaml")),
                 calibrator_sidecar=str(tmp_path / "tier2.calibrator.json"))
    t1 = replace(t1, calibrated_model=str(tmp_path / "tier1.calibrated.onnx"))
    result = replace(sample_result, tiers=(t1, t2, cloud))
    assert "folded into `tier1.calibrated.onnx` (graph output `confidence`)" in model_card(result, 0, command="x")
    card = model_card(result, 1, command="x")
    assert "in the JSON sidecar `tier2.calibrator.json`" in card
    assert "edgefit has no iteration loop for target" in card and "which edgefit cannot know" in card
    with pytest.raises(EdgefitError, match="tier index 3"):
        model_card(result, 3, command="x")


def test_quantity_text_states_unit_interval_and_source():
    assert quantity_text(Quantity(0.0314, "s", "estimate: roofline", 0.3)) == "31.4 ms ± 30% (estimate: roofline)"
    assert quantity_text(Quantity(0.8, "s", "measured here")) == "800 ms (measured here)"
    assert quantity_text(Quantity(0.0, "USD", "stated")) == "$0 (stated)"
    assert quantity_text(Quantity(0.0127, "J", "estimate", 0.3), source=False) == "12.7 mJ ± 30%"
