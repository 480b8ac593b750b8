"""results.json's typed records (#15 item 2): they read every results file written before them,
write it back as it was, and the shipped JSON Schema is generated from them, having only gained
fields over the hand-written schema it replaced."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from edgefit.records import (
    RESULTS_SCHEMA_ID,
    Check,
    ChoiceRecord,
    Counts,
    DoneCandidate,
    EstimatedLatency,
    Estimate,
    Results,
    results_json_schema,
    results_schema_text,
)

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is part of the dev extra")
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "report" / "data"
FIXTURES = ["results-host-cpu.json", "results-orin.json"]


def _load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def test_the_shipped_schema_is_the_one_generated_from_the_records():
    shipped = (ROOT / "edgefit" / "report" / "results.schema.json").read_text(encoding="utf-8")
    assert shipped == results_schema_text(), "a record changed: run `make schema`"
    from edgefit.report import RESULTS_SCHEMA_ID as report_id

    assert report_id == RESULTS_SCHEMA_ID
    jsonschema.Draft202012Validator.check_schema(results_json_schema())


@pytest.mark.parametrize("name", FIXTURES)
def test_files_written_before_the_records_read_and_write_back_unchanged(name):
    res = _load(name)
    record = Results.model_validate(res)
    assert json.loads(json.dumps(record.to_dict())) == res
    jsonschema.Draft202012Validator(results_json_schema()).validate(res)
    assert record.candidates[0].accuracy.value == res["candidates"][0]["accuracy"]["value"]


def test_fields_a_newer_edgefit_adds_survive_a_read_and_write():
    res = _load(FIXTURES[0])
    res["future_block"] = {"a": 1}
    res["candidates"][0]["latency"]["future_field"] = 2.5
    res["selection"]["future"] = "x"
    back = Results.model_validate(res).to_dict()
    assert back["future_block"] == {"a": 1}
    assert back["candidates"][0]["latency"]["future_field"] == 2.5
    assert back["selection"]["future"] == "x"


def _fields(schema: dict, node: dict, path: str, out: dict[str, set[str]]) -> None:
    """Every object path in ``schema`` → the union of its property names and required fields
    (``required|`` prefixed); unions and conditionals are walked into."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if (path, name) in out.setdefault("__seen__", set()):
            return
        out["__seen__"].add((path, name))
        node = schema["$defs"][name]
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(key, []):
            _fields(schema, sub, path, out)
    if "then" in node:
        _fields(schema, node["then"], path, out)
    if "items" in node:
        _fields(schema, node["items"], path + "[]", out)
    here = out.setdefault(path, set())
    here.update(node.get("properties", {}))
    here.update(f"required|{r}" for r in node.get("required", []))
    for name, sub in node.get("properties", {}).items():
        _fields(schema, sub, f"{path}.{name}", out)


def test_the_generated_schema_only_adds_fields_to_the_hand_written_one():
    old_schema = json.loads((DATA / "results.schema.handwritten.json").read_text())
    new_schema = results_json_schema()
    # other tools may point at a definition by name ("#/$defs/candidate"): every one still exists
    assert set(old_schema["$defs"]) <= set(new_schema["$defs"])
    old: dict = {}
    new: dict = {}
    _fields(old_schema, old_schema, "", old)
    _fields(new_schema, new_schema, "", new)
    for path, names in old.items():
        if path == "__seen__":
            continue
        fields = {n for n in names if not n.startswith("required|")}
        assert fields <= new.get(path, set()), f"{path} lost {fields - new.get(path, set())}"
        # a field the old schema did not require (even conditionally) is not required now:
        # every file that was valid stays valid
        required_now = {n for n in new.get(path, set()) if n.startswith("required|")}
        assert required_now <= names, f"{path} now requires {required_now - names}"


