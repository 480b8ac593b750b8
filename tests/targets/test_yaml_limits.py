"""The bounded YAML loader: every limit refuses in one line with the line number, on both scanners.

The limits are lowered with monkeypatch where a boundary is tested, so the boundary cases stay small;
the real limits are exercised end to end by tests/fuzz/test_fuzz_yaml.py.
"""

from __future__ import annotations

import codecs
import math
from pathlib import Path

import pytest
import yaml

from edgefit import _yaml
from edgefit._yaml import MAX_ALIASES, MAX_FILE_BYTES, MAX_INT_DIGITS, load_yaml, parse_yaml
from edgefit.errors import EdgefitError
from edgefit.targets import load_target, target_from_dict, targets_dir


@pytest.fixture(params=[cls.__name__ for cls in _yaml._LOADERS])
def loader(request, monkeypatch) -> str:
    """Run the test with libyaml scanning and again with pure-Python scanning (the fallback)."""
    cls = next(c for c in _yaml._LOADERS if c.__name__ == request.param)
    monkeypatch.setattr(_yaml, "_LOADERS", [cls])
    return request.param


def _refusal(text: str, name: str = "t.yaml") -> str:
    with pytest.raises(EdgefitError) as info:
        parse_yaml(text, name=name)
    line = info.value.line()
    assert "\n" not in line and info.value.fix, line
    return line


# --- expansion, aliases, depth ------------------------------------------------------------------------------
def test_billion_laughs_is_refused_while_composing(loader):
    lines = ['a0: &a0 "lol"'] + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    line = _refusal("\n".join(lines) + "\n")
    assert "expands to more than" in line and line.startswith("t.yaml:")


def test_expansion_limit_counts_aliases_as_what_they_expand_to(loader, monkeypatch):
    monkeypatch.setattr(_yaml, "MAX_NODES", 100)
    wide = "a: &a [" + ", ".join(["x"] * 20) + "]\n"  # map + key + list + 20 items = 23 values
    assert parse_yaml(wide + "b: [*a, *a]\n")[0]["b"][1] == ["x"] * 20  # 23 + key + list + 2 × 21 = 67
    line = _refusal(wide + "b: [*a, *a, *a, *a]\n")  # 23 + 2 + 4 × 21 = 109
    assert "t.yaml:2:" in line and "expands to more than 100 values" in line


def test_values_over_the_limit_are_refused_without_aliases(loader, monkeypatch):
    monkeypatch.setattr(_yaml, "MAX_NODES", 50)
    assert len(parse_yaml("[" + "1," * 48 + "1]")[0]) == 49  # the list and 49 items
    assert "holds more than 50 values" in _refusal("[" + "1," * 49 + "1]")


def test_alias_count_limit(loader):
    doc = "a: &x 1\nb: [" + ", ".join(["*x"] * MAX_ALIASES) + "]\n"
    assert len(parse_yaml(doc)[0]["b"]) == MAX_ALIASES
    line = _refusal(doc.replace("]\n", ", *x]\n"))
    assert f"more than {MAX_ALIASES} YAML aliases" in line and "t.yaml:2:" in line


def test_recursive_alias_is_refused(loader):
    assert "refers to a node that contains it" in _refusal("a: &a [1, *a]\n")
    assert "refers to a node that contains it" in _refusal("a: &a {b: *a}\n")


@pytest.mark.parametrize("text", [
    "a: " + "[" * 20_000 + "]" * 20_000,
    "a: " + "{a: " * 20_000 + "1" + "}" * 20_000,
    "a: " + "[" * 20_000,  # never closed: refused at the limit, not after scanning to the end
    "".join(" " * i + "k:\n" for i in range(200)) + " " * 200 + "v\n",
], ids=["flow-list", "flow-map", "unclosed", "block"])
def test_deep_nesting_is_refused_not_a_recursion_error(loader, text):
    assert f"nested deeper than {_yaml.MAX_DEPTH} levels" in _refusal(text)


def test_depth_at_the_limit_loads(loader):
    depth = _yaml.MAX_DEPTH
    data, _ = parse_yaml("[" * depth + "]" * depth)
    for _ in range(depth - 1):
        data = data[0]
    assert data == []


# --- numbers ------------------------------------------------------------------------------------------------
def test_integer_digit_limit(loader):
    assert parse_yaml("a: " + "9" * MAX_INT_DIGITS)[0]["a"] == 10**MAX_INT_DIGITS - 1
    assert "too large" in _refusal("a: " + "1" * (MAX_INT_DIGITS + 1))
    line = _refusal("x: 1\na: " + "9" * 5001)  # Python itself would refuse to convert it, with a traceback
    assert "t.yaml:2:" in line and "too large" in line


@pytest.mark.parametrize("literal", ["0x" + "f" * 99, "0b" + "1" * 400, ":".join(["59"] * 80), "-" + "9" * 101])
def test_large_integers_in_any_notation_are_refused(loader, literal):
    assert "too large" in _refusal(f"a: {literal}\n")


def test_overflowing_float_is_refused_but_explicit_infinity_and_nan_load(loader):
    assert "out of range" in _refusal("a: 1.0e+999\n")
    assert "out of range" in _refusal("a: -1e400\n")
    data, _ = parse_yaml("a: .inf\nb: -.Inf\nc: .nan\nd: 1.7e+308\ne: 4.0e12\n")
    assert data["a"] == math.inf and data["b"] == -math.inf and math.isnan(data["c"])
    assert data["d"] == 1.7e308 and data["e"] == 4.0e12  # YAML 1.2 floats still resolve


