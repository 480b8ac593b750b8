"""The examples in the serve package's docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["edgefit.serve", "edgefit.serve._arch", "edgefit.serve._dtypes", "edgefit.serve._hardware",
           "edgefit.serve._model", "edgefit.serve._plan", "edgefit.serve._request"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
