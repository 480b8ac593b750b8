"""Commands load their module only when they run, and `edgefit --help` still lists every one of them."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from edgefit.cli._app import COMMANDS, app
from edgefit.cli._lazy import LazyCommand, LazyGroup, _Placeholder, lazy_group

runner = CliRunner()
HEAVY = ("torch", "onnx", "onnxruntime", "numba", "optuna", "sklearn", "ray")


def _imports(*args: str) -> set[str]:
    """Modules a fresh `edgefit ARGS…` imports (it must exit 0)."""
    code = "import sys; from edgefit.cli import main; main(sys.argv[1:])"
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("spec", COMMANDS, ids=lambda s: s.name)
def test_listed_help_is_the_commands_own(spec: LazyCommand):
    """The paragraph `edgefit --help` shows without importing the command is the one the command declares."""
    loaded = spec.load(rich_markup_mode=None)
    assert loaded.name == spec.name
    assert inspect.cleandoc(loaded.short_help or loaded.help or "").split("\n\n")[0] == spec.help


def _help_page(group, capsys) -> str:
    ctx = group.make_context("edgefit", [], resilient_parsing=True)
    group.format_help(ctx, ctx.make_formatter())
    return capsys.readouterr().out


def test_help_lists_every_command_unloaded_and_unchanged_once_loaded(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    group = typer.main.get_command(app)
    listed = _help_page(group, capsys)
    assert all(isinstance(c, _Placeholder) for c in group.commands.values())  # listing loaded nothing
    assert re.findall(r"^│ ([a-z][\w-]*) ", listed, re.M) == [c.name for c in COMMANDS]
    for spec in COMMANDS:
        assert group.get_command(None, spec.name).name == spec.name
    assert not any(isinstance(c, _Placeholder) for c in group.commands.values())
    assert _help_page(group, capsys) == listed


def test_a_typo_still_gets_a_suggestion():
    r = runner.invoke(app, ["inspec"])
    assert r.exit_code == 2 and "Did you mean 'inspect'?" in r.output


def test_subcommand_help_and_run_load_the_command():
    assert "list" in runner.invoke(app, ["targets", "--help"], env={"COLUMNS": "120"}).output
    r = runner.invoke(app, ["targets", "list", "--json"])
    assert r.exit_code == 0 and '"jetson-agx-orin-64gb"' in r.output


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        lazy_group([LazyCommand("a", "m:f", "x"), LazyCommand("a", "m:g", "y")])
    assert issubclass(lazy_group(COMMANDS), LazyGroup)


def test_version_imports_no_command_module():
    imported = _imports("--version")
    assert not [m for m in imported if m.startswith("edgefit.cli._") and m not in ("edgefit.cli._app",
                                                                                  "edgefit.cli._lazy")]
    assert not [m for m in HEAVY if m in imported]


@pytest.mark.parametrize("args", [("targets", "list"), ("targets", "show", "orin")])
def test_target_commands_import_no_heavy_library(args):
    imported = _imports(*args)
    assert not [m for m in HEAVY if m in imported]
    assert "edgefit.graph" not in imported and "edgefit.cli._inspect" not in imported
