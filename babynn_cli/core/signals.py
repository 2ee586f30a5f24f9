"""Ctrl-C and SIGTERM held back while work that must not be cut in the middle runs.

Inside `held()` both signals are noted instead of acted on; when the block ends, the first that came
is acted on as it would have been (its handler called: Ctrl-C raises KeyboardInterrupt, SIGTERM
whatever the command installed). Within the block, `Held.let_through()` opens a window where they
act at once (an epoch of training, which may take minutes and must stop when asked), and
`Held.deliver()` acts on one that came meanwhile, where the work can take it (between two blocks of
epochs). numba's compiler swallows an interrupt that lands inside it, and an import cut in half
cannot be tried again: both run held.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

KINDS = (signal.SIGINT, signal.SIGTERM)


class Held:
    """The signals held back in one `held()` block, and the handlers they would have met."""

    def __init__(self, active: bool) -> None:
        self.active = active  # signals can be held only in the main thread
        self.pending: list[tuple[int, FrameType | None]] = []
        self.before: dict[int, Any] = {}

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.pending.append((signum, frame))

    def _hold(self) -> None:
        for kind in KINDS:
            signal.signal(kind, self._note)

    def _restore(self) -> None:
        for kind in KINDS:
            signal.signal(kind, self.before[kind])

    def deliver(self) -> None:
        """Act on the first signal that came while held (its handler raises, as a rule), and
        forget the rest: one Ctrl-C is one interruption."""
        if not self.pending:
            return
        signum, frame = self.pending[0]
        self.pending.clear()
        handler = self.before[signum]
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:  # the default action (for SIGTERM: the process ends)
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    @contextmanager
    def let_through(self) -> Iterator[None]:
        """Inside this block the signals act at once, as if nothing held them (one that came
        before the block acts as it begins)."""
        if not self.active:
            yield
            return
        self._restore()
        try:
            self.deliver()
            yield
        finally:
            self._hold()


@contextmanager
def held() -> Iterator[Held]:
    """Ctrl-C and SIGTERM held back inside the block (main thread only), and the first that came
    acted on once it is done."""
    gate = Held(threading.current_thread() is threading.main_thread())
    if not gate.active:
        yield gate
        return
    gate.before = {int(kind): signal.getsignal(kind) for kind in KINDS}
    gate._hold()
    try:
        yield gate
    finally:
        gate._restore()
        gate.deliver()
