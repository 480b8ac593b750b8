"""Safe, bounded YAML loading that remembers where every value came from.

Every target, profile and catalog file goes through here, and those files come from other people
and other pipelines, so the loader is built to fail with one line (what, where, how to fix) instead
of a hang, a traceback or an exhausted machine:

* the file's size is checked before it is read (:data:`MAX_FILE_BYTES`), and only that much is
  read;
* nesting depth, the number of aliases and the number of values *after alias expansion* are counted
  while the document is composed, so a "billion laughs" document is refused before any data is
  built;
* integers longer than :data:`MAX_INT_DIGITS` digits and numbers that overflow to infinity are
  refused (Python refuses to convert very long integers, with a traceback);
* duplicate mapping keys, non-data tags (``!!python/object``…), binary files and encodings other
  than UTF-8/16/32 are refused with the line.

PyYAML implements YAML 1.1, where ``4.0e12`` (no sign after the ``e``) is a *string*; hardware
numbers are written that way all the time, so this loader also resolves YAML 1.2 floats. It
constructs with ``yaml.SafeConstructor`` only: no Python objects are ever built from user files.
libyaml does the scanning when it is installed (it is about ten times faster than pure-Python
scanning); composition, where the limits are counted, is always PyYAML's Python composer.

:func:`load_yaml` returns the data and a map from each value's path (a tuple of keys and list
indices) to its 1-based line, so validation errors can say ``targets/orin.yaml:42``.
"""

from __future__ import annotations

import codecs
import math
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, Event
from yaml.resolver import Resolver

from edgefit.errors import EdgefitError

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Largest YAML file read; shipped targets are about 10 kB."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists; shipped targets nest five levels."""
MAX_NODES = 100_000
"""Most values (scalars, lists, mappings) in a document, an alias counted as its expansion."""
MAX_ALIASES = 256
"""Most aliases (``*name``) in one document."""
MAX_INT_DIGITS = 100
"""Longest integer accepted; larger numbers are written as floats (``1.0e+120``) in a profile."""

_INT_LIMIT = 10**MAX_INT_DIGITS
_MERGE_TAG = "tag:yaml.org,2002:merge"
_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)

Path_ = tuple[str | int, ...]

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_INT_DIGITS",
    "MAX_NODES",
    "line_of",
    "load_yaml",
    "parse_yaml",
]


