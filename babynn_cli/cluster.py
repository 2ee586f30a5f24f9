"""Work on a Dask cluster: the only module that imports Dask (lazily: it takes seconds).

Full-batch descent on the affine model needs only the data's centred moments, a sum over rows, so
a cluster computes them where the data is: `dask.dataframe` reads the source's parts (CSV or
Parquet) in partitions, each partition's checked rows become a `MomentSum` (all moved by one shift,
the source's first row, so large means keep their digits), and this machine merges them as a
balanced tree; a second pass computes L* output by output. The fit then goes on exactly as on one
machine. `predict --scheduler` has the workers predict, partition by partition. Workers must be
able to import babynn (installed in their environment), since the partition functions are
babynn's, and to read the source's paths.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from babynn_cli.core.moments import Moments, MomentSum, merged_pairwise
from babynn_cli.core.reference import Fit, Terms
from babynn_cli.data.columns import checked_frame
from babynn_cli.data.stream import first_problem
from babynn_cli.errors import DataError, UsageError
from babynn_cli.text import first_line

CONNECT_SECONDS = (
    10  # an unreachable scheduler, or a cluster without workers, fails after this long
)
BLOCKSIZE = "32MB"  # of CSV text per partition (Dask rounds the count down)
LOCAL_WORKERS = 2
UNREADABLE = (FileNotFoundError, PermissionError, IsADirectoryError)  # a part, seen by a worker


def require_dask() -> None:
    """Fail before any work when the extra is not installed."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(
            "--scheduler needs Dask, which is not installed: pip install 'babynn[dask]'"
        ) from None


def worker_parts(source: str) -> list[str]:
    """The parts of `source` for the workers to read: files, not standard input or a sample
    that lives inside babynn."""
    from babynn_cli.data.sources import SAMPLE, STDIN, source_parts

    if source == STDIN:
        raise UsageError("--scheduler reads DATA on the workers: it needs files, not stdin")
    if source.startswith(SAMPLE):
        name = source.removeprefix(SAMPLE)
        raise UsageError(
            f"--scheduler reads DATA on the workers: write the sample to a file first "
            f"(babynn sample {name} -o {name}.csv)"
        )
    return source_parts(source)


