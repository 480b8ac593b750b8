"""A real `edgefit optimize` run: its results.json validates against the shipped schema and renders."""

from __future__ import annotations

import json

import pytest

from edgefit.cli import main

pytestmark = pytest.mark.slow


def test_optimize_results_validate_and_render(capsys, tmp_path):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is part of the dev extra")
    from edgefit.report import results_schema

    try:
        main(["optimize", "--example", "ds-cnn-kws", "--target", "orin", "--trials", "2", "--out", str(tmp_path),
              "--json", "-q"])
    except SystemExit as exc:
        assert exc.code == 0, capsys.readouterr().err[-2000:]
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((tmp_path / "results.json").read_text())
    validator = jsonschema.Draft202012Validator(results_schema())
    validator.validate(written)
    validator.validate(printed)  # --json adds "files", which the schema allows
    try:
        main(["report", str(tmp_path / "results.json"), "-q"])
    except SystemExit as exc:
        assert exc.code == 0
    html = (tmp_path / "report.html").read_text()
    for pid in ("frontier-plot", "energy-plot", "layer-latency-plot", "waterfall-plot", "projection-plot"):
        assert f'id="{pid}"' in html
    md = (tmp_path / "report.md").read_text()
    assert "| export parity | ✅ pass |" in md
