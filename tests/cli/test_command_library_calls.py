"""The library does the work (#15): each command's library function, called from Python, gives the
dict the command prints with --json, and bad input is an EdgefitError before any work.

estimate, plan, serve-plan and fidelity run for real on fast inputs; calibrate's measuring is
minutes, so its real sweep is replaced by the shipped host-cpu profile (the plumbing around it,
the payload and the CLI's rendering run) and its argument checks run for real.
"""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
import types

import pytest

import edgefit
from edgefit._io import to_json
from edgefit.errors import EdgefitError


def _json(result) -> dict:
    """``result.to_dict()`` as it reads back from the JSON the CLI prints."""
    return json.loads(to_json(result.to_dict()))


def _cli_json(run_cli, *args: str) -> dict:
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_each_command_has_its_function_at_the_front_door():
    for name, module in [
        ("estimate_model", "edgefit.estimate._api"),
        ("plan", "edgefit.iteration._api"),
        ("serve_plan", "edgefit.serve._api"),
        ("calibrate_target", "edgefit.calibrate._api"),
        ("fidelity", "edgefit.calibrate._fidelity_api"),
    ]:
        function = getattr(edgefit, name)
        assert callable(function) and function.__module__ == module and name in edgefit.__all__
    assert "estimate" not in edgefit.__all__ and "calibrate" not in edgefit.__all__


@pytest.mark.parametrize("subpackages_first", [False, True])
def test_subpackages_named_like_commands_stay_modules(subpackages_first):
    """``edgefit.estimate``/``edgefit.calibrate`` are subpackages, and importing one of their
    modules rebinds that attribute of the package: the functions are estimate_model and
    calibrate_target, whichever is imported first."""
    use = "f, c = edgefit.estimate_model, edgefit.calibrate_target"
    load = "import edgefit.estimate._hw, edgefit.calibrate._catalog"
    code = "\n".join([
        "import types, edgefit",
        *([load, use] if subpackages_first else [use, load]),
        "assert isinstance(edgefit.estimate, types.ModuleType), edgefit.estimate",
        "assert isinstance(edgefit.calibrate, types.ModuleType), edgefit.calibrate",
        "assert edgefit.estimate_model is f and edgefit.calibrate_target is c",
        "import edgefit.estimate as e, edgefit.calibrate as cal",
        "assert e.Estimator and cal.calibrate_learned and callable(edgefit.estimate_model)",
    ])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert isinstance(edgefit.estimate, types.ModuleType)


@pytest.mark.slow
def test_estimate_model_is_the_commands_json(run_cli):
    args = ("--example", "ds-cnn-kws", "--target", "orin", "--target", "hearable")
    cli = _cli_json(run_cli, "estimate", *args, "--dtype", "int8")
    result = edgefit.estimate_model("ds-cnn-kws", ["orin", "hearable"], dtype="int8")
    assert _json(result) == cli
    assert [e.target for e in result.estimates] == ["jetson-agx-orin-64gb", "gap9"]
    from edgefit.graph._examples import example_onnx_path

    graph = edgefit.load_graph(example_onnx_path("ds-cnn-kws"))
    assert edgefit.estimate_model(graph, "orin").estimates[0].latency_s > 0


@pytest.mark.parametrize("kwargs, fragment", [
    ({"dtype": "int3"}, "unknown dtype 'int3'"),
    ({"batch": 0}, "batch must be at least 1"),
    ({"threads": 0}, "threads must be at least 1"),
    ({"power_mode": "7W"}, "no power mode '7W'"),
    ({"target": "orn"}, "unknown target 'orn'"),
    ({"target": []}, "no target given"),
])
def test_estimate_model_refuses_bad_input_before_reading_the_model(kwargs, fragment):
    kwargs = {"target": "orin", **kwargs}
    with pytest.raises(EdgefitError, match=fragment):
        edgefit.estimate_model("/nonexistent/model.onnx", **kwargs)  # never read
    with pytest.raises(EdgefitError, match="no model given"):
        edgefit.estimate_model(None, "orin")


def test_plan_is_the_commands_json(run_cli):
    assert _json(edgefit.plan("orin")) == _cli_json(run_cli, "plan", "--target", "orin")
    flags = ("-t", "h100", "--deadline", "1y", "--change", "runtime", "--what-if", "training=2",
             "--set", "monitoring=0", "--accuracy-now", "0.8")
    tax = edgefit.plan("h100", deadline="1y", change=["runtime"], what_if=[("training", 2.0)],
                       overrides={"monitoring": "0"}, accuracy_now=0.8)
    assert _json(tax) == _cli_json(run_cli, "plan", *flags)
    assert tax.target_id == "h100" and tax.cycle_days == 27 and tax.to_dict() is not tax.report
    with pytest.raises(EdgefitError, match="unknown stage"):
        edgefit.plan("orin", what_if=["coffee=2"])


