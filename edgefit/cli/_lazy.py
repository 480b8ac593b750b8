"""Commands that import their module only when they run.

A command module imports what its command needs (edgefit.graph pulls in onnx, edgefit.search
optuna's neighbours …). Importing all of them on every call made `edgefit targets list` pay for
onnx; so the root group holds a :class:`LazyCommand` per command: a name, where the command lives
(``module:attribute``) and the one-paragraph help that `edgefit --help` lists. Listing the commands
imports nothing; resolving a command to run it (or to print its own ``--help``) imports its module
and builds the real click command exactly as ``app.command(name)(function)`` or
``app.add_typer(sub_app, name=name)`` would.

The help paragraphs are written twice (here and in each command's docstring); the CLI tests compare
them for every command, so they cannot drift apart unnoticed.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class LazyCommand:
    """One command of the root group: ``name``, ``target`` (``"module:attribute"``, a function or a
    ``typer.Typer`` sub-app) and ``help`` (the first paragraph of its help, as `--help` lists
    it)."""

    name: str
    target: str
    help: str

    def load(self, rich_markup_mode: Any) -> Any:
        """The real click command, built by Typer from the imported function or sub-app."""
        module, _, attribute = self.target.partition(":")
        obj = getattr(importlib.import_module(module), attribute)
        holder = typer.Typer(rich_markup_mode=rich_markup_mode)
        if isinstance(obj, typer.Typer):
            holder.add_typer(obj, name=self.name)
        else:
            holder.command(self.name)(obj)
        return typer.main.get_group(holder).commands[self.name]


class _Placeholder(TyperCommand):
    """Stands in for a command until it is resolved; carries only its name and listed help."""

    def __init__(self, spec: LazyCommand) -> None:
        super().__init__(name=spec.name, help=spec.help)
        self.spec = spec


class LazyGroup(TyperGroup):
    """A TyperGroup whose commands in :attr:`lazy_commands` are imported on first use, not at
    start.

    ``edgefit --help`` lists the placeholders (nothing imported); any other lookup swaps a
    placeholder for the real command. Subclass it with ``lazy_commands`` set (see
    :func:`lazy_group`).
    """

    lazy_commands: Sequence[LazyCommand] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._listing = False
        for spec in self.lazy_commands:
            self.add_command(_Placeholder(spec))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if isinstance(cmd, _Placeholder) and not self._listing:
            cmd = self.commands[cmd_name] = cmd.spec.load(self.rich_markup_mode)
        return cmd

    def format_help(self, ctx: Any, formatter: Any) -> Any:
        self._listing = (
            True  # the command list needs names and help only: keep the modules unimported
        )
        try:
            return super().format_help(ctx, formatter)
        finally:
            self._listing = False


def lazy_group(commands: Sequence[LazyCommand]) -> type[LazyGroup]:
    """A :class:`LazyGroup` class for ``typer.Typer(cls=...)`` that holds ``commands`` in this
    order."""
    names = [c.name for c in commands]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate command names in {names}")
    return type("EdgefitGroup", (LazyGroup,), {"lazy_commands": tuple(commands)})
