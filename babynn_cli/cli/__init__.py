"""The command line: one module per command, all registered on one Typer app."""

from babynn_cli.cli import compare, fit, predict, sample, sweep  # noqa: F401  (registers them)
from babynn_cli.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
