"""What fit, sweep-lr and compare do alike before training: load the data, build the problem."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from babynn_cli import interrupts
from babynn_cli.cli.boundary import COMMAND_RESOURCES
from babynn_cli.cli.groups import DataOptions, ModelOptions
from babynn_cli.errors import BabynnError, DataError, UsageError
from babynn_cli.text import one_line

if TYPE_CHECKING:
    from babynn_cli.core.encoding import Encoding
    from babynn_cli.core.moments import Moments
    from babynn_cli.core.problem import Problem
    from babynn_cli.data.columns import Dataset, Reading
    from babynn_cli.data.read import Wanted
    from babynn_cli.data.stream import Stream
    from babynn_cli.outputs import Outputs
    from babynn_cli.report.console import Reporter


BIG_FILE = 32_000_000  # bytes: a file this large takes a second or more to read: say so first
AUTO_STREAM = 1 / 3  # a source larger than this share of the free memory streams unasked


def load_problem(
    data: DataOptions,
    model: ModelOptions,
    quiet: bool = False,
    full_batch: bool = True,
    epochs_given: bool = True,
    early_stopping: bool = False,
    encoding: Encoding | None = None,
    classes: tuple[str, ...] | None = None,
) -> tuple[Dataset | Stream, Problem]:
    """The dataset (or its stream) and the problem as trained (split, standardised); DataError
    when it can't be. Streams with --stream or --scheduler, or unasked when the source (files,
    not standard input) is too large for memory. Without --val-frac, the split is babynn's
    (`core.auto.default_val_frac`: a network without --epochs, or --early-stopping). `encoding`,
    `classes`: a saved model's, to read DATA as it read it (--warm-start)."""
    from babynn_cli.core.auto import default_val_frac
    from babynn_cli.core.problem import make_problem
    from babynn_cli.data.read import load

    network = bool(model.layers)

    def split(n_rows: int | None) -> float:
        if model.val_frac is not None:
            return model.val_frac
        return default_val_frac(n_rows, network, epochs_given, early_stopping)

    loss = None if model.loss is None else model.loss.value
    wanted = data.wanted(encoding, loss, classes)
    if stream_wanted(data, model, full_batch, quiet):
        source, streamed = load_stream(data, model, quiet, full_batch, split(None), wanted)
        model.check_loss(streamed.classifies)
        return source, streamed
    if data.data == "-" and sys.stdin is not None and sys.stdin.isatty():
        typer.echo("reading the CSV from standard input: type or paste it, then Ctrl-D", err=True)
    elif not quiet and os.path.isfile(data.data) and os.path.getsize(data.data) >= BIG_FILE:
        size = os.path.getsize(data.data) / 1e6
        typer.echo(f"reading '{data.data}' ({size:,.0f} MB)…", err=True)
    dataset = load(data.data, data.dialect, wanted)
    say_reading(dataset.reading, len(dataset.X), quiet)
    with problem_of(data.data):
        problem = make_problem(
            dataset.X,
            dataset.Y,
            val_frac=split(len(dataset.X)),
            standardize=model.standardize,
            intercept=model.intercept,
            seed=model.seed,
            hidden=model.layers,
            activation=model.activation.value,
            loss=loss_kind(dataset.reading.classes),
            l2=model.l2,
        )
    model.check_loss(problem.classifies)
    return dataset, problem


def loss_kind(classes: tuple[str, ...] | None) -> str:
    """The loss a model learns by, from the target's classes (none: numbers, squared error)."""
    from babynn_cli.core.losses import kind_of

    return "mse" if classes is None else kind_of("cross-entropy", len(classes))


@contextmanager
def problem_of(source: str) -> Iterator[None]:
    """The data's problem (too few rows, values too large) as a DataError naming the data."""
    from babynn_cli.core.problem import ProblemError
    from babynn_cli.data.sources import display_name

    try:
        yield
    except ProblemError as e:
        raise DataError(f"{display_name(source)} has {e}") from None


def stream_wanted(data: DataOptions, model: ModelOptions, full_batch: bool, quiet: bool) -> bool:
    """--stream or --scheduler, checked against what they can run; or a source too large for
    the free memory."""
    can = data.data != "-"
    if data.scheduler is not None and not (
        can and full_batch and not model.val_frac and not model.layers
    ):
        raise UsageError(
            "--scheduler trains the affine model at full batch, without --val-frac, from files: "
            "minibatches, networks and validation need the rows on this machine (--stream)"
        )
    asked = data.stream or data.scheduler is not None
    if asked and not can:
        raise UsageError("--stream reads DATA again at each pass: it needs files, not stdin")
    if data.cache is not None and not asked:
        raise UsageError("--cache is where --stream keeps its copy of the rows: add --stream")
    if asked or not can:
        return asked
    from babynn_cli.data.sources import source_parts

    try:
        size = sum(os.path.getsize(p) for p in source_parts(data.data) if os.path.isfile(p))
    except DataError:
        return False  # the in-memory reader says what is wrong
    free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    if size > AUTO_STREAM * free:
        if not quiet:
            typer.echo(
                f"{data.data} ({size / 1e9:,.1f} GB) is larger than a third of the free memory "
                f"({free / 1e9:,.1f} GB): streaming it (see --stream)",
                err=True,
            )
        return True
    return False


