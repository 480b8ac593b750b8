"""edgefit._lazy.lazy_import: the one way heavy modules are imported at the top of a file."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from edgefit._lazy import LazyModule, is_loaded, lazy_import


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_the_module_loads_on_first_attribute_read_not_before():
    code = (
        "import sys; from edgefit._lazy import lazy_import\n"
        "q = lazy_import('json.decoder')\n"  # any module this interpreter has not imported yet
        "before = 'json.decoder' in sys.modules\n"
        "err = q.JSONDecodeError\n"
        "print(before, 'json.decoder' in sys.modules, err is sys.modules['json.decoder'].JSONDecodeError)"
    )
    assert _run(code) == "False True True"


def test_an_imported_module_is_returned_as_itself_and_several_names_give_a_tuple():
    assert lazy_import("sys") is sys
    os_, json_ = lazy_import("os", "json")
    assert os_ is sys.modules["os"] and json_ is sys.modules["json"]


def test_reads_and_patches_go_to_the_real_module(monkeypatch):
    name = "edgefit_lazy_probe"
    real = types.ModuleType(name)
    real.value = 1
    proxy = LazyModule(name)
    monkeypatch.setitem(sys.modules, name, real)
    assert proxy.value == 1
    monkeypatch.setattr(real, "value", 2)  # a test patching the real module is seen through the proxy
    assert proxy.value == 2
    proxy.other = 3  # and writes through the proxy land on the real module
    assert real.other == 3
    assert "value" in dir(proxy) and "loaded" in repr(proxy)


def test_a_missing_module_raises_at_first_use_not_at_import():
    proxy = lazy_import("edgefit_no_such_module_anywhere")
    assert isinstance(proxy, LazyModule) and not is_loaded("edgefit_no_such_module_anywhere")
    assert "not loaded yet" in repr(proxy)
    with pytest.raises(ModuleNotFoundError, match="edgefit_no_such_module_anywhere"):
        proxy.anything


def test_tools_that_walk_a_modules_globals_do_not_import_what_it_names():
    """inspect.unwrap (doctest's finder calls it on every global) probes ``__wrapped__``: the
    proxy answers without importing, so collecting doctests of a module that names a missing
    optional package (tensorrt) does not fail."""
    import inspect

    proxy = lazy_import("edgefit_no_such_module_anywhere")
    assert inspect.unwrap(proxy) is proxy and not inspect.isroutine(proxy)
    assert not is_loaded("edgefit_no_such_module_anywhere")
