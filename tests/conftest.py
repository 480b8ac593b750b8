"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest


@pytest.fixture
def run_cli(capsys):
    """Run ``edgefit ARGS…`` through :func:`edgefit.cli.main` (which turns an EdgefitError into one
    line and an exit code); returns ``(exit code, stdout, stderr)``."""
    from edgefit.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
