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
    assert cfg["objective"]["description"] == ("maximize accuracy with expected latency ≤ 120 ms (met with 95% confidence "
                                               "on new requests, allowing for the select split's sampling error)")
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


# --- the report section --------------------------------------------------------------------------------

def test_html_holds_every_tier_and_the_plots(sample_result):
    from edgefit.cascade._render import render_cascade_html

    page = render_cascade_html(sample_result)
    assert page.startswith("<!doctype html>") and "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    for tier in ("tier1", "tier2", "cloud"):
        assert f"<td>{tier}</td>" in page and f"<td>{tier} alone</td>" in page
    for svg_id in ("reliability-tier1", "reliability-tier2", "pareto-plot", "routing-mix"):
        assert f'<svg id="{svg_id}"' in page
    assert 'id="reliability-cloud"' not in page  # no calibrator, no diagram
    one = page[page.index('<svg id="reliability-tier1"'):]
    one = one[:one.index("</svg>")]
    assert 'class="diagonal"' in one and one.count('class="pt before"') == 8 and one.count('class="pt after"') == 8
    pareto = page[page.index('<svg id="pareto-plot"'):]
    pareto = pareto[:pareto.index("</svg>")]
    assert pareto.count('class="pt select"') == 5 and pareto.count('class="pt winner"') == 1
    assert "budget 120 ms" in pareto
    for text in ("96.11%", "119 ms ± up to 30%", "$0.04224", "4.2 ms ± 25% (estimate: roofline, glasses-npu",
                 "800 ms (stated: --tier cloud:latency=800ms)", "0.0871 → 0.0192 (temperature)", "10.56%",
                 "1.83 mJ ± 30%"):
        assert text in page, text


def test_markdown_has_the_same_tables(sample_result):
    from edgefit.cascade._render import render_cascade_md

    md = render_cascade_md(sample_result)
    assert md.startswith("# edgefit cascade: tier1 → tier2 → cloud\n")
    for row in ["| tier1 | glasses-npu | ≥ 0.75 | 70.37% | 98.16% | 90.83% | 4.2 ms ± 25% (estimate: roofline, "
                "glasses-npu datasheet profile) | 1.83 mJ ± 30% (estimate: glasses-npu energy per MAC) | "
                "0.0871 → 0.0192 (temperature) |",
                "| cascade (chosen thresholds) | 96.11% | 119 ms ± up to 30% | 846 ms ± up to 30% | 10.56% | "
                "$0.04224 | 4.23 mJ |",
                "| cloud alone | 98.50% | 800 ms | 800 ms | 100.00% | $0.4 | – |",
                "| tier2 alone | 95.37% | 31.4 ms ± up to 30% | 40.2 ms ± up to 30% | 0.00% | $0 | 12.7 mJ |",
                "| tier1 alone | 90.83% | 4.2 ms ± up to 25% | 6.1 ms ± up to 25% | 0.00% | $0 | 1.83 mJ |",
                "| cloud | 10.56% | 10.10% |", "| 0.75, 0.8 ← chosen | 96.48% | 115 ms | 10.10% | 96.18% | 117 ms |",
                "| [0.90, 1.00) | 199 | 0.970 | 0.900 | 199 | 0.960 | 0.950 |"]:
        assert row in md, row


# --- the files ---------------------------------------------------------------------------------------

def test_write_outputs_writes_every_file(sample_result, tmp_path):
    from edgefit.cascade._types import CASCADE_SCHEMA_ID
    from edgefit.cascade._write import write_outputs

    out = tmp_path / "out"
    t1, t2, cloud = sample_result.tiers
    t1 = replace(t1, calibrated_model=str(out / "models" / "tier1.calibrated.onnx"))
    result = replace(sample_result, tiers=(t1, t2, cloud))
    files = write_outputs(result, out, command=COMMAND)
    assert sorted(files) == ["cascade-config.json", "cascade.html", "cascade.json", "cascade.md",
                             "model-cards/cloud.md", "model-cards/tier1.md", "model-cards/tier2.md"]
    assert all(p.is_file() and p.parent.is_relative_to(out) for p in files.values())
    assert json.loads(files["cascade.json"].read_text())["schema"] == CASCADE_SCHEMA_ID
    cfg = json.loads(files["cascade-config.json"].read_text())
    validate_config(cfg)
    assert cfg["tiers"][0]["model"] == "models/tier1.calibrated.onnx" and cfg["tiers"][1]["model"] == "tier2.onnx"
    assert "# Model card: tier2 (tier 2 of 3" in files["model-cards/tier2.md"].read_text()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_write_outputs_writes_nothing_for_an_invalid_config(sample_result, tmp_path):
    from edgefit.cascade._write import write_outputs

    broken = replace(sample_result, reported=replace(sample_result.reported, cloud_share=1.7))
    with pytest.raises(EdgefitError, match=r"cascade config: expected.cloud_share: 1.7 is greater than"):
        write_outputs(broken, tmp_path / "out", command=COMMAND)
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_card_names_are_safe_and_distinct(sample_result):
    from edgefit.cascade._write import card_names

    t1, t2, cloud = sample_result.tiers
    odd = replace(sample_result, tiers=(replace(t1, spec=replace(t1.spec, name="../phone tier")),
                                        replace(t2, spec=replace(t2.spec, name="phone_tier")), cloud))
    assert card_names(odd) == ["phone_tier.md", "2-phone_tier.md", "cloud.md"]


def test_pareto_plot_goes_log_for_microsecond_tiers_and_names_an_off_front_choice(sample_result):
    from edgefit.cascade._render import render_cascade_html

    off = [replace(p, expected_latency_s=p.expected_latency_s / 100) for p in sample_result.pareto
           if p.thresholds != sample_result.chosen.thresholds]  # the chosen point is left off the front
    fast = replace(sample_result, pareto=tuple(off), pareto_report=tuple(off))
    page = render_cascade_html(fast)
    assert "expected latency per request (from the tiers&#x27; p50), log scale" in page
    assert "The chosen thresholds lie off the front: 0.85, 0.9 reach 97.21% at 1.7 ms" in page
    assert "off the front" not in render_cascade_html(sample_result)
