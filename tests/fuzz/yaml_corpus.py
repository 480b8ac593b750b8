"""Hostile, broken and odd-but-valid target YAML files, written into a folder at test time.

Each :class:`Case` names one class of input, writes its file (or folder, or link) under a folder it is
given, and says what edgefit must answer: ``VALID`` (exit 0) or words the one error line must contain
(lower case; ``ANY`` when several reasons are right, e.g. for random bytes). Nothing here is
downloaded; the shipped targets are the seeds for truncation and mutation.
"""

from __future__ import annotations

import codecs
import gzip
import io
import math
import os
import pickle
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from edgefit._resources import data_dir
from edgefit._yaml import MAX_ALIASES, MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from edgefit.targets import targets_dir

VALID = "<valid>"
ANY = ""  # any one-line error is right
SHIPPED = sorted(targets_dir().glob("*.yaml"))
BASE = targets_dir() / "gap9.yaml"  # power modes, envelope with memory budgets, no host probe
MARKER = "PWNED"  # a payload that ran would create a file of this name next to the input


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]
    expect: str
    slow: bool = False  # about a second per command: 100,000 values to compose

    @property
    def valid(self) -> bool:
        return self.expect == VALID


def base_text() -> str:
    return BASE.read_text(encoding="utf-8")


def base_data() -> dict[str, Any]:
    return yaml.safe_load(base_text())  # a shipped file: trusted, loaded with PyYAML directly


