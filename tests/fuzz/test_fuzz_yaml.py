"""Fuzzing the YAML intake: hostile and broken target files through the CLI, and a property-based fuzzer.

Every file of :mod:`yaml_corpus` goes through ``edgefit targets validate FILE`` and ``edgefit estimate
MODEL --target FILE`` in-process, each under a wall-clock limit: the broken ones must end in exit 2 and
exactly one ``edgefit: error:`` line naming the file and the reason, the valid ones in exit 0, and
none in a traceback or a hang. Hypothesis then mutates the shipped targets (values, keys, types, and
raw bytes) and checks that loading gives a Target or one-line EdgefitError, never anything else.
"""

from __future__ import annotations

import contextlib
import copy
import json
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml_corpus import ANY, MARKER, SHIPPED, Case, hostile_cases, valid_cases

from edgefit.errors import EdgefitError
from edgefit.targets import Target, load_target_file

PER_INPUT_S = 10  # each input takes milliseconds to about a second; past this it is a hang
HOSTILE = hostile_cases()
VALID = valid_cases()
SHIPPED_NAMES = {f"shipped-{p.stem}" for p in SHIPPED}
FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class InputTimeout(Exception):
    """An input ran past :data:`PER_INPUT_S`."""


@contextlib.contextmanager
def time_limit(label: str, seconds: float = PER_INPUT_S):
    """Fail the input with :class:`InputTimeout` when it runs past ``seconds`` (a hang in Python code)."""
    def expire(signum, frame):
        raise InputTimeout(f"{label} ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A one-layer ONNX model: estimate's cheapest input, so the time goes to the target file."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    w = numpy_helper.from_array(np.ones((16, 4), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture(scope="module")
def warm_cli(tiny_model) -> Path:
    """One untimed estimate first: imports and caches are start-up cost, not the input's."""
    from edgefit.cli import main

    with contextlib.suppress(SystemExit):
        main(["estimate", str(tiny_model), "--target", str(SHIPPED[0])])
    return tiny_model


def _commands(path: Path, model: Path) -> list[tuple[str, ...]]:
    return [("targets", "validate", str(path)), ("estimate", str(model), "--target", str(path))]


def _one_error_line(code: int, out: str, err: str, label: str) -> str:
    assert "Traceback" not in out + err, f"{label}: traceback\n{err}"
    assert code == 2, f"{label}: exit {code}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgefit: error: "), f"{label}: stderr is {err[:2000]!r}"
    assert len(lines[0]) < 1000, f"{label}: the error line is {len(lines[0])} characters"
    return lines[0]


def _params(cases: list[Case]) -> list:
    return [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in cases]


@pytest.mark.parametrize("case", _params(HOSTILE))
def test_hostile_yaml_is_refused_in_one_line(case: Case, tmp_path: Path, run_cli, warm_cli):
    marker = Path.cwd() / MARKER
    assert not marker.exists()
    path = case.build(tmp_path)
    for args in _commands(path, warm_cli):
        label = f"{case.name}: edgefit {args[0]}"
        with time_limit(label):
            code, out, err = run_cli(*args)
        line = _one_error_line(code, out, err, label)
        assert case.expect in line.lower(), f"{label}: expected {case.expect!r} in {line!r}"
        assert path.name in line, f"{label}: the line does not name the file: {line!r}"
    assert not marker.exists() and not (tmp_path / MARKER).exists(), f"{case.name}: a payload ran"


@pytest.mark.parametrize("case", _params(VALID))
def test_valid_yaml_is_accepted(case: Case, tmp_path: Path, run_cli, warm_cli):
    path = case.build(tmp_path)
    for args in _commands(path, warm_cli):
        label = f"{case.name}: edgefit {args[0]}"
        with time_limit(label):
            code, out, err = run_cli(*args)
        assert code == 0 and "Traceback" not in out + err, f"{label}: exit {code}\n{err[-2000:]}"
        assert out.strip(), label
    code, out, _ = run_cli("targets", "validate", str(path), "--json")
    assert code == 0 and json.loads(out) == [{"file": str(path), "id": "gap9" if case.name not in SHIPPED_NAMES
                                              else case.name.removeprefix("shipped-"), "valid": True}]


def test_the_corpus_covers_every_class_of_the_issue():
    names = " ".join(c.name for c in HOSTILE)
    for word in ("size-50mb", "billion-laughs", "int-5001", "deep-flow", "utf16", "tabs", "duplicate", "directory",
                 "empty", "random-bytes", "pickle", "python-object", "top-level", "truncated", "onnx", "zip", "png",
                 "wrong-schema", "latency-nan", "latency-inf", "latency-negative", "list-over"):
        assert word in names, word
    assert sum(c.expect != ANY for c in HOSTILE) >= 50  # most cases name the reason they must give
    assert len(HOSTILE) >= 80 and len(VALID) >= 15


# --- property-based: mutated shipped targets ---------------------------------------------------------------
SEEDS = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in SHIPPED}
_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**130), max_value=10**130),
    st.floats(), st.text(max_size=30), st.sampled_from(["int8", "fp16", "sram", "npu", "99", "1e9", ".inf"]),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.text(max_size=8), st.one_of(st.floats(), st.text(max_size=5)), max_size=3),
    st.fixed_dictionaries({"value": st.floats(), "estimated": st.just(True), "reason": st.just("fuzz")}),
)


