"""Ctrl-C and SIGTERM: both stop training cleanly, and neither may cut a file write in half.

SIGTERM (what `timeout`, `kill`, CI runners and container stops send) is raised as `Terminated`, a
kind of KeyboardInterrupt, so every place that handles Ctrl-C handles it the same way; the exit
code tells them apart (130 for Ctrl-C, 143 for SIGTERM). While a command's outputs are written,
both are held back (`deferred`) and delivered once the files are in place.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be."""


_received: list[int] = []  # the signals that stopped this process's work, in order


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _received.append(signal.SIGTERM)
    raise Terminated


def install() -> None:
    """From now on SIGTERM stops the work as Ctrl-C does (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def stopped_by() -> str:
    """What stopped the work, in a user's words: SIGTERM, or Ctrl-C (SIGINT)."""
    return "SIGTERM" if signal.SIGTERM in _received else "Ctrl-C"


def exit_code(error: KeyboardInterrupt | None = None) -> int:
    """130 after Ctrl-C, 143 after SIGTERM."""
    terminated = isinstance(error, Terminated) or (signal.SIGTERM in _received)
    return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


@contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block is done, then deliver the first that came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if held:
        if held[0] == signal.SIGTERM:
            _received.append(signal.SIGTERM)
            raise Terminated
        raise KeyboardInterrupt
