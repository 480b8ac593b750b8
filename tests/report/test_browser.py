"""report.html in a real browser: headless Chromium renders it with no console message, the DOM holds the
plots, and the screenshot is not blank and shows the frontier plot's colours.

CI installs Debian's ``chromium`` package when it is missing (.ci/run); elsewhere the test is skipped
with the reason. Set ``EDGEFIT_TEST_ARTIFACTS=DIR`` to keep the screenshot (CI uploads it).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgefit.cli import main
from edgefit.report._svg import FRONTIER, WINNER

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (CI installs Debian's chromium)")]
WINDOW = (1280, 2000)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0")


def chromium(url: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", f"--window-size={WINDOW[0]},{WINDOW[1]}", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def open_twice(page: Path, tmp: Path, name: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess, Path]:
    """``page`` opened in Chromium twice: its DOM dumped, and a screenshot taken (``page``'s folder holds
    ``screenshot.png``); with ``EDGEFIT_TEST_ARTIFACTS`` both are kept there as ``<name>-screenshot.png``
    and ``<name>.html``."""
    url = page.resolve().as_uri()
    shot = page.parent / "screenshot.png"
    dom = chromium(url, tmp, "--dump-dom")
    png = chromium(url, tmp, f"--screenshot={shot}")
    keep = os.environ.get("EDGEFIT_TEST_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(keep) / f"{name}-screenshot.png")
        shutil.copyfile(page, Path(keep) / f"{name}.html")
    return dom, png, shot


def console_lines(stderr: str) -> list[str]:
    """Every console message Chromium logged (the report has no script: any message is a problem —
    a blocked outside resource, a failed load, an error)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def _unfilter(raw: np.ndarray, bpp: int) -> np.ndarray:
    """PNG filters 0-4 undone row by row (compiled with Numba: Paeth rows are sequential)."""
    import numba

    @numba.njit(cache=False)
    def run(raw, bpp):
        h, stride = raw.shape[0], raw.shape[1] - 1
        out = np.zeros((h, stride), np.uint8)
        for y in range(h):
            f = raw[y, 0]
            for x in range(stride):
                v = np.int32(raw[y, x + 1])
                a = np.int32(out[y, x - bpp]) if x >= bpp else np.int32(0)
                b = np.int32(out[y - 1, x]) if y > 0 else np.int32(0)
                c = np.int32(out[y - 1, x - bpp]) if (y > 0 and x >= bpp) else np.int32(0)
                if f == 1:
                    v += a
                elif f == 2:
                    v += b
                elif f == 3:
                    v += (a + b) // 2
                elif f == 4:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    v += a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                out[y, x] = v & 255
        return out

    return run(raw, bpp)


def read_png(path: Path) -> np.ndarray:
    """RGB pixels of a PNG (Pillow when installed; :func:`decode_png` otherwise)."""
    try:
        from PIL import Image
    except ImportError:
        return decode_png(path)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def decode_png(path: Path) -> np.ndarray:
    """RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes), without Pillow."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body, pos = data[pos + 8:pos + 8 + n], pos + 12 + n
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    w, h, depth, ctype, _, _, interlace = header
    assert depth == 8 and interlace == 0 and ctype in (2, 6), f"unsupported PNG {header}"
    bpp = 3 if ctype == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, 1 + w * bpp)
    return _unfilter(raw, bpp).reshape(h, w, bpp)[:, :, :3]


def near(pixels: np.ndarray, hex_color: str, tol: int = 12) -> np.ndarray:
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
    return (np.abs(pixels.astype(np.int32) - rgb).max(axis=-1) <= tol)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, new_run):
    """The fixture run's report.html, rendered by `edgefit report`, then opened in Chromium twice."""
    import json

    run = new_run()
    try:
        main(["report", str(run / "results.json"), "--html", "-q"])
    except SystemExit as exc:
        assert exc.code == 0
    dom, png, shot = open_twice(run / "report.html", tmp_path_factory.mktemp("chromium"), "report")
    return {"dom": dom, "png": png, "shot": shot, "res": json.loads((run / "results.json").read_text())}


def test_chromium_renders_without_console_messages(rendered):
    for proc in (rendered["dom"], rendered["png"]):
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert console_lines(proc.stderr) == []


def test_dom_holds_the_plots(rendered):
    dom = rendered["dom"].stdout
    for pid in ("frontier-plot", "energy-plot", "layer-latency-plot", "waterfall-plot", "projection-plot"):
        assert f'id="{pid}"' in dom
    frontier = dom[dom.index('id="frontier-plot"'):]
    frontier = frontier[:frontier.index("</svg>")]
    assert 'class="frontier-line"' in frontier and frontier.count('class="pt') == len(rendered["res"]["candidates"])


def test_screenshot_is_not_blank_and_shows_the_frontier_plot(rendered):
    pixels = read_png(rendered["shot"])
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    background = np.median(pixels.reshape(-1, 3), axis=0)
    ink = np.abs(pixels.astype(np.int32) - background).max(axis=-1) > 24
    assert ink.mean() > 0.03, "the screenshot is (almost) blank"
    packed = pixels.astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)
    assert len(np.unique(packed)) > 50
    # the frontier plot's marks: the frontier colour (line and points) and the chosen model's star
    assert near(pixels, FRONTIER).sum() > 150
    assert near(pixels, WINNER).sum() > 40


def test_console_detector_catches_errors(tmp_path):
    """The check above would see a broken page: a blocked outside image, console.error, an uncaught error."""
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                    "script-src 'unsafe-inline'\"><img src=\"https://example.com/x.png\">"
                    "<script>console.error('boom'); missing();</script>")
    lines = console_lines(chromium(page.resolve().as_uri(), tmp_path, "--dump-dom").stderr)
    text = "\n".join(lines)
    assert "boom" in text and "Uncaught" in text and "Content Security Policy" in text


def test_png_decoder_matches_pillow(rendered, tmp_path):
    image = pytest.importorskip("PIL.Image", reason="Pillow is the reference decoder")
    crop = tmp_path / "crop.png"
    with image.open(rendered["shot"]) as im:
        im.crop((0, 0, 320, 240)).save(crop)
    with image.open(crop) as im:
        expected = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(decode_png(crop), expected)