_TOKENS = st.sampled_from([b":", b": ", b"- ", b"[", b"]", b"{", b"}", b",", b"&a ", b"*a", b"!!str ", b"!x ", b"\t",
                           b"\n", b"\r", b"'", b'"', b"#", b"? ", b"<<: *a", b"---\n", b"...\n", b"%YAML 1.1\n",
                           b"|", b">", b"~", b".nan", b"-.inf", b"0x", b"1e999", b"9" * 120, b"\xef\xbb\xbf"])


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, prefix + (i,))
    return out


def _get(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def mutated_targets(draw) -> dict:
    """A shipped target with one to four edits: most break it, scaled numbers mostly keep it valid."""
    doc = copy.deepcopy(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    rnd = draw(st.randoms(use_true_random=False))  # uniform over the document, not biased to its first key
    for _ in range(draw(st.integers(1, 4))):
        path = rnd.choice(_paths(doc)[1:])
        parent, key = _get(doc, path[:-1]), path[-1]
        op = draw(st.sampled_from(["scale", "replace", "replace", "delete", "rename", "add"]))
        if op == "scale" and isinstance(parent[key], float | int) and not isinstance(parent[key], bool):
            parent[key] = parent[key] * draw(st.floats(0.5, 2.0))
        elif op in ("scale", "replace"):
            parent[key] = draw(_VALUES)
        elif op == "delete":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = parent.pop(key)
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(_VALUES)
        else:
            parent.append(draw(_VALUES))
    return doc


def _load_or_refuse(path: Path) -> Target | EdgefitError:
    with time_limit(path.name):
        try:
            return load_target_file(path)
        except EdgefitError as exc:
            assert "\n" not in exc.line() and str(path) in exc.line(), exc.line()
            return exc


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("yaml-fuzz")


@pytest.mark.slow
@FUZZ
@given(doc=mutated_targets())
def test_mutated_target_loads_or_is_refused_in_one_line(doc: dict, fuzz_dir: Path):
    path = fuzz_dir / "mutated.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    result = _load_or_refuse(path)
    assert isinstance(result, Target | EdgefitError)


@FUZZ
@given(seed=st.sampled_from(sorted(SEEDS)),
       edits=st.lists(st.tuples(st.floats(0, 1), st.sampled_from(["insert", "delete", "replace"]),
                                st.one_of(st.binary(min_size=1, max_size=4), _TOKENS)), min_size=1, max_size=6))
def test_byte_edited_target_loads_or_is_refused_in_one_line(seed: str, edits: list, fuzz_dir: Path):
    raw = bytearray(next(p for p in SHIPPED if p.stem == seed).read_bytes())
    for where, op, data in edits:
        i = int(where * len(raw))
        if op == "insert":
            raw[i:i] = data
        elif op == "delete":
            del raw[i:i + len(data)]
        else:
            raw[i:i + len(data)] = data
    path = fuzz_dir / "edited.yaml"
    path.write_bytes(bytes(raw))
    result = _load_or_refuse(path)
    assert isinstance(result, Target | EdgefitError)