def _write(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        if isinstance(content, str):
            path.write_bytes(content.encode("utf-8"))
        else:
            path.write_bytes(content)
        return path

    return build


def _lazy(name: str, make: Callable[[], str | bytes]) -> Callable[[Path], Path]:
    """Like :func:`_write` but the content is made only when the case runs (some are megabytes)."""
    return lambda folder: _write(name, make())(folder)


def _dump(data: Any, **kw: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=120, **kw)


def _with(path: tuple, value: Any) -> str:
    """The base target with the value at ``path`` (keys and indices) replaced, as YAML text."""
    data = base_data()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return _dump(data)


def _latency(value: Any) -> str:
    return _with(("envelope", "latency_budget_s"), {"value": value, "estimated": True, "reason": "fuzz"})


def _latency_literal(literal: str) -> str:
    """The base target with the latency budget's value written as ``literal``, verbatim."""
    text = _latency(123456789)
    assert text.count("value: 123456789\n") == 1
    return text.replace("value: 123456789\n", f"value: {literal}\n")


# --- size, expansion, depth, numbers -------------------------------------------------------------------
def _sparse_50mb(folder: Path) -> Path:
    path = folder / "huge.yaml"
    with path.open("wb") as f:  # a 50 MB file without writing 50 MB: a hole the loader must never read
        f.write(b"id: huge\n")
        f.truncate(50 * 10**6)
    return path


def _laughs() -> str:
    lines = ['lol0: &lol0 "lol"']
    for i in range(1, 10):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _quadratic() -> str:  # one wide anchor referenced many times: few aliases, huge expansion
    return "a: &a [" + ", ".join(["x"] * 2000) + "]\nb: [" + ", ".join(["*a"] * 60) + "]\n"


def _notes_tail(items: str) -> str:
    """The base target with ``items`` (YAML list lines) appended to its last key, ``notes``."""
    text = base_text()
    tail = text.rsplit("\nnotes:\n", 1)[-1]
    assert all(line.startswith("  - ") for line in tail.splitlines()), "notes is no longer gap9's last key"
    return text + items


def _many_aliases(count: int) -> str:
    return _notes_tail("  - &one n\n" + "  - *one\n" * count)


def _shared_lifecycle() -> str:
    """Anchors, aliases and a merge key used as people use them: one shared provenance."""
    text = base_text()
    start, end = text.index("\nlifecycle_days:\n"), text.index("\nnotes:\n")
    block = """
lifecycle_days:
  data_prep: &day {value: 1, estimated: true, reason: "fuzz: one day per stage"}
  labeling: {<<: *day, value: 2}
  training: *day
  eval: *day
  deploy: {<<: *day}
  monitoring: *day
"""
    return text[:start] + block + text[end:]


def _deep_block(levels: int) -> str:
    return "".join(" " * i + "k:\n" for i in range(levels)) + " " * levels + "v\n"


def _huge_notes(count: int) -> str:
    return _notes_tail("  - n\n" * count)


def _padded_to_limit() -> str:
    text = base_text()
    line = "# " + "p" * 1021 + "\n"  # 1 KiB comment lines
    return text + line * ((MAX_FILE_BYTES - len(text.encode())) // len(line))


def _over_limit() -> str:
    return "# " + "p" * (MAX_FILE_BYTES + 10) + "\nid: x\n"


# --- encodings, binary, wrong formats -------------------------------------------------------------------
def _encoded(encoding: str, bom: bytes = b"") -> bytes:
    return bom + base_text().encode(encoding)


def _random_bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _onnx_bytes() -> bytes:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    return onnx.helper.make_model(graph).SerializeToString()


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("target.yaml", base_text())
    return buf.getvalue()


class _Payload:
    """Would create the marker file when unpickled: proof that the loader never unpickles."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def _pickle(protocol: int) -> bytes:
    return pickle.dumps(_Payload(), protocol=protocol)


def _python_tag(tag: str) -> str:
    return base_text() + f"x-payload: {tag} [\"touch {MARKER}\"]\n"


def _directory(folder: Path) -> Path:
    path = folder / "target.yaml"
    path.mkdir()
    (path / "gap9.yaml").write_text(base_text())
    return path


def _symlink_loop(folder: Path) -> Path:
    path = folder / "loop.yaml"
    path.symlink_to(path)
    return path


def _truncated(path: Path, fraction: float) -> Callable[[Path], Path]:
    raw = path.read_bytes()
    return _write(f"{path.stem}-cut{int(fraction * 100)}.yaml", raw[: int(len(raw) * fraction)])


def _probe_broken() -> str:
    text = (targets_dir() / "host-cpu.yaml").read_text(encoding="utf-8")
    assert "\nprobe: true\n" in text
    data = yaml.safe_load(text)
    data["compute_units"] = "cpu"  # the probe would iterate this string's characters
    data["description"] = 7
    return _dump(data)


def _text_case(name: str, expect: str, make: Callable[[], str | bytes], *, slow: bool = False) -> Case:
    return Case(name, _lazy(f"{name}.yaml", make), expect, slow)


def hostile_cases() -> list[Case]:
    """Broken or hostile inputs: each must end in exit 2 and one line containing ``expect``."""
    nan, inf = math.nan, math.inf
    cases = [
        Case("size-50mb-sparse", _sparse_50mb, "mib limit"),
        _text_case("size-over-limit", "mib limit", _over_limit),
        _text_case("billion-laughs", "expands to more than", _laughs),
        _text_case("alias-quadratic", "expands to more than", _quadratic),
        _text_case("alias-too-many", "aliases", lambda: _many_aliases(MAX_ALIASES + 1)),
        _text_case("alias-recursive", "contains it", lambda: "a: &a [1, *a]\n"),
        _text_case("alias-undefined", "undefined alias", lambda: _notes_tail("  - *nothing\n")),
        _text_case("list-over-node-limit", "holds more than", lambda: _huge_notes(MAX_NODES + 10), slow=True),
        _text_case("int-5001-digits", "too large", lambda: _latency_literal("9" * 5001)),
        _text_case("int-100-digits", "unit", lambda: _latency_literal("9" * 100)),
        _text_case("int-101-digits", "too large", lambda: _latency_literal("1" * 101)),
        _text_case("int-hex-huge", "too large", lambda: _latency_literal("0x" + "f" * 99)),
        _text_case("int-sexagesimal-huge", "too large", lambda: _latency_literal(":".join(["59"] * 80))),
        _text_case("float-overflow", "out of range", lambda: _latency_literal("1.0e+999")),
        _text_case("deep-flow-seq-20000", "nested deeper", lambda: "a: " + "[" * 20000 + "]" * 20000 + "\n"),
        _text_case("deep-flow-map-20000", "nested deeper", lambda: "a: " + "{a: " * 20000 + "1" + "}" * 20000 + "\n"),
        _text_case("deep-unclosed-20000", ANY, lambda: "a: " + "[" * 20000 + "\n"),
        _text_case("deep-block", "nested deeper", lambda: _deep_block(MAX_DEPTH + 5)),
        _text_case("utf16-no-bom", "byte-order mark", lambda: _encoded("utf-16-le")),
        _text_case("latin1", "not utf-8",
                   lambda: base_text().replace("GreenWaves", "Gr\u00e9enWaves").encode("latin-1", "replace")),
        _text_case("utf8-lone-surrogate", "not utf-8", lambda: b"id: \xed\xa0\x80\n"),
        _text_case("tabs", "tabs", lambda: base_text().replace("\n  - name: ne16\n", "\n\t- name: ne16\n", 1)),
        _text_case("tab-indented-mapping", "tabs", lambda: "envelope:\n\tlatency_budget_s: 1\n"),
        _text_case("duplicate-top-key", "duplicate key 'id'", lambda: base_text() + "id: gap9-again\n"),
        _text_case("duplicate-nested-key", "duplicate key 'value'",
                   lambda: base_text().replace("{value: 0.1, estimated", "{value: 0.1, value: 0.2, estimated", 1)),
        Case("directory", _directory, "directory"),
        Case("symlink-loop", _symlink_loop, ANY),
        _text_case("empty", "empty", lambda: b""),
        _text_case("whitespace-only", "empty", lambda: "\n  \n\n"),
        _text_case("comments-only", "empty", lambda: "# a target\n# nothing else\n"),
        _text_case("document-marker-only", "empty", lambda: "---\n...\n"),
        _text_case("null-document", "empty", lambda: "~\n"),
        _text_case("top-level-list", "mapping", lambda: "- id: gap9\n- id: h100\n"),
        _text_case("top-level-string", "mapping", lambda: "just a sentence\n"),
        _text_case("top-level-number", "mapping", lambda: "42\n"),
        _text_case("pickle-protocol-0", "mapping", lambda: _pickle(0)),
        _text_case("pickle-protocol-2", "pickle", lambda: _pickle(2)),
        _text_case("pickle-protocol-5", "pickle", lambda: _pickle(5)),
        _text_case("python-object-apply", "not allowed", lambda: _python_tag("!!python/object/apply:os.system")),
        _text_case("python-object-new", "not allowed", lambda: _python_tag("!!python/object/new:subprocess.Popen")),
        _text_case("python-name", "not allowed", lambda: base_text() + "x-payload: !!python/name:os.system ''\n"),
        _text_case("local-tag", "not allowed", lambda: base_text() + "x-payload: !secret value\n"),
        _text_case("onnx-model", "onnx", _onnx_bytes),
        _text_case("zip-archive", "zip", _zip_bytes),
        _text_case("png-image", "png", lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)),
        _text_case("elf-binary", "executable", lambda: b"\x7fELF\x02\x01\x01" + bytes(64)),
        _text_case("gzip-target", "gzip", lambda: gzip.compress(base_text().encode())),
        _text_case("control-characters", "control character",
                   lambda: base_text().replace("name: GreenWaves", "name: Green\x07Waves")),
        _text_case("nul-byte", "nul", lambda: _notes_tail("  - a\x00b\n")),
        _text_case("multi-document", "single document", lambda: base_text() + "---\n" + base_text()),
        _text_case("bad-timestamp", "cannot read the value", lambda: base_text() + "x-date: 2026-13-45\n"),
        _text_case("unclosed-flow", "malformed yaml",
                   lambda: base_text().replace("aliases: [hearable, greenwaves-gap9]", "aliases: [hearable, gap", 1)),
        _text_case("unhashable-key", "unhashable", lambda: base_text() + "? [a, b]\n: c\n"),
        _text_case("wrong-schema-mapping", "field", lambda: "hello: world\n"),
        _text_case("wrong-schema-types", "field", lambda: _with(("compute_units",), "cpu")),
        _text_case("wrong-schema-key-types", ANY, lambda: _dump({1: 2, None: 3, True: [4]})),
        _text_case("huge-unknown-key", "unknown field", lambda: base_text() + "? " + "k" * 100_000 + "\n: 1\n"),
        _text_case("probe-on-broken-document", "field", _probe_broken),
        _text_case("latency-negative", "> 0", lambda: _latency(-1.0)),
        _text_case("latency-zero", "> 0", lambda: _latency(0)),
        _text_case("latency-nan", "finite", lambda: _latency(nan)),
        _text_case("latency-inf", "finite", lambda: _latency(inf)),
        _text_case("latency-minus-inf", "finite", lambda: _latency(-inf)),
        _text_case("latency-string-nan", "finite", lambda: _latency("nan")),
        _text_case("latency-1e308", "unit", lambda: _latency(1e308)),
        _text_case("percentile-nan", "latency_percentile", lambda: _with(("envelope", "latency_percentile"), nan)),
        _text_case("percentile-over-100", "latency_percentile", lambda: _with(("envelope", "latency_percentile"), 101)),
        _text_case("memory-budget-negative", "memory_bytes", lambda: _with(
            ("envelope", "memory_bytes", "l2"), {"value": -1.0, "estimated": True, "reason": "fuzz"})),
        _text_case("power-inf", "finite", lambda: _with(
            ("envelope", "average_power_w"), {"value": inf, "estimated": True, "reason": "fuzz"})),
        _text_case("energy-negative", "energy_per_inference_j", lambda: _with(
            ("envelope", "energy_per_inference_j"), {"value": -1e-5, "estimated": True, "reason": "fuzz"})),
    ]
    cases += [Case(f"random-bytes-{seed}", _lazy(f"random-{seed}.yaml", lambda s=seed: _random_bytes(s, 4096)), ANY)
              for seed in range(6)]
    cases += [Case(f"truncated-{p.stem}-{int(f * 100)}", _truncated(p, f), ANY)
              for p in SHIPPED for f in (0.3, 0.6, 0.9)]
    cases += [Case(f"wrong-schema-{p.parent.name}-{p.stem}", _lazy(f"{p.stem}.yaml", p.read_bytes), "field")
              for p in (data_dir("kernels") / "catalog.yaml", *sorted(data_dir("profiles").glob("*/*.yaml")))]
    return cases


def valid_cases() -> list[Case]:
    """Inputs that must validate (exit 0): every shipped target and odd-but-valid variants of one."""
    text = base_text()
    cases = [Case(f"shipped-{p.stem}", _lazy(p.name, p.read_bytes), VALID) for p in SHIPPED]
    cases += [
        _text_case("utf8-bom", VALID, lambda: codecs.BOM_UTF8 + text.encode()),
        _text_case("utf16-le-bom", VALID, lambda: _encoded("utf-16-le", codecs.BOM_UTF16_LE)),
        _text_case("utf16-be-bom", VALID, lambda: _encoded("utf-16-be", codecs.BOM_UTF16_BE)),
        _text_case("utf32-le-bom", VALID, lambda: _encoded("utf-32-le", codecs.BOM_UTF32_LE)),
        _text_case("crlf", VALID, lambda: text.replace("\n", "\r\n")),
        _text_case("flow-style", VALID, lambda: _dump(base_data(), default_flow_style=True)),
        _text_case("json", VALID, lambda: __import__("json").dumps(base_data())),
        _text_case("anchors-aliases-merge", VALID, _shared_lifecycle),
        _text_case("aliases-at-limit", VALID, lambda: _many_aliases(MAX_ALIASES)),
        _text_case("keys-reordered", VALID, lambda: _dump(dict(reversed(list(base_data().items()))))),
        _text_case("huge-list-under-limit", VALID, lambda: _huge_notes(MAX_NODES // 2), slow=True),
        _text_case("padded-to-size-limit", VALID, _padded_to_limit),
        _text_case("long-name", VALID, lambda: _with(("name",), "G" * 500_000)),
        _text_case("latency-tiny", VALID, lambda: _latency(1e-300)),
    ]
    return cases
