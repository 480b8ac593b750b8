"""results.json's JSON Schema: valid draft 2020-12, ships in the package, accepts real results, rejects bad ones."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from edgefit.errors import EdgefitError
from edgefit.report import RESULTS_SCHEMA_ID, load_results, results_schema, schema_errors

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is part of the dev extra")
ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"


def test_schema_is_valid_draft_2020_12_and_versioned():
    schema = results_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema"]["const"] == RESULTS_SCHEMA_ID == "edgefit-results/1"


@pytest.mark.parametrize("name", ["host-cpu", "orin"])
def test_real_results_validate(name):
    res = json.loads((DATA / f"results-{name}.json").read_text())
    jsonschema.Draft202012Validator(results_schema()).validate(res)
    assert schema_errors(res) == []


def test_schema_ships_as_package_data():
    from importlib.resources import files

    assert json.loads(files("edgefit.report").joinpath("results.schema.json").read_text())["title"] == "edgefit results"


@pytest.mark.parametrize("edit, fragment", [
    (lambda r: r.pop("candidates"), "candidates"),
    (lambda r: r["candidates"][0].pop("latency"), "latency"),
    (lambda r: r["candidates"][0]["latency"].update(source="guessed"), "guessed"),
    (lambda r: r["selection"].update(winner="not-a-key"), "not-a-key"),
    (lambda r: r["candidates"][0]["checks"][0].update(unit="ms"), "ms"),
])
def test_bad_results_are_rejected_with_the_field(tmp_path, edit, fragment):
    res = json.loads((DATA / "results-host-cpu.json").read_text())
    bad = copy.deepcopy(res)
    edit(bad)
    assert any(fragment in e for e in schema_errors(bad))
    path = tmp_path / "results.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(EdgefitError, match="does not match the results schema") as info:
        load_results(path)
    assert info.value.exit_code == 2


def test_other_schema_version_and_non_json_are_usage_errors(tmp_path):
    res = json.loads((DATA / "results-host-cpu.json").read_text())
    res["schema"] = "edgefit-results/2"
    path = tmp_path / "results.json"
    path.write_text(json.dumps(res))
    with pytest.raises(EdgefitError, match="edgefit-results/2"):
        load_results(path)
    path.write_text("{not json")
    with pytest.raises(EdgefitError, match="not JSON"):
        load_results(path)
    with pytest.raises(EdgefitError, match="not found"):
        load_results(tmp_path / "missing.json")


@pytest.mark.slow
def test_wheel_carries_the_schema(tmp_path):
    pytest.importorskip("build", reason="the 'build' package is part of the dev extra")
    out = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    names = zipfile.ZipFile(next(tmp_path.glob("edgefit-*.whl"))).namelist()
    assert "edgefit/report/results.schema.json" in names


def test_import_edgefit_report_is_light():
    heavy = ("torch", "numba", "onnxruntime", "onnx", "pydantic", "optuna", "numpy")
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import edgefit.report"],
                         capture_output=True, text=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert not [m for m in heavy if m in imported]
