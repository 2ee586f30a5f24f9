"""The error boundary of every command: babynn's exceptions, Ctrl-C and SIGTERM, a closed pipe and
bugs become one line on stderr and an exit code (`reports_errors`), and what a command opened is
closed however it ends (`COMMAND_RESOURCES`)."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from babynn_cli import interrupts
from babynn_cli.errors import BabynnError
from babynn_cli.text import one_line

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE
F = TypeVar("F", bound=Callable[..., Any])

# what a command opened that must close when it ends, however it ends (a Dask cluster)
COMMAND_RESOURCES = contextlib.ExitStack()


def reports_errors(command: F) -> F:
    """Turn babynn's errors into `Error: <message>` on stderr and their exit code; Ctrl-C and
    SIGTERM into 130 and 143; a reader that closed stdout early into a quiet exit 141, as Unix
    tools do (the command's files are written before its stdout)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        interrupts.install()
        try:
            with warnings.catch_warnings(), COMMAND_RESOURCES:
                # every case a library warns about is handled and said in words; a warning
                # that still slips through is noise to the user, never news
                warnings.simplefilter("ignore")
                return command(*args, **kwargs)
        except BabynnError as e:
            typer.echo(f"Error: {one_line(str(e))}", err=True)
            raise typer.Exit(code=e.exit_code) from None
        except KeyboardInterrupt as e:
            code = interrupts.exit_code(e)
            words = {interrupts.EXIT_TERMINATED: "Terminated.", interrupts.EXIT_HUNG_UP: "Hung up."}
            with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
                typer.echo(words.get(code, "Interrupted."), err=True)
            raise typer.Exit(code=code) from None
        except MemoryError:
            typer.echo(
                "Error: not enough memory for this run: use less data, fewer rates, a smaller "
                "--batch-size or smaller --hidden layers",
                err=True,
            )
            raise typer.Exit(code=1) from None
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # nothing more to write: no flush error at exit
            raise typer.Exit(code=EXIT_BROKEN_PIPE) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as e:  # a bug: still one line, never a traceback
            typer.echo(
                f"Error: internal error, a bug in babynn ({type(e).__name__}: "
                f"{one_line(str(e))}); please report it with the command that caused it",
                err=True,
            )
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


class ForgivingStderr:
    """Standard error as babynn writes to it: the words are for a person, so when nobody reads
    them any more (a reader that left: `2>&1 >/dev/null | head -1`, a closed descriptor) the run
    goes on and its files are still written, its later words dropped. The first failed write
    points descriptor 2 at the null device, so every writer (Rich, Typer, warnings) goes on
    quietly; everything else is the stream's own."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError:
            self._forget()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            self._forget()

    def _forget(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, self._stream.fileno())
        os.close(devnull)
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()  # what failed goes to the null device now

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
