"""The console: where babynn's words and tables go, and how progress shows.

Tables go to stdout; progress, status lines and the run's header go to stderr, so that stdout
holds only what the user asked for. Nothing animates unless stderr is a terminal. What goes to
stdout is composed first and written by `flush` once the command's files are in place, so that a
failure while composing leaves no new file, and a reader that closes the pipe early (`| head`)
cannot cost the files. What a command shows is its report module's (`report.fit`, `report.sweep`,
`report.compare`, `report.predict`); this module only carries it.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from babynn_cli.errors import OutputError
from babynn_cli.jsontext import dumps
from babynn_cli.report.words import fmt
from babynn_cli.text import one_line

if TYPE_CHECKING:
    from babynn_cli.core.history import EpochInfo

LOG_WIDTH = 160  # columns for tables when stdout is not a terminal
PLAIN_LINE_EVERY = 10.0  # seconds between plain progress lines when stderr is not a terminal


def say(line: str, console: Console | None = None) -> None:
    """One message on stderr: in a terminal wrapped at spaces to its width (a word longer than
    the width is left whole); elsewhere (a log, a pipe) one line, as it is, for grep."""
    console = console or Console(stderr=True, highlight=False, markup=False)
    if console.is_terminal:
        console.print(Text(line, overflow="ignore"), soft_wrap=False, markup=False)
    else:
        console.print(line, soft_wrap=True, markup=False)


def write_stdout(text: str) -> None:
    """`text` on standard output, all of it or an error: written to the descriptor itself, each
    short write followed by the rest (Python's unbuffered stdout, PYTHONUNBUFFERED=1, drops what
    a short write leaves). BrokenPipeError when the reader has gone; any other failure (a full
    disk, a closed descriptor) as babynn's one-line error."""
    stream = sys.stdout
    if stream is None:  # started with stdout closed (>&-)
        raise OutputError(f"cannot write to standard output: {os.strerror(errno.EBADF)}")
    try:
        fd = stream.fileno()
    except (AttributeError, ValueError):  # no descriptor (a test's captured stream)
        stream.write(text)
        stream.flush()
        return
    try:
        stream.flush()
        data = memoryview(text.encode(stream.encoding or "utf-8", errors="replace"))
        while data:
            data = data[os.write(fd, data) :]
    except BrokenPipeError:
        raise
    except OSError as e:
        raise OutputError(f"cannot write to standard output: {e.strerror or e}") from None


