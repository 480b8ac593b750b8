"""report.html and report.md from results.json: sections, plots, units and sources, escaping, edge cases."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from edgefit.report import build_report, load_results, render_html, render_md, verdict, write_reports

PLOTS = ("frontier-plot", "energy-plot", "layer-latency-plot", "layer-energy-plot", "waterfall-plot", "projection-plot")
SECTIONS = ("summary", "frontier", "layers", "envelope", "iteration", "reproducibility", "checklist")


def _report(run_dir):
    return build_report(load_results(run_dir / "results.json"), results_dir=run_dir)


def test_html_has_every_section_and_plot_and_is_self_contained(run_dir):
    html = render_html(_report(run_dir))
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in html
    for pid in PLOTS:
        assert f'<svg id="{pid}"' in html
    assert "<script" not in html.lower()
    # the only URLs are XML namespaces; nothing is fetched
    assert set(re.findall(r'(?:src|href)="(?!#)([^"]*)"', html)) == set()
    assert set(re.findall(r"https?://[^\s\"'<]+", html)) == {"http://www.w3.org/2000/svg"}
    assert "default-src 'none'" in html  # CSP: a stray outside reference would be blocked and logged


def test_every_svg_is_well_formed_xml_with_marks(run_dir):
    html = render_html(_report(run_dir))
    svgs = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert len(svgs) == len(PLOTS)
    ns = "{http://www.w3.org/2000/svg}"
    for svg in svgs:
        root = ET.fromstring(svg)
        assert root.find(f"{ns}title") is not None
    frontier = ET.fromstring(next(s for s in svgs if 'id="frontier-plot"' in s))
    marks = [e for e in frontier.iter() if "pt" in (e.get("class") or "").split()]
    assert len(marks) == 3  # the fixture's three finished candidates
    assert any("winner" in e.get("class") for e in marks)
    assert any(e.get("class") == "frontier-line" for e in frontier.iter())


def test_summary_numbers_carry_units_and_sources(run_dir):
    rep = _report(run_dir)
    rows = {r[0]: r for r in rep.summary}
    assert rows["latency p50"][1].endswith("µs") and "measured" in rows["latency p50"][4]
    assert rows["energy per inference"][2].endswith("J") and "estimated" in rows["energy per inference"][4]
    assert rows["weights"][4].startswith("counted")
    assert "faster" in rows["latency p50"][3]
    assert rep.headline.startswith("Chosen: res 24 · fp32")


def test_markdown_has_the_same_content_as_tables(run_dir):
    rep = _report(run_dir)
    md = render_md(rep)
    for title in ("## Summary", "## Pareto frontier", "## Per-layer latency", "## Envelope on host-cpu",
                  "## Iteration tax", "## Reproducibility record", "## Production-ready checklist"):
        assert title in md
    assert "| conv0 | conv | fp32 |" in md  # per-layer table of the re-estimated winner
    assert "Waterfall:" in md and "| data_prep |" in md
    assert md.count("✅ pass") == 4 and verdict(rep.checklist) == "ready"


def test_checklist_passes_on_a_good_run(run_dir):
    items = {i.name: i for i in _report(run_dir).checklist}
    assert [i.status for i in items.values()] == ["pass"] * 4
    assert "byte-identical" in items["export parity"].evidence
    determinism = items["determinism (p99, jitter)"].evidence
    assert "p99" in determinism and "jitter" in determinism


def test_checklist_fails_when_the_export_differs(run_dir, tiny_model):
    (run_dir / "model.onnx").write_bytes(tiny_model(n_layers=2).SerializeToString())
    items = {i.name: i for i in _report(run_dir).checklist}
    assert items["export parity"].status == "fail" and "differs" in items["export parity"].evidence


def test_damaged_export_falls_back_to_the_evaluated_file(run_dir):
    (run_dir / "model.onnx").write_bytes(b"not onnx")
    rep = _report(run_dir)
    assert rep.layers is not None and rep.layers.path != str(run_dir / "model.onnx")
    assert {i.name: i for i in rep.checklist}["export parity"].status == "fail"


def test_estimated_run_leaves_determinism_unknown(new_run):
    run = new_run("orin")
    rep = _report(run)
    items = {i.name: i for i in rep.checklist}
    assert items["determinism (p99, jitter)"].status == "unknown"
    assert verdict(rep.checklist) == "unverified"
    assert "estimated" in render_html(rep)
    jitter = next(e for e in rep.envelope if e.constraint.startswith("jitter"))
    assert jitter.fits is None  # orin sets a jitter limit; nothing was measured


def test_no_winner_reports_the_best_found(new_run):
    def no_winner(res):
        sel = res["selection"]
        sel.update(best_found=sel["winner"], winner=None, eligible=0, reason="no candidate fits the envelope")

    rep = _report(new_run(edit=no_winner))
    assert rep.headline.startswith("No candidate qualified: no candidate fits the envelope")
    assert rep.chosen_heading.startswith("best found")
    assert verdict(rep.checklist) == "not ready"
    assert "frontier-plot" in render_html(rep)


def test_missing_model_files_explain_themselves(run_dir):
    for p in run_dir.rglob("*.onnx"):
        p.unlink()
    rep = _report(run_dir)
    assert rep.layers is None and "no longer on disk" in rep.layers_note
    html = render_html(rep)
    assert "layer-latency-plot" not in html and "no longer on disk" in html


def test_text_from_results_is_escaped(new_run):
    evil = '<script>alert("x")</script> | pipe'

    def inject(res):
        res["candidates"][0]["label"] = evil
        res["data"]["evaluation"] = evil

    rep = _report(new_run(edit=inject))
    html = render_html(rep)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "\\| pipe" in render_md(rep)


def test_old_results_get_the_environment_from_the_renderer(run_dir):
    repro = {row[0]: row for row in _report(run_dir).repro}
    assert "torch" in repro["versions"][1] and "rendering this report" in repro["versions"][2]
    assert repro["seed"][1] == "0" and "edgefit optimize" in repro["command line"][1]


def test_write_reports_writes_both_atomically(run_dir):
    res = json.loads((run_dir / "results.json").read_text())
    files = write_reports(run_dir, res)
    assert set(files) == {"html", "md"}
    assert (run_dir / "report.html").read_text().startswith("<!doctype html>")
    assert not list(run_dir.glob(".report.*"))


@pytest.mark.parametrize("kind", ["sqnr", "agreement"])
def test_fidelity_metrics_render(new_run, kind):
    def metric(res):
        for c in res["candidates"]:
            c["accuracy"].update(kind=kind, value=31.5 if kind == "sqnr" else c["accuracy"]["value"])
        res["selection"]["accuracy_floor"] = 30.0 if kind == "sqnr" else res["selection"]["accuracy_floor"]

    rep = _report(new_run(edit=metric))
    html = render_html(rep)
    assert 'id="frontier-plot"' in html
    if kind == "sqnr":
        assert "dB" in rep.summary[0][2]


def test_notes_say_where_each_estimate_came_from(new_run):
    """#17: on a device target each estimated candidate's source is named once in the notes, so a
    candidate calibrated on published points (named there) is told apart from a datasheet one."""
    from edgefit.report import build_report, load_results

    detail = "calibrated on 7 published measurements (…); points: mlperf-v3.1-resnet50-singlestream"

    def calibrate_int8(res):
        for c in res["candidates"]:
            if c["label"].startswith("int8"):
                c["estimate"] = {**c["estimate"], "source": "calibrated", "source_detail": detail}

    folder = new_run("orin", edit=calibrate_int8)
    rep = build_report(load_results(folder / "results.json"), results_dir=folder)
    sources = [n for n in rep.notes if n.startswith("estimated latency of ")]
    assert any(n.endswith(detail) and "int8" in n for n in sources)
    assert any("datasheet peaks" in n and "fp16" in n for n in sources)
    assert len(sources) == len(set(sources)) == 2
