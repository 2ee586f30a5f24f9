"""Ctrl-C, SIGTERM and SIGHUP: each stops training cleanly, and none may cut a file write in half.

SIGTERM (what `timeout`, `kill`, CI runners and container stops send) and SIGHUP (a terminal or
ssh session closed) are raised as `Terminated`, a kind of KeyboardInterrupt, so every place that
handles Ctrl-C handles them the same way; the exit code tells them apart (130 for Ctrl-C, 143 for
SIGTERM, 129 for SIGHUP). While a command's outputs are written,
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
EXIT_HUNG_UP = 129  # 128 + SIGHUP
# what stops the work besides Ctrl-C: SIGTERM (timeout, kill, CI runners), SIGHUP (a closed
# terminal or ssh session: the row copy of --stream must not be left behind)
STOPS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
HELD = (signal.SIGINT, *STOPS)  # what `deferred` holds back


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C would be."""


_received: list[int] = []  # the signals that stopped this process's work, in order


def _on_stop(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise Terminated


def install() -> None:
    """From now on SIGTERM and SIGHUP stop the work as Ctrl-C does (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        for kind in STOPS:
            signal.signal(kind, _on_stop)


def stopped_by() -> str:
    """What stopped the work, in a user's words: SIGTERM, SIGHUP, or Ctrl-C (SIGINT)."""
    stops = [s for s in _received if s in STOPS]
    return signal.Signals(stops[0]).name if stops else "Ctrl-C"


def exit_code(error: KeyboardInterrupt | None = None) -> int:
    """130 after Ctrl-C, 143 after SIGTERM, 129 after SIGHUP."""
    if stopped_by() == "SIGHUP":
        return EXIT_HUNG_UP
    terminated = isinstance(error, Terminated) or stopped_by() == "SIGTERM"
    return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


@contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block is done, then deliver the first that came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.getsignal(s) for s in HELD}
    for s in previous:
        signal.signal(s, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if held:
        if held[0] in STOPS:
            _received.append(held[0])
            raise Terminated
        raise KeyboardInterrupt
