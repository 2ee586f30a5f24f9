"""The command line: one module per command, all registered on one Typer app."""

from babynn_cli.cli import compare, fit, predict, sample, sweep  # noqa: F401  (registers them)
from babynn_cli.cli.app import app


def main() -> None:
    import sys

    from babynn_cli.cli.boundary import ForgivingStderr

    if sys.stderr is not None:  # the words on stderr are a person's: losing them costs no file
        sys.stderr = ForgivingStderr(sys.stderr)  # type: ignore[assignment]
    app()


__all__ = ["app", "main"]