def _short(text: object, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters, for quoting user input in a message."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- bytes to text -------------------------------------------------------------------------------
_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_MAGIC = (  # what a file really is when it is not text: the message names it
    (b"\x89PNG", "a PNG image"),
    (b"PK\x03\x04", "a ZIP archive (.zip, .pt, .npz, .docx …)"),
    (b"\x7fELF", "an executable"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"\x93NUMPY", "a NumPy array"),
    (b"\x80\x02", "a Python pickle"),
    (b"\x80\x03", "a Python pickle"),
    (b"\x80\x04", "a Python pickle"),
    (b"\x80\x05", "a Python pickle"),
)
# YAML's printable set (the same as PyYAML's reader checks, found here so the message can say
# where)
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_TEXT_FIX = "pass a YAML file saved as UTF-8 text"


def _what_binary(raw: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if raw.startswith(magic) and (
            kind != "a Python pickle" or raw.endswith(b".")
        ):  # STOP ends a pickle
            return kind
    if (
        raw[:1] == b"\x08"
    ):  # an ONNX ModelProto starts with field 1 (ir_version), a varint; no text does
        return "an ONNX model or another protobuf file"
    return None


def read_text(path: Path) -> str:
    """The text of ``path``, refusing what is not a small UTF-8/16/32 text file before reading it
    all."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise EdgefitError(f"file not found: {path}", fix="check the path") from None
    except OSError as exc:
        raise EdgefitError(
            f"cannot read {path}: {_short(exc.strerror or exc)}", fix="check the path"
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise EdgefitError(
            "is a directory, not a YAML file", where=str(path), fix="pass the YAML file itself"
        )
    if st.st_size > MAX_FILE_BYTES:
        raise _too_big(path, st.st_size)
    try:
        with path.open("rb") as f:  # bounded read: a pipe or device has no size to check first
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise EdgefitError(
            f"cannot read {path}: {_short(exc.strerror or exc)}",
            fix="check the file's permissions",
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise _too_big(path, None)
    kind = _what_binary(raw)
    if kind:
        raise EdgefitError(f"not a YAML file: this is {kind}", where=str(path), fix=_TEXT_FIX)
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), "utf-8")
    if encoding == "utf-8" and b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise EdgefitError(
            "not YAML text: it contains NUL bytes (binary data, or UTF-16 text without a "
            "byte-order mark)",
            where=f"{path}:{line}",
            fix=_TEXT_FIX,
        )
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        what = (
            f"not {encoding.removesuffix('-sig').upper()} text: byte 0x{raw[exc.start]:02x} "
            "cannot be decoded"
        )
        raise EdgefitError(
            f"{what} (binary data, or another encoding)", where=f"{path}:{line}", fix=_TEXT_FIX
        ) from None


def _too_big(path: Path, size: int | None) -> EdgefitError:
    mib = MAX_FILE_BYTES / 2**20
    what = f"file is {size / 2**20:.1f} MiB, over" if size is not None else "file is over"
    return EdgefitError(
        f"{what} the {mib:g} MiB limit for a YAML file",
        where=str(path),
        fix="check that this is the right file; edgefit's YAML files are a few kB",
    )


def check_text(text: str, name: str) -> None:
    """Refuse oversized text or characters YAML does not allow, naming the line."""
    if len(text) > MAX_FILE_BYTES:
        raise EdgefitError(
            f"YAML text is over the {MAX_FILE_BYTES / 2**20:g} MiB limit",
            where=name,
            fix="check that this is the right file; edgefit's YAML files are a few kB",
        )
    bad = _NON_PRINTABLE.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        hint = ", or UTF-16 text without a byte-order mark" if bad.group() == "\x00" else ""
        raise EdgefitError(
            f"not YAML text: control character U+{ord(bad.group()):04X} (binary data{hint})",
            where=f"{name}:{line}",
            fix=_TEXT_FIX,
        )


# --- parsing -------------------------------------------------------------------------------------
class _Resolver(Resolver):
    """YAML 1.1 resolution plus YAML 1.2 floats (``1e9``, ``4.0e12``)."""


_Resolver.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


class _Guard(Composer, SafeConstructor):
    """Composer and constructor hooks that enforce the limits while the document is read.

    Composition is where a hostile document costs nothing yet: an alias is just a pointer to a node
    composed earlier. Counting each alias as the number of values under its anchor keeps a running
    total of the *expanded* document, so expansion bombs are refused here, before construction,
    line-number walking or schema validation would each expand them.
    """

    name = "<string>"

    if TYPE_CHECKING:
        # provided by the parser each loader mixes in beside _Guard (PyYAML's or libyaml's)
        def peek_event(self) -> Event: ...

    def _init_guard(self, name: str) -> None:
        self.name = name
        self._depth = 0
        self._aliases = 0
        self._values = 0
        self._sizes: dict[yaml.Node, int] = {}

    def _refuse(self, what: str, mark: Any, fix: str) -> EdgefitError:
        where = f"{self.name}:{mark.line + 1}" if mark is not None else self.name
        return EdgefitError(what, where=where, fix=fix)

    def _count(self, n: int, mark: Any) -> None:
        self._values += n
        if self._values <= MAX_NODES:
            return
        if not self._aliases:
            raise self._refuse(
                f"YAML document holds more than {MAX_NODES:,} values",
                mark,
                "check that this is the right file; a target file holds a few hundred",
            )
        raise self._refuse(
            f"YAML document expands to more than {MAX_NODES:,} values (aliases counted as what "
            "they "
            "expand to; a 'billion laughs' document looks like this)",
            mark,
            "write the values out without nested aliases; a target file holds a few hundred",
        )

    # --- composition: depth, aliases, expanded size ----------------------------------------------
    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise self._refuse(
                    f"more than {MAX_ALIASES} YAML aliases (*name)",
                    event.start_mark,
                    "write the repeated values out instead of aliasing them",
                )
            node = self._compose(parent, index)
            size = self._sizes.get(node)
            if size is None:  # the anchor is still being composed: the alias is inside it
                raise self._refuse(
                    f"alias *{_short(event.anchor)} refers to a node that contains it",
                    event.start_mark,
                    "remove the self-reference; YAML input must be a tree",
                )
            self._count(size, event.start_mark)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._refuse(
                f"YAML nested deeper than {MAX_DEPTH} levels",
                event.start_mark,
                "flatten the document; target files nest only a few levels",
            )
        before = self._values
        self._count(1, event.start_mark)
        node = self._compose(parent, index)
        self._sizes[node] = self._values - before
        self._depth -= 1
        return node

    def _compose(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        # PyYAML's composer returns a node or raises; its stub's "| None" never happens
        return cast(yaml.Node, super().compose_node(parent, index))

    # --- construction: numbers, keys, tags -------------------------------------------------------
    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (
            ValueError,
            OverflowError,
        ) as exc:  # e.g. the timestamp 2001-13-45: datetime refuses it
            raise self._refuse(
                f"cannot read the value '{_short(node.value)}': {_short(exc)}",
                node.start_mark,
                "quote it to keep it as a string, or correct it",
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            self._refuse_duplicate_keys(node)
        return super().construct_mapping(node, deep)

    def _refuse_duplicate_keys(self, node: yaml.MappingNode) -> None:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                # merged keys (<<) may be overridden on purpose; non-scalar keys fail later
                continue
            key = self.construct_object(key_node)
            try:
                hash(key)
            except TypeError:
                continue
            line = key_node.start_mark.line + 1
            if key in first:
                raise self._refuse(
                    f"duplicate key '{_short(key)}' (first at line {first[key]})",
                    key_node.start_mark,
                    "keep only one of them",
                )
            first[key] = line

    def construct_bounded_int(self, node: yaml.ScalarNode) -> int:
        digits = len(node.value.lstrip("+-").replace("_", ""))
        value = (
            None if digits > MAX_INT_DIGITS + 2 else SafeConstructor.construct_yaml_int(self, node)
        )
        if value is None or abs(value) >= _INT_LIMIT:
            raise self._refuse(
                f"integer '{_short(node.value, 24)}' is too large (more than {MAX_INT_DIGITS} "
                "digits)",
                node.start_mark,
                "write it as a float such as 1.0e+12, or check for a typo",
            )
        return value

    def construct_finite_float(self, node: yaml.ScalarNode) -> float:
        value = SafeConstructor.construct_yaml_float(self, node)
        explicit = node.value.lstrip("+-").lower() in (".inf", ".nan")
        if not math.isfinite(value) and not explicit:
            raise self._refuse(
                f"number '{_short(node.value, 24)}' is out of range (it overflows to infinity)",
                node.start_mark,
                "check the exponent; the largest float is about 1.8e+308",
            )
        return value

    def construct_refused_tag(self, node: yaml.Node) -> Any:
        tag = _short(node.tag.replace("tag:yaml.org,2002:", "!!"))
        raise self._refuse(
            f"YAML tag '{tag}' is not allowed: edgefit reads only plain data (mappings, lists, "
            "strings, numbers, booleans)",
            node.start_mark,
            "remove the tag",
        )


class _PyLoader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _Guard, _Resolver):
    """Pure-Python scanning, for installs without libyaml."""

    def __init__(self, text: str, name: str) -> None:
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        _Resolver.__init__(self)
        self._init_guard(name)


class _Loading(Protocol):
    """What :func:`parse_yaml` uses of a loader (the pure-Python one or the libyaml one)."""

    def get_single_node(self) -> yaml.Node | None: ...
    def construct_document(self, node: yaml.Node) -> Any: ...
    def dispose(self) -> None: ...


def _register(cls: type[_Guard]) -> None:
    # types-PyYAML accepts constructors bound to PyYAML's own loader classes only; ours mix the
    # same bases (reader, scanner, parser, composer, constructor, resolver) in another order
    add = cast(Any, cls).add_constructor
    add("tag:yaml.org,2002:int", _Guard.construct_bounded_int)
    add("tag:yaml.org,2002:float", _Guard.construct_finite_float)
    add(None, _Guard.construct_refused_tag)


_register(_PyLoader)
_LOADERS: list[Callable[[str, str], _Loading]] = [_PyLoader]
if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser

    class _CLoader(
        _Guard, CParser, _Resolver
    ):  # _Guard (a Composer) first: composition stays in Python
        """libyaml scanning and parsing, Python composition with the limits."""

        def __init__(self, text: str, name: str) -> None:
            CParser.__init__(self, text)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            _Resolver.__init__(self)
            self._init_guard(name)

    _register(_CLoader)
    _LOADERS.insert(0, _CLoader)


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            _walk(value_node, path + (key,), lines)
            lines[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), lines)


def load_yaml(path: str | Path) -> tuple[Any, dict[Path_, int]]:
    """Load ``path`` safely; return ``(data, line_of_path)``.

    Raises :class:`EdgefitError` naming the file (and line, where there is one) for a missing,
    oversized, binary or malformed file, or one over the limits above.
    """
    path = Path(path)
    return parse_yaml(read_text(path), name=str(path))


def parse_yaml(text: str, *, name: str = "<string>") -> tuple[Any, dict[Path_, int]]:
    """Like :func:`load_yaml` but from a string; ``name`` is used in error messages.

    >>> parse_yaml("peak: 4.0e12")[0]
    {'peak': 4000000000000.0}
    """
    check_text(text, name)
    loader = _LOADERS[0](text, name)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise _malformed(exc, name, text) from None
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def _malformed(exc: yaml.YAMLError, name: str, text: str) -> EdgefitError:
    mark = getattr(exc, "problem_mark", None)
    where = f"{name}:{mark.line + 1}" if mark is not None else name
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    what = f"{context}, {problem}" if context else problem
    fix = "fix the YAML syntax"
    if mark is not None and "\t" in "".join(
        text.splitlines()[max(mark.line - 1, 0) : mark.line + 1]
    ):
        fix = "indent with spaces: YAML does not allow tabs for indentation"
    return EdgefitError(f"malformed YAML: {_short(what, 160)}", where=where, fix=fix)


def line_of(lines: dict[Path_, int], loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest known prefix of ``loc`` (pydantic error locations may go deeper)."""
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())
