"""Inline SVG charts for report.html: no plotting library, no script, no network.

Each chart is one ``<svg>`` with an ``id`` (tests and readers find it by that) and a ``<title>``
per mark, so hovering a point names the candidate. All text goes through :func:`esc`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# One palette for the whole report (colour-blind safe pairs; frontier and winner stand out).
FRONTIER = "#d1495b"
WINNER = "#edae49"
BASELINE = "#00798c"
OTHER = "#7d8ea3"
GRID = "#e3e7ec"
INK = "#1f2933"
PALE = "#9aa5b1"

W, H = 580, 340
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 34, 52


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(v: float) -> str:
    return f"{v:.1f}"


@dataclass(frozen=True)
class Axis:
    """One axis from ``lo`` to ``hi`` (log or linear) with a label and a tick formatter."""

    lo: float
    hi: float
    label: str
    log: bool = False
    fmt: Callable[[float], str] | None = None  # None: as many decimals as the tick step needs

    @classmethod
    def fit(
        cls,
        values: Sequence[float],
        label: str,
        *,
        log: bool = False,
        fmt=None,
        pad: float = 0.08,
        floor: float | None = None,
    ) -> Axis:
        """An axis spanning ``values`` with a margin (a factor on log axes)."""
        vals = [
            v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)
        ] or [1.0]
        lo, hi = min(vals), max(vals)
        if log:
            lo, hi = (lo / 1.5, hi * 1.5) if hi / lo > 1.01 else (lo / 2, hi * 2)
        else:
            span = hi - lo or max(abs(hi) * 0.05, floor or 1e-3)
            lo, hi = lo - pad * span, hi + pad * span
        return cls(lo, hi, label, log, fmt)

    def frac(self, v: float) -> float:
        if self.log:
            return (math.log10(v) - math.log10(self.lo)) / (
                math.log10(self.hi) - math.log10(self.lo)
            )
        return (v - self.lo) / (self.hi - self.lo)

    def contains(self, v: float) -> bool:
        return v is not None and self.lo <= v <= self.hi

    def _step(self) -> float:
        raw = (self.hi - self.lo) / 5
        mag = 10 ** math.floor(math.log10(raw))
        return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)

    def text(self, v: float) -> str:
        if self.fmt is not None:
            return self.fmt(v)
        if self.log:
            return f"{v:g}"
        step = self._step()
        mag = math.floor(math.log10(step) + 1e-9)
        decimals = max(0, -mag) + (
            1 if round(step / 10**mag, 6) == 2.5 else 0
        )  # 0.0025 needs 4 places
        return f"{v:.{decimals}f}"

    def ticks(self) -> list[float]:
        if self.log:
            k0, k1 = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            for mults in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
                out = [
                    m * 10.0**k
                    for k in range(k0, k1 + 1)
                    for m in mults
                    if self.lo <= m * 10.0**k <= self.hi
                ]
                if len(out) >= 3:
                    return out
            return out
        step = self._step()
        first = math.ceil(self.lo / step) * step
        return [first + i * step for i in range(int((self.hi - first) / step + 1e-9) + 1)]


def _star(cx: float, cy: float, size: float) -> str:
    radius = [size if i % 2 == 0 else size * 0.45 for i in range(10)]
    return " ".join(
        f"{cx + r * math.sin(i * math.pi / 5):.1f},{cy - r * math.cos(i * math.pi / 5):.1f}"
        for i, r in enumerate(radius)
    )


class Frame:
    """A plot area with two axes; marks are added in data coordinates and collected as SVG text."""

    def __init__(
        self,
        svg_id: str,
        title: str,
        x: Axis,
        y: Axis,
        *,
        width: int = W,
        height: int = H,
        left: int = LEFT,
    ) -> None:
        self.id, self.title, self.x, self.y = svg_id, title, x, y
        self.width, self.height, self.left = width, height, left
        self.parts: list[str] = []

    def px(self, v: float) -> float:
        return self.left + self.x.frac(v) * (self.width - self.left - RIGHT)

    def py(self, v: float) -> float:
        return self.height - BOTTOM - self.y.frac(v) * (self.height - BOTTOM - TOP)

    def _axes(self) -> list[str]:
        x0, x1, y0, y1 = self.left, self.width - RIGHT, self.height - BOTTOM, TOP
        out = [
            f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="#fff" '
            f'stroke="{PALE}"/>'
        ]
        for t in self.x.ticks():
            p = _num(self.px(t))
            out.append(
                f'<line x1="{p}" y1="{y1}" x2="{p}" y2="{y0}" stroke="{GRID}"/>'
                f'<text x="{p}" y="{y0 + 16}" text-anchor="middle" '
                f'class="tick">{esc(self.x.text(t))}</text>'
            )
        for t in self.y.ticks():
            p = _num(self.py(t))
            out.append(
                f'<line x1="{x0}" y1="{p}" x2="{x1}" y2="{p}" stroke="{GRID}"/>'
                f'<text x="{x0 - 6}" y="{p}" text-anchor="end" dominant-baseline="middle" '
                'class="tick">'
                f"{esc(self.y.text(t))}</text>"
            )
        out.append(
            f'<text x="{(x0 + x1) / 2:.1f}" y="{self.height - 12}" text-anchor="middle" '
            'class="axis-label">'
            f"{esc(self.x.label)}</text>"
        )
        out.append(
            f'<text transform="translate(14 {(y0 + y1) / 2:.1f}) rotate(-90)" '
            'text-anchor="middle" '
            f'class="axis-label">{esc(self.y.label)}</text>'
        )
        return out

    def point(
        self,
        x: float,
        y: float,
        tip: str,
        *,
        shape: str = "circle",
        color: str = OTHER,
        size: float = 5,
        hollow: bool = False,
        cls: str = "pt",
        edge: str | None = None,
    ) -> None:
        """One mark; ``edge`` outlines it in a colour (the chosen model on the frontier)."""
        cx, cy = self.px(x), self.py(y)
        fill = "#fff" if hollow else color
        stroke, width = (edge, 2.0) if edge else (color, 1.6) if hollow else (INK, 0.8)
        style = f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"'
        if shape == "star":
            mark = f'<polygon points="{_star(cx, cy, size)}" {style}'
        elif shape == "square":
            mark = (
                f'<rect x="{cx - size:.1f}" y="{cy - size:.1f}" width="{2 * size}" '
                f'height="{2 * size}" {style}'
            )
        else:
            mark = f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{size}" {style}'
        self.parts.append(
            f'{mark} class="{cls}"><title>{esc(tip)}</title></{mark.split()[0][1:]}>'
        )

    def polyline(
        self,
        pts: Sequence[tuple[float, float]],
        *,
        color: str,
        width: float = 2,
        dash: str = "",
        cls: str = "line",
        step: bool = False,
    ) -> None:
        coords: list[tuple[float, float]] = []
        for i, (x, y) in enumerate(pts):
            if step and i:
                coords.append((self.px(x), self.py(pts[i - 1][1])))
            coords.append((self.px(x), self.py(y)))
        text = " ".join(f"{a:.1f},{b:.1f}" for a, b in coords)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<polyline points="{text}" fill="none" stroke="{color}" '
            f'stroke-width="{width}"{extra} '
            f'class="{cls}"/>'
        )

    def rule(
        self, *, x: float | None = None, y: float | None = None, label: str, color: str = INK
    ) -> None:
        """A dashed reference line (budget, floor, goal) with its label, when it lies on the
        axis."""
        if x is not None and self.x.contains(x):
            p = self.px(x)
            self.parts.append(
                f'<line x1="{p:.1f}" y1="{TOP}" x2="{p:.1f}" y2="{self.height - BOTTOM}" '
                f'stroke="{color}" stroke-dasharray="5 4" class="rule"/>'
                f'<text x="{p - 4:.1f}" y="{TOP + 12}" text-anchor="end" class="rule-label" '
                f'fill="{color}">{esc(label)}</text>'
            )
        if y is not None and self.y.contains(y):
            p = self.py(y)
            self.parts.append(
                f'<line x1="{self.left}" y1="{p:.1f}" x2="{self.width - RIGHT}" y2="{p:.1f}" '
                f'stroke="{color}" stroke-dasharray="5 4" class="rule"/>'
                f'<text x="{self.width - RIGHT - 4}" y="{p - 5:.1f}" text-anchor="end" '
                f'class="rule-label" fill="{color}">{esc(label)}</text>'
            )

    def legend(self, items: Sequence[tuple[str, str, str]]) -> None:
        """``(label, color, shape)`` in a row under the title."""
        x = float(self.left)
        for label, color, shape in items:
            if shape == "line":
                self.parts.append(
                    f'<line x1="{x}" y1="{TOP - 8}" x2="{x + 14}" y2="{TOP - 8}" stroke="{color}" '
                    f'stroke-width="2"/>'
                )
            elif shape == "dash":
                self.parts.append(
                    f'<line x1="{x}" y1="{TOP - 8}" x2="{x + 14}" y2="{TOP - 8}" stroke="{color}" '
                    f'stroke-width="2" stroke-dasharray="4 3"/>'
                )
            elif shape == "square":
                self.parts.append(
                    f'<rect x="{x + 2.5}" y="{TOP - 12.5}" width="9" height="9" fill="{color}" '
                    f'stroke="{INK}" stroke-width="1"/>'
                )
            elif shape == "star":
                self.parts.append(
                    f'<polygon points="{_star(x + 7, TOP - 8, 6.5)}" fill="{color}" '
                    f'stroke="{INK}" '
                    f'stroke-width="0.8"/>'
                )
            else:
                hollow = shape == "hollow"
                self.parts.append(
                    f'<circle cx="{x + 7}" cy="{TOP - 8}" r="4.5" '
                    f'fill="{"#fff" if hollow else color}" '
                    f'stroke="{color if hollow else INK}" stroke-width="1"/>'
                )
            self.parts.append(
                f'<text x="{x + 18}" y="{TOP - 4}" class="legend">{esc(label)}</text>'
            )
            x += 26 + 6.2 * len(label)

    def svg(self) -> str:
        body = "".join(self._axes() + self.parts)
        return (
            f'<svg id="{esc(self.id)}" class="plot" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
            f'height="{self.height}">'
            f"<title>{esc(self.title)}</title>{body}</svg>"
        )


def hbars(
    svg_id: str,
    title: str,
    rows: Sequence[tuple[str, float, str]],
    *,
    fmt: Callable[[float], str],
    color: str = BASELINE,
    width: int = W,
    highlight: str | None = None,
) -> str:
    """Horizontal bars, one per ``(label, value, tooltip)``, longest scale at the widest value."""
    bar_h, gap, label_w, top = 16, 5, 200, 10
    height = top + len(rows) * (bar_h + gap) + 10
    top_value = max((v for _, v, _ in rows), default=1.0) or 1.0
    span = width - label_w - 80
    parts = []
    for i, (label, value, tip) in enumerate(rows):
        y = top + i * (bar_h + gap)
        w = max(1.0, span * value / top_value)
        fill = WINNER if highlight and label == highlight else color
        short = label if len(label) <= 30 else label[:29] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h / 2:.1f}" text-anchor="end" '
            'dominant-baseline="middle" '
            f'class="tick">{esc(short)}</text><rect x="{label_w}" y="{y}" width="{w:.1f}" '
            f'height="{bar_h}" '
            f'fill="{fill}" class="bar"><title>{esc(tip)}</title></rect><text '
            f'x="{label_w + w + 4:.1f}" '
            f'y="{y + bar_h / 2:.1f}" dominant-baseline="middle" '
            f'class="tick">{esc(fmt(value))}</text>'
        )
    return (
        f'<svg id="{esc(svg_id)}" class="plot bars" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}"><title>{esc(title)}</title>'
        f"{''.join(parts)}</svg>"
    )


def waterfall(
    svg_id: str, title: str, rows: Sequence[dict], *, bottleneck: str, width: int = W
) -> str:
    """One bar per lifecycle stage, each starting where the previous one ended (days)."""
    bar_h, gap, label_w, top = 18, 6, 110, 10
    total = max((r["start_day"] + r["counted_days"] for r in rows), default=1.0) or 1.0
    span = width - label_w - 90
    height = top + len(rows) * (bar_h + gap) + 28
    parts = []
    for i, r in enumerate(rows):
        y = top + i * (bar_h + gap)
        x = label_w + span * r["start_day"] / total
        w = span * r["counted_days"] / total
        fill = FRONTIER if r["stage"] == bottleneck else BASELINE
        days_text = f"{r['counted_days']:g} d"
        end = r["start_day"] + r["counted_days"]
        tip = (
            f"{r['stage']}: {r['counted_days']:g} d (day {r['start_day']:g} to {end:g}); "
            f"{r.get('provenance', '')}"
        )
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h / 2:.1f}" text-anchor="end" '
            'dominant-baseline="middle" '
            f'class="tick">{esc(r["stage"])}</text><rect x="{x:.1f}" y="{y}" '
            f'width="{max(w, 1.0):.1f}" '
            f'height="{bar_h}" fill="{fill}" class="bar"><title>{esc(tip)}</title></rect>'
            f'<text x="{x + max(w, 1.0) + 4:.1f}" y="{y + bar_h / 2:.1f}" '
            'dominant-baseline="middle" '
            f'class="tick">{esc(days_text)}</text>'
        )
    y = top + len(rows) * (bar_h + gap) + 14
    total_text = f"{total:g} days per iteration"
    parts.append(
        f'<text x="{label_w}" y="{y}" class="axis-label">day 0</text><text x="{label_w + span}" '
        f'y="{y}" '
        f'text-anchor="end" class="axis-label">{esc(total_text)}</text>'
    )
    return (
        f'<svg id="{esc(svg_id)}" class="plot bars" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}"><title>{esc(title)}</title>'
        f"{''.join(parts)}</svg>"
    )