def test_serve_plan_is_the_commands_json(run_cli):
    flags = ("--model", "llama-3-8b", "--target", "h100", "--context", "4096", "--slo-tpot", "20ms",
             "--weights", "fp16,fp8", "--kv", "fp8", "--overhead", "4GB")
    plan = edgefit.serve_plan("llama-3-8b", "h100", context=4096, slo_tpot=0.02,
                              weights=["fp16", "fp8"], kv="fp8", overhead="4GB")
    assert _json(plan) == _cli_json(run_cli, "serve-plan", *flags)
    assert {(r.weights, r.kv) for r in plan.rows} == {("fp16", "fp8"), ("fp8", "fp8")}
    with pytest.raises(EdgefitError, match="needs a model"):
        edgefit.serve_plan(None)


@pytest.mark.parametrize("module", ["edgefit.iteration._api", "edgefit.serve._api"])
def test_the_cheap_docstring_examples_run(module):
    import importlib

    assert doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS).failed == 0


@pytest.mark.slow
def test_fidelity_is_the_commands_json_by_kind(run_cli):
    """orin: a fit on its published points; u55: the points check the Vela-calibrated estimate."""
    for target, kind in (("orin", "published"), ("u55", "check")):
        result = edgefit.fidelity(target)
        assert result.kind == kind and result.written is None
        assert _json(result) == _cli_json(run_cli, "fidelity", "--target", target)
    with pytest.raises(EdgefitError, match="only check it"):
        edgefit.fidelity("u55", update=True)


def test_fidelity_refuses_bad_input_before_measuring():
    with pytest.raises(EdgefitError, match="cannot read thread counts"):
        edgefit.fidelity("host-cpu", threads="x")
    with pytest.raises(EdgefitError, match="thread counts must be"):
        edgefit.fidelity("host-cpu", threads=[0])
    with pytest.raises(EdgefitError, match="unknown target"):
        edgefit.fidelity("orn")


@pytest.mark.parametrize("kwargs, fragment", [
    ({"method": "nope"}, "unknown method 'nope'"),
    ({"networks": 2}, "too few to cross-validate"),
    ({"budget": "soon"}, "--budget"),
    ({"threads": 0}, "threads must be at least 1"),
    ({"target": "orin", "runtime": "tensorrt", "executor": "dask"}, "unknown executor 'dask'"),
    ({"target": "orin", "runtime": "tensorrt", "method": "learned"}, "needs host-cpu"),
    ({"method": "learned", "executor": "ray"}, "runs here only"),
])
def test_calibrate_target_refuses_bad_input_before_measuring(kwargs, fragment, tmp_path):
    with pytest.raises(EdgefitError, match=fragment):
        edgefit.calibrate_target(out=tmp_path / "p.yaml", **kwargs)
    assert not list(tmp_path.iterdir())


def test_calibrate_target_on_ray_without_ray_is_the_install_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(EdgefitError) as err:
        edgefit.calibrate_target("orin", "tensorrt", executor="ray", out=tmp_path / "p.yaml")
    assert 'pip install "edgefit[ray]"' in err.value.line() and not list(tmp_path.iterdir())


def test_calibrate_target_is_the_commands_json(run_cli, monkeypatch):
    """The sweep itself is minutes of measuring: the shipped host-cpu profile stands in for its
    output, and everything around it (method, payload, rendering) runs."""
    import edgefit.calibrate._calibrate as sweep
    from edgefit._resources import data_dir
    from edgefit.estimate import load_profile

    calls = []

    def measured(target, runtime, **kwargs):
        calls.append((target, runtime, kwargs["budget_s"], kwargs["threads"]))
        return load_profile(data_dir("profiles") / "host-cpu" / "onnxruntime.yaml")

    monkeypatch.setattr(sweep, "calibrate", measured)
    result = edgefit.calibrate_target(method="catalog", budget="10s", threads=1, fidelity=False)
    assert result.method == "catalog" and result.fidelity is None and result.measured_on is None
    assert calls == [("host-cpu", "onnxruntime", 10.0, 1)]
    flags = ("calibrate", "--method", "catalog", "--budget", "10s", "--threads", "1",
             "--no-fidelity")
    assert _json(result) == _cli_json(run_cli, *flags)
    code, out, _ = run_cli(*flags)
    assert code == 0 and "kernels measured on onnxruntime" in " ".join(out.split())