def address_of(scheduler: str) -> str:
    """`env` means Dask's own $DASK_SCHEDULER_ADDRESS; `local` and addresses stay as they are."""
    if scheduler != "env":
        return scheduler
    address = os.environ.get("DASK_SCHEDULER_ADDRESS", "")
    if not address:
        raise UsageError("--scheduler env: DASK_SCHEDULER_ADDRESS is not set")
    return address


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """These environment variables set inside the block (for the processes it starts)."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def client(scheduler: str) -> Iterator[Any]:
    """A Dask client: `local` starts a LocalCluster of two single-threaded worker processes on
    this machine, anything else is a scheduler's address. Closed, with whatever it started, when
    the block ends, Ctrl-C included: nothing is left running."""
    require_dask()
    import dask
    from distributed import Client, LocalCluster

    for name in ("asyncio", "distributed", "tornado"):  # what fails is said in one line instead
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    address = address_of(scheduler)
    if address == "local":
        # the workers' scratch space and lock files in a folder of this command's, removed after
        scratch = tempfile.mkdtemp(prefix="babynn-dask-")
        try:
            try:
                # (the scheduler's scratch space); the workers, which share this stderr, start
                # with Python's warnings off: what fails is said in one line instead
                quiet_workers = {"temporary-directory": scratch}
                with dask.config.set(quiet_workers), _environment(PYTHONWARNINGS="ignore"):
                    cluster = LocalCluster(
                        n_workers=LOCAL_WORKERS,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=50,
                        local_directory=scratch,
                    )
            except BaseException:  # Ctrl-C while the workers start
                _forget_half_started_clusters()
                raise
            try:
                with Client(cluster) as c:
                    yield c
            finally:
                cluster.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    if not address.strip():  # Dask would start a cluster of its own for an empty address
        raise UsageError("--scheduler needs an address (tcp://host:8786), 'env' or 'local'")
    _answers(address)
    try:
        c = Client(address, timeout=f"{CONNECT_SECONDS}s")
    except ValueError as e:  # not an address at all: a bad option value
        raise UsageError(
            f"--scheduler '{address}' is not a scheduler's address: {first_line(e)}"
        ) from None
    except (OSError, TimeoutError) as e:
        raise DataError(f"cannot reach the Dask scheduler at {address}: {first_line(e)}") from None
    try:
        try:
            c.wait_for_workers(1, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError):
            raise DataError(
                f"the Dask scheduler at {address} has no workers (none joined within "
                f"{CONNECT_SECONDS} s): start one with: dask worker {address}"
            ) from None
        yield c
    finally:
        c.close()


def _answers(address: str) -> None:
    """A scheduler greets a new connection at once (Dask's handshake); Dask's client would wait
    for ever at a port that accepts and never answers (an HTTP server, a busy listener): fail
    after CONNECT_SECONDS instead, and refuse the schemes babynn does not speak."""
    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp"):
        raise UsageError(
            f"--scheduler '{address}' is not a scheduler's address: babynn takes "
            f"tcp://host:8786, 'env' or 'local' ({scheme}:// is not supported)"
        )
    host, colon, port = rest.rpartition(":")
    if not colon:
        host, port = rest, "8786"  # Dask's default port
    if not port.isdigit():
        raise UsageError(
            f"--scheduler '{address}' is not a scheduler's address: the port '{port}' is not a "
            "number"
        )
    host = host.strip("[]")  # an IPv6 address, [::1]:8786
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS) as sock:
            sock.settimeout(CONNECT_SECONDS)
            greeting = sock.recv(1)
    except TimeoutError:
        raise DataError(
            f"the Dask scheduler at {address} did not answer within {CONNECT_SECONDS} s: is it a "
            "scheduler's address (not a web page's port)?"
        ) from None
    except OSError as e:
        raise DataError(
            f"cannot reach the Dask scheduler at {address}: {e.strerror or e}"
        ) from None
    if not greeting:
        raise DataError(
            f"the Dask scheduler at {address} closed the connection at once: is it a "
            "scheduler's address?"
        )


class NoWorkers(DataError):
    """The cluster lost every worker and none came back."""


def computed(c: Any, tasks: Any) -> list[Any]:
    """Each partition's result, in order. Dask retries a task whose worker died; a cluster left
    with no worker at all for CONNECT_SECONDS would wait for one forever, so that fails instead."""
    from distributed import wait

    futures = c.compute(tasks.to_delayed())
    without_workers = 0.0
    while True:
        try:
            wait(futures, timeout=1)
            return c.gather(futures)
        except TimeoutError:
            if c.scheduler_info().get("workers"):
                without_workers = 0.0
                continue
            without_workers += 1
            if without_workers >= CONNECT_SECONDS:
                c.cancel(futures)
                raise NoWorkers(
                    f"the Dask cluster has had no worker for {CONNECT_SECONDS} s (they died or "
                    "left): start workers and run again"
                ) from None


def _frame(parts: list[str], sep: str, columns: list[str]) -> Any:
    """The parts' `columns` as a Dask DataFrame of float64: BLOCKSIZE of CSV per partition, or
    Parquet files as Dask splits them."""
    import dask.dataframe as dd

    parquet = [p.lower().endswith(".parquet") for p in parts]
    if any(parquet) and not all(parquet):
        raise DataError("on a cluster the parts must be all CSV or all Parquet, not both")
    if all(parquet):
        return dd.read_parquet(parts, columns=columns)
    dtype = dict.fromkeys(columns, "float64")
    return dd.read_csv(parts, sep=sep, blocksize=BLOCKSIZE, usecols=columns, dtype=dtype)[columns]


def _first_row(c: Any, frame: Any) -> np.ndarray | None:
    """The source's first row, the shift for every partition's sums: read from the first
    partition only (from all only when that one is empty), its missing cells as 0 (any finite
    shift is exact; one near the data keeps the digits); None when there are no rows."""
    for npartitions in (1, -1):
        heads = computed(c, frame.head(1, npartitions=npartitions, compute=False))
        rows = [h.to_numpy(dtype=np.float64) for h in heads if len(h)]
        if rows:
            row = rows[0][0]
            return np.where(np.isfinite(row), row, 0.0)
    return None


def _forget_half_started_clusters() -> None:
    """A LocalCluster interrupted while starting cannot be closed (Dask asserts its workers are
    up), and Dask's exit hook would try, printing a traceback: forget it instead. Its worker
    processes are this process's daemonic children and end with it."""
    from distributed.deploy.spec import SpecCluster

    for half_started in list(SpecCluster._instances):
        SpecCluster._instances.discard(half_started)


def _partition_sums(
    frame: Any, features: list[str], targets: list[str], dropna: bool, shift: np.ndarray
) -> list[tuple[MomentSum | None, int]]:
    """One partition's MomentSum (None without rows) and the rows --dropna dropped from it (in a
    list, so Dask keeps it as one object)."""
    X, Y = checked_frame(frame, features, targets, dropna)
    dropped = len(frame) - len(X)
    if not len(X):
        return [(None, dropped)]
    m = len(features)
    return [(MomentSum.of(X, Y, (shift[:m], shift[m:])), dropped)]


def _same_headers(parts: list[str], sep: str) -> None:
    """Every part's header the first's (read here: the parts are readable on this machine too),
    or the error a run on this machine gives."""
    from babynn_cli.data.columns import read_header, same_header
    from babynn_cli.data.sources import csv_frames, in_part, open_source, reading

    if not all(os.path.isfile(p) for p in parts):
        return  # the workers' own paths: they report what they find
    header = read_header(open_source(parts[0], sep))
    for k, part in enumerate(parts):
        src = open_source(part, sep)
        with in_part(src.name, len(parts) > 1):
            if k:
                same_header(src, read_header(src), header)
            if not src.parquet:  # a leading field with no name (an index) would shift every column
                with reading(src):
                    csv_frames(src.handle(), src.dialect, header, None, src.compression, nrows=1)


def _partition_terms(
    frame: Any,
    features: list[str],
    targets: list[str],
    dropna: bool,
    fits: list[tuple[Fit, bool]],
) -> list[list[Terms]]:
    """One partition's share of each least-squares fit's refinement and L* (`Fit.terms`)."""
    X, Y = checked_frame(frame, features, targets, dropna)
    if not len(X):
        return []
    return [[fit.terms(X, Y, extended) for fit, extended in fits]]


def moments(
    c: Any,
    parts: list[str],
    sep: str,
    features: list[str],
    targets: list[str],
    dropna: bool,
    said: Callable[[str], None] | None = None,
) -> Moments:
    """The raw data's `Moments`, computed on the cluster behind client `c` in two passes over
    the parts' partitions. `said` hears one line per pass (rows, time, rate). A bad cell is
    found again on this machine, when the parts are readable here, to name its part and row."""
    _same_headers(parts, sep)  # as a run on this machine checks them: a part may lack a column
    # Dask reads a sample here, and the first row below
    with _failures_said("while reading the first row", parts, sep, features, targets, dropna):
        frame = _frame(parts, sep, [*features, *targets])
        shift = _first_row(c, frame)
    if shift is None:
        raise DataError("the data has no rows")

    rows = 0

    def run(tasks: Any, what: str) -> list[Any]:
        nonlocal rows
        start = time.perf_counter()
        with _failures_said(f"during {what}", parts, sep, features, targets, dropna):
            results = computed(c, tasks)
        pieces = [piece for chunk in results for piece in chunk]
        if not rows:  # the first pass: (MomentSum or None, rows dropped) a partition
            rows = sum(p.n for p, _ in pieces if p is not None)
        if said is not None:
            took = time.perf_counter() - start
            rate = f"{rows / took:,.0f} rows/s" if took > 0 else "instant"
            said(
                f"cluster pass {what}: {rows:,} rows in {len(results)} partition(s), "
                f"{took:.1f} s ({rate})"
            )
        return pieces

    meta = (None, object)
    sums = frame.map_partitions(_partition_sums, features, targets, dropna, shift, meta=meta)
    counted = run(sums, "1 (the moments)")
    pieces = [piece for piece, _ in counted if piece is not None]
    if not pieces:
        raise DataError("every row has a missing value")
    dropped = sum(d for _, d in counted)
    if dropped and said is not None:  # as a run on this machine says it
        said(f"--dropna dropped {dropped:,} row(s) with a missing cell")
    total = merged_pairwise(pieces)

    def second_pass(fits: list[tuple[Fit, bool]]) -> list[Terms]:
        tasks = frame.map_partitions(_partition_terms, features, targets, dropna, fits, meta=meta)
        shares = run(tasks, "2 (the least-squares fit and loss)")
        return [merged_pairwise([share[k] for share in shares]) for k in range(len(fits))]

    return Moments.of_sums(total, second_pass)


def _partition_predictions(
    frame: Any, features: list[str], targets: list[str], model: Any
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One partition's predictions, and its targets' rows (empty when DATA has none)."""
    X, Y = checked_frame(frame, features, targets, False)
    return [(model.predict(X), Y)]


def predictions(
    c: Any, parts: list[str], sep: str, model: Any, targets: list[str]
) -> tuple[np.ndarray, np.ndarray | None]:
    """A saved model's predictions for every row of the parts, computed on the cluster behind
    client `c` partition by partition, and gathered here in the parts' order; the targets' rows
    too when `targets` (the model's, all present in DATA) are given, for the MSE and R²."""
    features = list(model.features)
    _same_headers(parts, sep)
    with _failures_said("while predicting", parts, sep, features, targets, False):
        frame = _frame(parts, sep, [*features, *targets])
        tasks = frame.map_partitions(
            _partition_predictions, features, targets, model, meta=(None, object)
        )
        results = computed(c, tasks)
    pieces = [piece for chunk in results for piece in chunk]
    if not sum(len(y) for y, _ in pieces):
        raise DataError("the data has no rows")
    Y_hat = np.concatenate([y for y, _ in pieces])
    return Y_hat, (np.concatenate([t for _, t in pieces]) if targets else None)


@contextmanager
def _failures_said(
    when: str,
    parts: list[str],
    sep: str,
    features: list[str],
    targets: list[str],
    dropna: bool,
) -> Iterator[None]:
    """What goes wrong on the cluster as one DataError: bad data named by part and row
    (`_located`), anything else (a worker lost, a scheduler gone) in Dask's first line."""
    try:
        yield
    except NoWorkers:
        raise
    except (DataError, *UNREADABLE, ValueError, TypeError) as e:
        raise _located(e, parts, sep, features, targets, dropna) from None
    except Exception as e:
        raise DataError(f"the Dask cluster failed {when}: {first_line(e)}") from None


def _located(
    e: BaseException,
    parts: list[str],
    sep: str,
    features: list[str],
    targets: list[str],
    dropna: bool,
) -> DataError:
    """A bad value met on the cluster, named by part file and row when this machine can read
    the parts; else the cluster's own words."""
    if all(os.path.isfile(p) for p in parts):
        found = first_problem(parts, sep, features, targets, dropna)
        if found is not None:
            return DataError(found)
    return DataError(f"cannot read the data on the cluster: {first_line(e)}")
