"""Write report.html and report.md for a run (atomically, next to its results.json)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._io import ensure_dir, write_atomic
from edgefit.report._content import build_report
from edgefit.report._html import render_html
from edgefit.report._md import render_md

if TYPE_CHECKING:
    from edgefit.records import Results


def write_reports(
    out_dir: str | Path,
    res: Mapping[str, Any] | Results,
    *,
    html: bool = True,
    md: bool = True,
    results_dir: str | Path | None = None,
) -> dict[str, str]:
    """Render ``res`` (a results.json dict, read once as its typed
    :class:`~edgefit.records.Results` record, or that record) into ``out_dir``; returns
    ``{"html": path, "md": path}``.

    The exported model.onnx is looked up in ``results_dir`` (default ``out_dir``): the run's
    folder.

    >>> res = load_results("edgefit-out/host-cpu/results.json")  # doctest: +SKIP
    >>> write_reports("edgefit-out/host-cpu", res)  # doctest: +SKIP
    {'html': 'edgefit-out/host-cpu/report.html', 'md': 'edgefit-out/host-cpu/report.md'}
    """
    out_dir = ensure_dir(out_dir)  # a read-only or full folder: one line before the rendering work
    rep = build_report(res, results_dir=results_dir if results_dir is not None else out_dir)
    files: dict[str, str] = {}
    if html:
        files["html"] = str(write_atomic(out_dir / "report.html", render_html(rep)))
    if md:
        files["md"] = str(write_atomic(out_dir / "report.md", render_md(rep)))
    return files
