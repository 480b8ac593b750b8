"""cascade.html in a real browser: headless Chromium renders it with no console message, the DOM holds a
reliability diagram per calibrated tier and the Pareto curve, and the screenshot is not blank and shows
the plots' colours. Same helpers and skip rule as test_browser.py (CI installs Debian's chromium).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from edgefit.report._svg import FRONTIER, OTHER, WINNER
from test_browser import CHROMIUM, WINDOW, console_lines, near, open_twice, read_png

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (CI installs Debian's chromium)")]


def _sample(folder: Path):
    """tests/cascade/conftest.py's hand-built CascadeResult (a conftest is not importable by name)."""
    path = Path(__file__).parents[1] / "cascade" / "conftest.py"
    spec = importlib.util.spec_from_file_location("cascade_sample_result", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_sample_result(folder)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    from edgefit.cascade._write import write_outputs

    out = tmp_path_factory.mktemp("cascade")
    result = _sample(out / "tiers")
    files = write_outputs(result, out, command="edgefit cascade --example digits")
    dom, png, shot = open_twice(files["cascade.html"], tmp_path_factory.mktemp("chromium"), "cascade")
    return {"dom": dom, "png": png, "shot": shot, "result": result}


def test_chromium_renders_cascade_without_console_messages(rendered):
    for proc in (rendered["dom"], rendered["png"]):
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert console_lines(proc.stderr) == []


def test_dom_holds_every_tier_and_the_plots(rendered):
    dom = rendered["dom"].stdout
    for tier in rendered["result"].tiers:
        assert f"<td>{tier.spec.name}</td>" in dom
        assert (f'id="reliability-{tier.spec.name}"' in dom) == (tier.calibration is not None)
    pareto = dom[dom.index('id="pareto-plot"'):]
    pareto = pareto[:pareto.index("</svg>")]
    assert 'class="frontier-line"' in pareto and pareto.count('class="pt select"') == len(rendered["result"].pareto)
    assert 'id="routing-mix"' in dom


def test_screenshot_is_not_blank_and_shows_the_plots(rendered):
    pixels = read_png(rendered["shot"])
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    background = np.median(pixels.reshape(-1, 3), axis=0)
    ink = np.abs(pixels.astype(np.int32) - background).max(axis=-1) > 24
    assert ink.mean() > 0.03, "the screenshot is (almost) blank"
    # the Pareto front and the calibrated curves (frontier red), the raw curves (grey), the chosen star
    assert near(pixels, FRONTIER).sum() > 300
    assert near(pixels, OTHER).sum() > 100
    assert near(pixels, WINNER).sum() > 40
