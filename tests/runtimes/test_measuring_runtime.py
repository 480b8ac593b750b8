"""Which runtime measures for a target comes from its YAML (#15 item 5): one function, asked by optimize, check
and calibrate, instead of "onnxruntime if host-cpu" written in each."""

from __future__ import annotations

from edgefit.runtimes import measuring_runtime
from edgefit.targets import load_target


def test_this_machine_measures_with_the_first_timing_runtime_its_yaml_lists():
    host = load_target("host-cpu")
    assert measuring_runtime(host) == "onnxruntime"
    # the YAML decides: a host target listing LiteRT first would measure on LiteRT where it is installed
    litert_first = host.model_copy(update={"runtimes": ["litert", "onnxruntime"]})
    from edgefit.runtimes import get_runtime

    expected = "litert" if get_runtime("litert").available().ok else "onnxruntime"
    assert measuring_runtime(litert_first) == expected


def test_a_compiler_estimate_or_an_unknown_runtime_never_measures():
    host = load_target("host-cpu")
    assert measuring_runtime(host.model_copy(update={"runtimes": ["vela"]})) is None  # Vela estimates
    assert measuring_runtime(host.model_copy(update={"runtimes": ["gapflow"]})) is None  # not a backend here
    assert measuring_runtime(host.model_copy(update={"runtimes": []})) is None


def test_devices_are_estimated_here_whatever_runtimes_they_list():
    for target in ("orin", "h100", "u55", "gap9", "glasses"):
        assert measuring_runtime(load_target(target)) is None
