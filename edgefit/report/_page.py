"""The frame every edgefit HTML page shares (report.html, cascade.html): the head with its
Content-Security-Policy and inline CSS, sections, and tables.

A page is one self-contained file: inline CSS and SVG, no script, no network. The CSP forbids every
outside resource, so a reference that slipped in would show as a console error in a browser (the
browser tests look for those) rather than load silently.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgefit.report._svg import esc

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;
margin:0 auto;max-width:1240px;
padding:0 24px 48px;background:#fafbfc}
h1{font-size:24px;margin:24px 0 4px}
h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #d9dee4;padding-bottom:4px}
nav a{margin-right:14px;color:#00798c}.headline{font-size:16px}.note{color:#52606d;font-size:13px}
table{border-collapse:collapse;margin:8px 0;background:#fff}
th,td{border:1px solid #d9dee4;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.plots{display:flex;flex-wrap:wrap;gap:16px}.plots figure{margin:0}
.plots figcaption{font-size:13px;color:#52606d;
max-width:600px}svg.plot{background:#fff;border:1px solid #d9dee4}svg .tick{font-size:11px;
fill:#52606d}
svg .axis-label{font-size:12px;fill:#1f2933}svg .legend{font-size:11px;fill:#1f2933}
svg .rule-label{font-size:11px}
.pass{color:#1b7f3b;font-weight:600}.fail{color:#c0392b;font-weight:600}.unknown{color:#8a6d00;
font-weight:600}
.verdict{display:inline-block;padding:2px 10px;border-radius:10px;background:#eef1f4}
.kpi{display:flex;gap:24px;flex-wrap:wrap}.kpi div{background:#fff;border:1px solid #d9dee4;
padding:6px 12px}
.kpi b{display:block;font-size:18px}
"""


def html_table(
    head: list[str], rows: Sequence[Sequence[str]], *, num: tuple[int, ...] = (), cls: str = ""
) -> str:
    """A table; ``head`` is escaped here, the cells are HTML already (escape text with
    :func:`~edgefit.report._svg.esc`). Columns in ``num`` are right-aligned figures."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    num_td = ' class="num"'
    body = "".join(
        "<tr>"
        + "".join(f"<td{num_td if i in num else ''}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def page_head(title: str) -> str:
    """From the doctype to the page's ``<h1>``: the CSP, the viewport, the title and the CSS."""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, '
        f'initial-scale=1"><title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body><header><h1>{esc(title)}</h1>"
    )


def sections_html(sections: Sequence[tuple[str, str, str]]) -> str:
    """``(id, title, html)`` → one ``<section>`` each, titled, with the id the page's nav links."""
    return "".join(
        f'<section id="{sid}"><h2>{esc(title)}</h2>{html}</section>'
        for sid, title, html in sections
    )