def test_impossible_timestamp_is_refused_with_the_line(loader):
    line = _refusal("a: 1\nb: 2026-13-45\n")
    assert "t.yaml:2:" in line and "2026-13-45" in line


# --- keys and tags ------------------------------------------------------------------------------------------
def test_duplicate_keys_name_both_lines(loader):
    line = _refusal("id: a\nname: x\nid: b\n")
    assert "t.yaml:3:" in line and "duplicate key 'id' (first at line 1)" in line
    assert "duplicate key 'value'" in _refusal("e: {value: 1, value: 2}\n")


def test_merge_keys_may_be_overridden(loader):
    data, _ = parse_yaml("base: &b {value: 1, reason: r}\nd: {<<: *b, value: 2}\n")
    assert data["d"] == {"value": 2, "reason": "r"}


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system", "!!python/object/new:os.system",
                                 "!!python/name:os.system", "!local"])
def test_object_tags_are_refused_in_one_line(loader, tag):
    line = _refusal(f"a: 1\nb: {tag} ['echo hi']\n")
    assert "t.yaml:2:" in line and f"tag '{tag}' is not allowed" in line


def test_tabs_get_a_tab_hint(loader):
    line = _refusal("a:\n\tb: 1\n")
    assert "t.yaml:2:" in line and "tabs" in line


# --- files: size, encodings, binary, folders ----------------------------------------------------------------
def _file(tmp_path: Path, raw: bytes) -> Path:
    path = tmp_path / "t.yaml"
    path.write_bytes(raw)
    return path


def _file_refusal(path: Path) -> str:
    with pytest.raises(EdgefitError) as info:
        load_yaml(path)
    assert "\n" not in info.value.line() and str(path) in info.value.line()
    return info.value.line()


def test_oversized_file_is_refused_from_its_size(tmp_path):
    path = tmp_path / "big.yaml"
    with path.open("wb") as f:
        f.truncate(50 * 2**20)  # a sparse 50 MiB file: refused from stat, never read
    assert "50.0 MiB, over the 4 MiB limit" in _file_refusal(path)
    assert load_yaml(_file(tmp_path, b"a: 1\n" + b"#" * (MAX_FILE_BYTES - 6) + b"\n"))[0] == {"a": 1}


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs an endless device file")
def test_endless_device_is_read_only_up_to_the_limit():
    assert "over the 4 MiB limit" in _file_refusal(Path("/dev/zero"))


@pytest.mark.parametrize(("bom", "encoding"), [
    (b"", "utf-8"), (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"), (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
])
def test_unicode_with_a_byte_order_mark_loads(tmp_path, bom, encoding):
    data, lines = load_yaml(_file(tmp_path, bom + "name: Gr\u00fc\u00dfe\nn: 2\n".encode(encoding)))
    assert data == {"name": "Gr\u00fc\u00dfe", "n": 2} and lines[("n",)] == 2


@pytest.mark.parametrize(("raw", "words"), [
    ("a: 1\nb: 2\n".encode("utf-16-le"), "byte-order mark"),
    ("a: 1\nname: caf\u00e9\n".encode("latin-1"), "t.yaml:2: not UTF-8 text: byte 0xe9"),
    (b"a: 1\nb: \x07\n", "t.yaml:2: not YAML text: control character U+0007"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG image"),
    (b"PK\x03\x04\x14\x00", "ZIP archive"),
    (b"\x08\x07\x12\x07pytorch", "ONNX model"),
    (b"\x80\x04\x95\x10\x00\x00\x00.", "Python pickle"),
], ids=["utf16-no-bom", "latin1", "bell", "png", "zip", "onnx", "pickle"])
def test_binary_and_foreign_text_are_named(tmp_path, raw, words):
    assert words in _file_refusal(_file(tmp_path, raw))


def test_directory_and_missing_file(tmp_path):
    assert "is a directory" in _file_refusal(tmp_path)
    assert "file not found" in _file_refusal(tmp_path / "nope.yaml")
    folder = tmp_path / "target.yaml"
    folder.mkdir()
    with pytest.raises(EdgefitError, match="is a directory, not a target file"):
        load_target(str(folder))


# --- the target loader on top ---------------------------------------------------------------------------
def test_non_mapping_top_level_says_what_it_got():
    with pytest.raises(EdgefitError, match="must be a YAML mapping, not a list"):
        target_from_dict([1, 2], source="t.yaml")


def test_host_probe_runs_only_on_a_valid_document():
    data = yaml.safe_load((targets_dir() / "host-cpu.yaml").read_text(encoding="utf-8"))
    assert data["probe"] is True
    data["compute_units"] = "cpu"  # the probe would iterate this string and fail with AttributeError
    with pytest.raises(EdgefitError, match="field 'compute_units'"):
        target_from_dict(data, source="t.yaml")


def test_validation_message_of_a_huge_key_stays_short(tmp_path):
    text = (targets_dir() / "gap9.yaml").read_text(encoding="utf-8")
    path = _file(tmp_path, (text + "? " + "k" * 100_000 + "\n: 1\n").encode())
    with pytest.raises(EdgefitError) as info:
        load_target(str(path))
    assert "unknown field" in info.value.line() and len(info.value.line()) < 600
