"""Ctrl-C, SIGTERM and SIGHUP held back while work that must not be cut in the middle runs.

Inside `held()` the signals are noted instead of acted on; when the block ends, the first that came
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

KINDS = tuple(  # Ctrl-C, and what stops the work as it does (`babynn_cli.interrupts`)
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


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

    def _act(self, signum: int, frame: FrameType | None) -> None:
        """What the signal would have done: its handler (which raises, as a rule), or the
        default action (for SIGTERM: the process ends)."""
        handler = self.before[signum]
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    def _note_and_act(self, signum: int, frame: FrameType | None) -> None:
        """Act at once, and note it too: Python ignores an exception raised while it runs a
        finalizer or a weakref callback (garbage collection can run one at any moment), and
        the note lets the next `deliver` act on a Ctrl-C lost that way."""
        self.pending.append((signum, frame))
        self._act(signum, frame)

    def deliver(self) -> None:
        """Act on the first signal that came (while held, or lost in a let-through window), and
        forget the rest: one Ctrl-C is one interruption."""
        if not self.pending:
            return
        signum, frame = self.pending[0]
        self.pending.clear()
        self._act(signum, frame)

    def acted(self) -> None:
        """The interruption a signal raised was caught: forget its note."""
        self.pending.clear()

    @contextmanager
    def let_through(self) -> Iterator[None]:
        """Inside this block the signals act at once, as if nothing held them (one that came
        before the block acts as it begins); call `deliver` at safe points inside it, for one
        whose exception was lost, and `acted` where the exception is caught."""
        if not self.active:
            yield
            return
        try:
            self.deliver()
            for kind in KINDS:
                signal.signal(kind, self._note_and_act)
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
