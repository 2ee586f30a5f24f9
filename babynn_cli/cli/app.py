"""The Typer application, its global options, and the console-script entry point."""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

try:  # typer vendors click since 0.26; before that, click is its own package
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover
    import click.exceptions as click_errors  # type: ignore[import-not-found, no-redef]

from babynn_cli import __version__


def _plain_help_flag(option: Any) -> Any:
    """-h/--help takes no value: show no type for it (Typer shows `<bool>`)."""
    if option is not None:
        option.metavar = ""
    return option


class Command(TyperCommand):
    """A babynn command: its -h shows no type, its usage line names arguments as words (DATA,
    not Typer's {DATA})."""

    def get_help_option(self, ctx: Any) -> Any:
        return _plain_help_flag(super().get_help_option(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


# what the command-line library says, in babynn's words
_REWORDED = (
    (re.compile(r"Input should be a valid number, unable to parse string as a number\.?"),
     "not a number"),
    (re.compile(r"Input should be a valid integer, unable to parse string as an integer\.?"),
     "not a whole number"),
    (re.compile(r"Input should be a valid integer, got a number with a fractional part\.?"),
     "not a whole number"),
    (re.compile(r"is not a valid int(eger)?( range)?\.?"), "is not a whole number"),
    (re.compile(r"is not a valid float( range)?\.?"), "is not a number"),
    (re.compile(r"(\S+) is not in the range (\S+)<=x<=([^\s(]+?)\.?(?= |$)"),
     r"must be from \2 to \3 (got \1)"),
    (re.compile(r"(\S+) is not in the range x>=([^\s(]+?)\.?(?= |$)"), r"must be ≥ \2 (got \1)"),
    (re.compile(r"(\S+) is not in the range x<=([^\s(]+?)\.?(?= |$)"), r"must be ≤ \2 (got \1)"),
    (re.compile(r"Value error, "), ""),
    (re.compile(r"Input should be (greater|less) than (or equal to )?"), r"must be \1 than \2"),
)  # fmt: skip


def own_words(message: str) -> str:
    """A usage error of the command-line library in babynn's words."""
    for pattern, words in _REWORDED:
        message = pattern.sub(words, message)
    return message


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
            message = own_words(" ".join(e.format_message().split()))  # one line, whatever
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

    def get_help_option(self, ctx: Any) -> Any:
        return _plain_help_flag(super().get_help_option(ctx))


EXIT_CODES = (
    "Exit codes: 0 success · 1 bad input (a file, a column, a model file) · 2 usage (options, "
    "an extra not installed) · 3 the run diverged or went unstable · 4 not converged with "
    "--require-converged · 129 SIGHUP · 130 Ctrl-C · 141 stdout closed early · 143 SIGTERM. Try it "
    "anywhere: babynn sample lists the sample data, and any command reads DATA written "
    "sample:NAME."
)

app = typer.Typer(
    cls=OneLineErrors,
    help="Train models by gradient descent from the command line: CSV in, model file and "
    "loss tables out.",
    epilog=EXIT_CODES,
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=True,
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
            "--version",
            "-V",
            metavar="",
            callback=_version,
            is_eager=True,
            help="Show the version.",
        ),
    ] = None,
) -> None:
    """Train the affine model ŷ = Wᵀx + w0 by gradient descent: CSV in, model file out."""
