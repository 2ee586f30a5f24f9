"""The command line: one module per command, all registered on one Typer app."""

from __future__ import annotations

import copy
import os
import sys

import typer

from babynn_cli.cli import compare, fit, predict, sample, sweep  # noqa: F401  (registers them)
from babynn_cli.cli.app import app


def main() -> None:
    from babynn_cli.cli.boundary import ForgivingStderr

    if sys.stderr is not None:  # the words on stderr are a person's: losing them costs no file
        sys.stderr = ForgivingStderr(sys.stderr)  # type: ignore[assignment]
    for_arguments(sys.argv[1:])()


def for_arguments(args: list[str]) -> typer.Typer:
    """The app as these arguments need it: with the one command they name (Typer turns every
    registered command's options into Click's on each start: 14 ms for all five, 4 ms for `fit`
    alone, the same words either way), with none for `--version` alone (it is answered before
    any command is looked at), and with them all for anything else (babynn's -h, shell
    completion, a name that is no command's)."""
    if any(key.endswith("_COMPLETE") for key in os.environ):
        return app
    name = next((a for a in args if not a.startswith("-")), None)
    if name is None and "--version" in args:
        chosen = []
    else:
        chosen = [c for c in app.registered_commands if _name(c) == name]
        if not chosen:
            return app
    one = copy.copy(app)
    one.registered_commands = chosen
    return one


def _name(command: typer.models.CommandInfo) -> str:
    """A command's name as typed: Typer's, from the function's when none is given."""
    assert command.callback is not None
    return command.name or command.callback.__name__.replace("_", "-")


__all__ = ["app", "for_arguments", "main"]