class Reporter:
    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        # markup=False: column names, file names and labels are the user's, printed as they are
        self.out = Console(highlight=False, markup=False)
        if not self.out.is_terminal and "COLUMNS" not in os.environ:
            # A log or a pipe: wide lines read better there than tables squeezed to 80 columns.
            self.out = Console(highlight=False, markup=False, width=LOG_WIDTH)
        self.err = Console(stderr=True, highlight=False, markup=False)
        self._stdout: list[str] = []  # composed, written by `flush`

    @property
    def width(self) -> int:
        return self.out.width

    def status(self, message: str) -> None:
        """A human message on stderr, unless --quiet: one line (a name may hold a line break);
        in a terminal wrapped to its width between words, never inside a number or a name."""
        if not self.quiet:
            say(one_line(message), self.err)

    def emit_json(self, doc: dict) -> None:
        """Data the user asked for: printed even with --quiet, NaN and infinity as null."""
        self._stdout.append(dumps(doc) + "\n")

    def emit_text(self, text: str) -> None:
        """Data the user asked for (a CSV), as it is: printed even with --quiet."""
        self._stdout.append(text)

    def flush(self) -> None:
        """Write what was composed for stdout (BrokenPipeError when the reader has gone)."""
        text, self._stdout = "".join(self._stdout), []
        if text:
            write_stdout(text)

    @contextmanager
    def progress(
        self, epochs: int, label: str = "training"
    ) -> Iterator[Callable[[EpochInfo], None]]:
        """A callback for the training loop's `on_epoch`.

        On a terminal: a transient Rich bar (epoch, loss, rate, time left). Elsewhere: a plain
        line every PLAIN_LINE_EVERY seconds, so that short runs print nothing per epoch.
        With --quiet: nothing.
        """
        if self.quiet:
            yield lambda info: None
        elif self.err.is_terminal:
            from rich.progress import (  # only where a bar is drawn: 4 ms of every start
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),  # a percentage: progress shows under NO_COLOR too
                TextColumn("epoch {task.completed}/{task.total}"),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[lr]}"),
                TimeRemainingColumn(),
                console=self.err,
                transient=True,
            )
            task = bar.add_task(label, total=epochs, loss="-", lr="-")
            shown = {"loss": "-", "lr": "-"}

            def update(info: EpochInfo) -> None:
                loss, lr = _progress_fields(info)
                if loss != "-":  # a run that stopped leaves its last numbers on show
                    shown.update(loss=loss, lr=lr)
                done = info.running == 0  # the last frame: the epoch the runs stopped at
                total = info.epoch if done else epochs
                bar.update(
                    task, completed=info.epoch, total=total, loss=shown["loss"], lr=shown["lr"]
                )

            with bar:
                yield update
        else:
            last = time.monotonic()

            def line(info: EpochInfo) -> None:
                nonlocal last
                now = time.monotonic()
                if now - last >= PLAIN_LINE_EVERY:
                    last = now
                    loss, lr = _progress_fields(info)
                    self.status(
                        f"{label}: epoch {info.epoch}/{info.epochs}  loss {loss}  {lr}  "
                        f"{info.seconds:.0f} s"
                    )

            yield line

    @contextmanager
    def reading(self, label: str, total_rows: int | None = None) -> Iterator[Callable[[int], None]]:
        """A callback for a pass over streamed rows, given the rows read so far.

        On a terminal: a transient Rich line (rows, rate; a bar when the count is known, as in a
        second pass). Elsewhere: a plain line every PLAIN_LINE_EVERY seconds. With --quiet:
        nothing. The pass's closing line is the caller's.
        """
        if self.quiet:
            yield lambda rows: None
        elif self.err.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn() if total_rows else TextColumn(""),
                TextColumn("{task.completed:,} rows"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=self.err,
                transient=True,
            )
            task = bar.add_task(label, total=total_rows, rate="")
            start = time.monotonic()

            def update(rows: int) -> None:
                took = time.monotonic() - start
                rate = f"{rows / took:,.0f} rows/s" if took > 0 else ""
                bar.update(task, completed=rows, rate=rate)

            with bar:
                yield update
        else:
            last = start = time.monotonic()

            def line(rows: int) -> None:
                nonlocal last
                now = time.monotonic()
                if now - last >= PLAIN_LINE_EVERY:
                    last = now
                    self.status(
                        f"{label}: {rows:,} rows read, {rows / (now - start):,.0f} rows/s, "
                        f"{now - start:.0f} s"
                    )

            yield line

    @contextmanager
    def stream_pass(self, number: int, known: int | None) -> Iterator[Callable[[int], None]]:
        """Pass `number` over streamed rows, shown while it reads (`reading`; `known`: the rows
        it will read, when a pass before has counted them), then summed up in one line on stderr:
        its rows, time and rate."""
        rows, start = 0, time.perf_counter()
        with self.reading(f"stream pass {number}", known) as shown:

            def seen(count: int) -> None:
                nonlocal rows
                rows = count
                shown(count)

            yield seen
        took = time.perf_counter() - start
        rate = rows / took if took > 0 else float("inf")
        self.status(f"stream pass {number}: {rows:,} rows in {took:.1f} s ({rate:,.0f} rows/s)")

    # -- tables
    def print(self, renderable: object) -> None:
        """A table or a plot for stdout, rendered now, written by `flush`."""
        if isinstance(renderable, Table) and renderable.title and renderable.min_width is None:
            renderable.min_width = len(str(renderable.title))  # a title never wraps
        if not self.quiet:
            with self.out.capture() as captured:
                self.out.print(renderable)
            self._stdout.append(captured.get())

    def print_err(self, renderable: object) -> None:
        """A table for people on stderr, where stdout holds data (predict's CSV), unless
        --quiet."""
        if not self.quiet:
            self.err.print(renderable)

    def summary(self, items: Sequence[tuple[str, str]]) -> None:
        """A titled table of (name, value) rows, for stdout."""
        table = Table(title="Summary", title_justify="left", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for key, value in items:
            table.add_row(key, value)
        self.print(table)


def _progress_fields(info: EpochInfo) -> tuple[str, str]:
    """The loss and rate of one run; for several, the lowest loss and how many still run."""

    if len(info.train_loss) == 1:
        return fmt(float(info.train_loss[0])), f"η {fmt(float(info.lr[0]))}"
    losses = info.train_loss[np.isfinite(info.train_loss)]
    best = fmt(float(losses.min())) if losses.size else "-"
    return f"{best} (lowest)", f"{info.running}/{len(info.train_loss)} running"
