"""The Typer application, its global options, and the console-script entry point."""

from __future__ import annotations

from typing import Annotated

import typer

from babynn_cli import __version__

app = typer.Typer(
    help="Train models by gradient descent from the command line: CSV in, model file and "
    "loss tables out.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"babynn {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", metavar="", callback=_version, is_eager=True, help="Show the version."
        ),
    ] = None,
) -> None:
    """Train the affine model ŷ = Wᵀx + w0 by gradient descent: CSV in, model file out."""
