"""How many threads numpy's BLAS uses, chosen for the work at hand.

Small matrix products (a minibatch's, a network's layers batch by batch) gain little from a second
thread and lose much when it has to wait for a core: measured with OpenBLAS on 2 cores
(benchmarks/threads.py), a network with 256 hidden units at batch 256 took 167 ms an epoch on two
threads alone and 401 ms beside one busy core, against 199 ms and 204 ms on one thread. Large
products (full batch over many rows, the least-squares triangle, the moments) are faster on every
core. So `blas_threads(1)` holds minibatch training to one thread, and everything else keeps
numpy's default.

numpy offers no call for this; OpenBLAS does (`openblas_set_num_threads`), and this module finds it
in the OpenBLAS library numpy has loaded, as threadpoolctl does, with no new dependency. Where
there is none (another BLAS, another system), or where the user set OPENBLAS_NUM_THREADS or
OMP_NUM_THREADS, it leaves the threads alone.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

PREFIXES = ("", "scipy_")  # numpy's wheels rename OpenBLAS's symbols with a prefix ...
SUFFIXES = ("", "64_")  # ... and a suffix for its 64-bit integer build


@cache
def _openblas() -> tuple[Any, Any] | None:
    """(set, get) of the OpenBLAS numpy loaded, or None."""
    if os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"):
        return None
    import numpy  # noqa: F401  (loads its BLAS)

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(p for p in paths if p.startswith("/")):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in PREFIXES:
            for suffix in SUFFIXES:
                setter = getattr(library, f"{prefix}openblas_set_num_threads{suffix}", None)
                getter = getattr(library, f"{prefix}openblas_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                    return setter, getter
    return None


@contextmanager
def blas_threads(count: int) -> Iterator[None]:
    """numpy's BLAS on at most `count` threads inside the block (where it can be told)."""
    found = _openblas()
    if found is None:
        yield
        return
    setter, getter = found
    before = int(getter())
    setter(min(count, before))
    try:
        yield
    finally:
        setter(before)


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every system
        return os.cpu_count() or 1
