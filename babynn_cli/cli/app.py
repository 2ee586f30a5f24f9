"""The Typer application, its global options, and the console-script entry point."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

try:  # typer vendors click since 0.26; before that, click is its own package
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover
    import click.exceptions as click_errors  # type: ignore[import-not-found, no-redef]

from babynn_cli import __version__


class OneLineErrors(TyperGroup):
    """Usage errors (an unknown option, a bad value, a missing argument) as one `Error:` line on
    stderr and exit 2, as babynn's own errors are, instead of Click's boxed message."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            code = super().main(*args, **{**kwargs, "standalone_mode": False})
        except click_errors.NoArgsIsHelpError as e:
            typer.echo(e.ctx.get_help() if e.ctx else "")
            code = 0
        except click_errors.ClickException as e:
            message = " ".join(e.format_message().split())  # one line, whatever it holds
            hint = ""
            context = getattr(e, "ctx", None)
            if isinstance(e, click_errors.UsageError) and context is not None:
                hint = f" (see {context.command_path} -h)"
            typer.echo(f"Error: {message}{hint}", err=True)
            code = e.exit_code
        except typer.Abort:
            typer.echo("Interrupted.", err=True)
            code = 130
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
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