def load_stream(
    data: DataOptions,
    model: ModelOptions,
    quiet: bool,
    full_batch: bool,
    val_frac: float,
    wanted: Wanted,
) -> tuple[Stream, Problem]:
    """The problem from a stream of blocks: one pass for the moments, one for L* (the final loss
    comes from the moments); each pass says how many rows it read and how fast. Minibatches read
    the rows from the first pass's binary copy, in shuffled blocks; a validation split costs one
    more pass (to count the rows) and its own two."""
    from babynn_cli.core.problem import make_streamed_problem
    from babynn_cli.data.stream import stream
    from babynn_cli.report.console import Reporter

    watch = None if quiet else Reporter().stream_pass
    source = stream(data.data, data.dialect, wanted, data.cache, watch)
    raw = None if data.scheduler is None else cluster_moments(data, source, quiet)
    with problem_of(data.data):
        problem = make_streamed_problem(
            source.blocks,
            standardize=model.standardize,
            intercept=model.intercept,
            raw=raw,
            row_file=None if full_batch else source.row_file,
            val_frac=val_frac,
            seed=model.seed,
            hidden=model.layers,
            activation=model.activation.value,
            loss=loss_kind(source.classes),
            l2=model.l2,
        )
    say_reading(source.reading, problem.n_train + problem.n_val, quiet)
    return source, problem


def say_reading(reading: Reading, rows: int, quiet: bool) -> None:
    """What reading DATA did to its columns and rows, on stderr."""
    from babynn_cli.report.console import say
    from babynn_cli.report.words import reading_in_words

    if not quiet:
        for line in reading_in_words(reading, rows):
            say(one_line(line))


def cluster_moments(data: DataOptions, source: Stream, quiet: bool) -> Moments:
    """The source's moments computed on the Dask cluster of --scheduler; the client (and a
    LocalCluster it started) closes when the command ends."""
    from babynn_cli import cluster
    from babynn_cli.data.sources import Dialect

    if source.classes is not None:
        raise UsageError(
            "--scheduler gathers squared error's moments on the cluster; cross-entropy has no "
            "moments to gather: stream the classes on this machine with --stream"
        )
    if not source.encoding.plain or data.dialect != Dialect(data.separator):
        raise UsageError(
            "--scheduler reads plain numeric columns: text, dates, --impute, --decimal, "
            "--thousands and --na-values need the rows on this machine (--stream)"
        )
    cluster.require_dask()
    parts = cluster.worker_parts(data.data)
    assert data.scheduler is not None
    c = COMMAND_RESOURCES.enter_context(cluster.client(data.scheduler))
    said = None if quiet else (lambda line: typer.echo(line, err=True))
    return cluster.moments(
        c, parts, data.separator, source.features, source.targets, data.dropna, said
    )


def check_memory(problem: Problem, batch_size: int | None, runs: int = 1) -> None:
    """Refuse, before allocating, a network that cannot fit in this machine's memory."""
    from babynn_cli.core.mlp import MLP

    if not isinstance(problem.model, MLP):
        return
    rows = min(problem.n_train, batch_size or problem.n_train, 1 << 14)
    needed = problem.model.memory_bytes(rows, runs)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > 0.8 * total:
        layers = " ".join(f"--hidden {h}" for h in problem.model.hidden)
        raise UsageError(
            f"{layers} needs about {needed / 2**30:,.1f} GiB of memory to train; this machine "
            f"has {total / 2**30:,.1f} GiB: use fewer or smaller hidden layers"
        )


def begin(
    inputs: list[tuple[str, str | Path | None]],
    named: dict[str, str | Path | None],
    quiet: bool,
) -> tuple[Outputs, Reporter]:
    """The start every command that writes files shares: its outputs named and checked before any
    work (`named`: option → path, None when not asked for), against its `inputs` and each other;
    matplotlib found when a picture is asked for (--plot); and the report it speaks through."""
    from babynn_cli.data.sources import source_parts
    from babynn_cli.outputs import Outputs
    from babynn_cli.report.console import Reporter

    expanded = list(inputs)  # a folder or a glob: each of its files is an input too
    for what, source in inputs:
        if what == "the DATA file" and source is not None:
            try:
                parts = source_parts(str(source))
            except DataError:  # said when DATA is read
                parts = []
            expanded += [(f"{what}'s part", part) for part in parts if part != str(source)]
    outputs = Outputs(expanded)
    for flag, path in named.items():
        outputs.name(flag, path)
    plot = named.get("--plot")
    if plot is not None and not str(plot).lower().endswith(".png"):
        raise UsageError(f"--plot writes a PNG picture: name it FILE.png (got '{plot}')")
    if plot is not None:
        from babynn_cli.report.plot import require_matplotlib

        require_matplotlib()
    return outputs, Reporter(quiet=quiet)


def finish(
    outputs: Outputs,
    report: Reporter,
    *,
    interrupted: bool = False,
    failure: BabynnError | None = None,
    last_line: str | None = None,
    json_file: tuple[Path | None, Callable[[], dict]] | None = None,
) -> None:
    """The end every training command shares: its files and what it composed for stdout
    written (all or none: `Outputs.commit`), then its last line on stderr and its exit code —
    130, 143 or 129 after Ctrl-C, SIGTERM or SIGHUP, the failure's own code (3: diverged, 4: not
    converged), or 0.
    `json_file`: --json-file's path and its document, written with the files only when the
    command succeeds."""
    if json_file is not None and failure is None and not interrupted:
        from babynn_cli.jsontext import dumps

        path, doc = json_file
        outputs.stage(path, lambda: dumps(doc()) + "\n")
    outputs.commit(report.flush)
    if interrupted:  # the last line says so first, whatever else it says
        said = f"interrupted by {interrupts.stopped_by()}"
        report.status(said if last_line is None else f"{said} {last_line}")
        raise typer.Exit(code=interrupts.exit_code())
    if failure is not None:
        raise failure
    if last_line is not None:
        report.status(last_line)
