"""Fixtures shared by every test folder."""

from __future__ import annotations

import json

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


@pytest.fixture
def run_ok(run_cli):
    """``edgefit ARGS… --json`` that must exit 0; returns its parsed JSON (the stderr tail on
    failure)."""

    def run(*args: str) -> dict:
        code, out, err = run_cli(*args)
        assert code == 0, err[-3000:]
        return json.loads(out)

    return run

