"""The Vela catalog's datamove class: litert-torch's layout transposes around a Conv1d, measured so that the
transpose back to NCL is the fitted kernel and what runs before it is the side cost."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from edgefit.calibrate import _vela
from edgefit.calibrate._vela import KERNELS, prefix_seconds, remeasure_vela
from edgefit.errors import EdgefitError


def _report(*layers):
    return SimpleNamespace(layers=[SimpleNamespace(original_op=op, cycles=c) for op, c in layers],
                           core_clock_hz=500e6)


def test_the_prefix_is_everything_up_to_the_depthwise_convolution():
    # a datamove kernel: transpose in, the depthwise 1×1 Conv1d, then the two passes of the transpose out
    datamove = _report(("Transpose", 150), ("DepthwiseConv2D", 500), ("Transpose", 250), ("Transpose", 400))
    assert prefix_seconds(datamove) == pytest.approx(650 / 500e6)
    # a pooling kernel: the depthwise 1×1 prefix only, as before
    assert prefix_seconds(_report(("DepthwiseConv2D", 300), ("MaxPool", 200))) == pytest.approx(300 / 500e6)


def test_remeasure_replaces_one_class_and_keeps_the_others(tmp_path, monkeypatch):
    path = tmp_path / "vela.measurements.json"
    old = [{"class": "conv", "params": {"k": 3}, "seconds": 1e-5, "prefix_s": 0.0},
           {"class": "datamove", "params": {"c": 8, "l": 16}, "seconds": 9.0, "prefix_s": 0.0}]
    path.write_text(json.dumps({"environment": {"runtime": "vela"}, "kernels": old}))
    asked = []

    def measure(specs, config, progress=None):
        asked.extend(specs)
        return [{"class": s.kclass, "params": dict(s.params), "seconds": 2e-6, "prefix_s": 1e-6} for s in specs]

    monkeypatch.setattr(_vela, "measure_kernels", measure)
    remeasure_vela(path, ("datamove",))
    rows = json.loads(path.read_text())["kernels"]
    n = next(count for kclass, count, _ in KERNELS if kclass == "datamove")
    assert {s.kclass for s in asked} == {"datamove"} and len(asked) == n
    assert rows[0] == old[0] and len(rows) == 1 + n and all(r["seconds"] == 2e-6 for r in rows[1:])
    with pytest.raises(EdgefitError, match="no Vela calibration kernels"):
        remeasure_vela(path, ("softmax",))
