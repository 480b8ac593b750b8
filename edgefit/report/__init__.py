"""Reports people read and gates CI enforces: results.json's schema, report.html / report.md,
`edgefit check`.

>>> from edgefit.report import build_report, load_results, render_html, write_reports
>>> res = load_results("edgefit-out/host-cpu/results.json")              # doctest: +SKIP
>>> write_reports("edgefit-out/host-cpu", res)                           # doctest: +SKIP
>>> from edgefit.report import check, check_model
>>> outcome = check("model.onnx", "host-cpu", baseline="results.json")  # doctest: +SKIP
>>> outcome = check_model(graph, "host-cpu", onnx_path="model.onnx")      # doctest: +SKIP
>>> outcome.exit_code, [f.annotation() for f in outcome.findings]      # doctest: +SKIP

Importing this package is light: the estimator, targets and runtimes load when a report or check
needs them.
"""

from edgefit.report._check import check_model, parse_fraction, pick_baseline
from edgefit.report._checklist import Item, checklist, verdict
from edgefit.report._content import Report, build_report
from edgefit.report._findings import CheckOutcome, Finding
from edgefit.report._gate import check
from edgefit.report._html import render_html
from edgefit.report._md import render_md
from edgefit.report._repro import environment_record, package_versions
from edgefit.report._schema import RESULTS_SCHEMA_ID, load_results, results_schema, schema_errors
from edgefit.report._write import write_reports

__all__ = [
    "RESULTS_SCHEMA_ID",
    "CheckOutcome",
    "Finding",
    "Item",
    "Report",
    "build_report",
    "check",
    "check_model",
    "checklist",
    "environment_record",
    "load_results",
    "package_versions",
    "parse_fraction",
    "pick_baseline",
    "render_html",
    "render_md",
    "results_schema",
    "schema_errors",
    "verdict",
    "write_reports",
]