def test_a_check_says_its_percentile_and_older_labels_still_read():
    kw = dict(unit="s", limit=0.01, value=0.005, fits=True, source="calibrated")
    assert Check(constraint="latency (p90 budget)", percentile=90, **kw).latency_percentile() == 90
    assert Check(constraint="latency (p95 budget; mean)", **kw).latency_percentile() == 95
    assert Check(constraint="latency (p99, measured p99)", **kw).latency_percentile() == 99
    assert Check(constraint="latency", **kw).latency_percentile() == 99
    memory = Check(constraint="memory sram (budget)", unit="B", limit=1, value=1, fits=True,
                   source="counted")
    assert memory.latency_percentile() is None


def test_records_refuse_what_results_json_cannot_hold():
    with pytest.raises(ValidationError, match="unit"):
        Check(constraint="latency", unit="ms", limit=1, value=1, fits=True, source="measured")
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Counts(screened=-1, could_fit=0, materialized=0, reused=0, failed=0)
    res = _load(FIXTURES[0])
    bad = copy.deepcopy(res)
    bad["candidates"][0]["latency"]["source"] = "guessed"
    with pytest.raises(ValidationError, match="guessed"):
        Results.model_validate(bad)
    bad = copy.deepcopy(res)
    del bad["candidates"][0]["accuracy"]
    with pytest.raises(ValidationError, match="accuracy"):
        Results.model_validate(bad)


def test_an_estimated_latency_carries_the_estimates_source_and_error_bar():
    est = Estimate(latency_s=2e-3, energy_j=1e-3, average_power_w=0.5, weight_bytes=10,
                   peak_activation_bytes=20, source="datasheet", error=0.3)
    lat = EstimatedLatency.of(est)
    assert lat.to_dict() == {"source": "estimated", "estimate_source": "datasheet", "error": 0.3,
                             "p50_s": 2e-3, "p90_s": 2e-3, "p99_s": 2e-3, "mean_s": 2e-3}


def test_the_choice_record_has_the_search_choices_fields():
    from edgefit.search import Choice

    assert set(ChoiceRecord.model_fields) == {f.name for f in dataclasses.fields(Choice)}
    assert ChoiceRecord.model_validate(Choice().to_dict()).to_dict() == Choice().to_dict()
    from edgefit.records.testing import done_candidate, failed_candidate

    # the test records' candidates are the model as it came
    assert done_candidate("a" * 16, accuracy=1.0, p50_s=1e-3).choice.to_dict() == Choice().to_dict()
    assert failed_candidate("b" * 16).choice.to_dict() == Choice().to_dict()


def test_a_done_candidate_needs_its_figures():
    res = _load(FIXTURES[0])
    cand = res["candidates"][0]
    assert DoneCandidate.model_validate(cand).to_dict() == cand
    with pytest.raises(ValidationError, match="latency"):
        DoneCandidate.model_validate({k: v for k, v in cand.items() if k != "latency"})


def test_a_finished_record_that_breaks_the_format_is_kept_as_failed_saying_where():
    from types import SimpleNamespace

    from edgefit.search._figures import finished_record

    est = SimpleNamespace(latency_s=1e-3, energy_j=1e-3, source="datasheet", error=0.5)
    screened = SimpleNamespace(estimate=est, feasible=True, reasons=())
    cand = {k: v for k, v in _load(FIXTURES[0])["candidates"][0].items() if k not in ("key", "screen")}
    good = finished_record(cand, "ab" * 8, screened)
    assert good.status == "done" and good.key == "ab" * 8
    assert good.to_dict()["screen"] == {"latency_s": 1e-3, "energy_j": 1e-3, "feasible": True, "reasons": [],
                              "source": "datasheet", "error": 0.5}
    broken = {**cand, "latency": {**cand["latency"], "p50_s": -1.0}}
    bad = finished_record(broken, "ab" * 8, screened)
    assert bad.status == "failed" and bad.stage == "record"
    assert "latency.measured.p50_s" in bad.error and "greater than or equal to 0" in bad.error
    assert Results.model_validate({**_load(FIXTURES[0]), "candidates": [bad.to_dict()]}).candidates[0] == bad
