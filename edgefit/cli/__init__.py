"""Command-line interface. ``main`` turns :class:`~edgefit.errors.EdgefitError` into one line +
exit code."""

from __future__ import annotations

import sys

from edgefit.cli._app import app
from edgefit.errors import EdgefitError


def main(argv: list[str] | None = None) -> int:
    try:
        app(args=argv, standalone_mode=True, prog_name="edgefit")
    except EdgefitError as exc:
        sys.stderr.write(f"edgefit: error: {exc.line()}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("edgefit: interrupted\n")
        sys.exit(130)
    return 0


__all__ = ["main"]
