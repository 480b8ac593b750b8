"""#17: `targets show` names the power modes, precisions and batches the published fit calibrates and
says datasheet for the rest, read from the same shipped files the estimator uses."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("target, points, backed, words", [
    ("orin", 7, ["MAXN int8 any batch"], "every other mode, precision and batch: datasheet"),
    ("hearable", 10, ["240MHz int8 batch 1", "370MHz int8 batch 1"], "every other mode"),
    ("h100", 6, ["700W int8 batch >= 256"], "every other mode, precision and batch: datasheet"),
    ("glasses", 7, [], "never calibrate it: datasheet-only"),
    ("u55", 9, [], "never calibrate it: its estimate is calibrated by profiles/ethos-u55/vela.yaml"),
    ("host-cpu", 0, [], "no published measurements"),
])
def test_targets_show_names_the_modes_and_batches_published_points_back(
    run_cli, target, points, backed, words
):
    code, out, err = run_cli("targets", "show", target, "--json")
    assert code == 0, err
    pub = json.loads(out)["published_measurements"]
    assert pub["points"] == points and pub["backed"] == backed and words in pub["summary"]


def test_show_agrees_with_the_estimator_on_what_is_backed():
    """The words `targets show` prints come from the stored fit without importing the estimator;
    they must say what ModeClocks.batches() says."""
    from edgefit._resources import data_dir
    from edgefit._yaml import load_yaml
    from edgefit.cli._targets import _batches
    from edgefit.estimate._published import PublishedCalibration

    for path in sorted(data_dir("profiles").glob("*/published.fit.yaml")):
        data = load_yaml(path)[0]
        cal = PublishedCalibration.model_validate(data)
        for name, mode in cal.modes.items():
            assert _batches(data["modes"][name]) == mode.batches()
