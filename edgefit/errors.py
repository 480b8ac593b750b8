"""Errors a user can act on.

Every error edgefit raises for bad input is an :class:`EdgefitError`: it names *what* is wrong,
*where* (file, line, field, option) and *how to fix it*. The CLI prints it as one line and exits
with its ``exit_code`` (2 for usage errors), never with a traceback.
"""

from __future__ import annotations

import importlib


class EdgefitError(Exception):
    """A problem with the user's input or environment that they can fix.

    >>> str(EdgefitError("unknown target 'orn'", where="--target",
    ...                  fix="run `edgefit targets list`"))
    "--target: unknown target 'orn' (fix: run `edgefit targets list`)"
    """

    exit_code = 2

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text} (fix: {self.fix})" if self.fix else text


class MissingDependencyError(EdgefitError):
    """An optional dependency is not installed; ``fix`` is the pip line that installs it."""

    def __init__(self, module: str, *, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{module}', which is not installed",
            fix=f'pip install "edgefit[{extra}]" -c constraints.txt',
        )
        self.module = module
        self.extra = extra


def require(module: str, *, extra: str, purpose: str):
    """Import ``module`` or raise :class:`MissingDependencyError` with the install line.

    >>> np = require("numpy", extra="dev", purpose="the estimator")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # ImportError covers broken installs too (missing .so)
        if isinstance(exc, ModuleNotFoundError) and exc.name and not module.startswith(exc.name):
            raise  # a dependency *of* the module is missing: a real bug, show it
        raise MissingDependencyError(module, extra=extra, purpose=purpose) from exc
