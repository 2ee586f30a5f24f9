"""Every file a command writes: named and checked before any work starts, written together at the
end, atomically (see `Outputs`)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from babynn_cli import interrupts
from babynn_cli.errors import OutputError, UsageError


class Outputs:
    """The files one command writes: named before any work starts, written together at the end.

    `name` checks each output before the work: a file name whose folder exists and is writable
    (not a folder, not a name ending in '/'), and neither one of the command's inputs nor another of
    its outputs (a usage error naming both). `commit` writes them: every regular file to a
    temporary file beside it (beside the real file, when the name is a symbolic link) and, only
    once all are written, each renamed into place, so a failed command leaves no new file and a
    crash never half a file; a file that existed keeps its permissions. A device or a FIFO
    (/dev/null, /dev/stdout, a named pipe) is written through, never replaced. Ctrl-C and SIGTERM
    wait until the files are in place. (A hard-linked file is replaced by the rename: its other
    names keep the old content.)
    """

    def __init__(self, inputs: Sequence[tuple[str, str | Path | None]] = ()) -> None:
        self._inputs = [(what, Path(p)) for what, p in inputs if p is not None and str(p) != "-"]
        self._named: list[tuple[str, Path]] = []
        self._staged: dict[Path, bytes] = {}
        # outputs written as they are made (`streamed`): (open file, temporary or None, real, name)
        self._streams: list[tuple[BinaryIO, str | None, Path, Path]] = []

    def name(self, flag: str, path: str | Path | None) -> None:
        """Check that `path`, given to `flag`, can be written by this command."""
        if path is None:
            return
        if str(path) == "-":
            raise UsageError(
                f"{flag} '-': babynn writes this output to a file (stdout holds the report); name "
                "a file, or /dev/stdout"
            )
        _check_writable(str(path))
        for what, other in [*self._inputs, *self._named]:
            if _same_file(Path(path), other):
                also = "also " if what.startswith("-") else ""
                raise UsageError(
                    f"{flag} '{path}' is {also}{what} '{other}': babynn does not write over "
                    "its own inputs or outputs; choose another name"
                )
        self._named.append((flag, Path(path)))

    def stage(
        self, path: str | Path | None, content: str | bytes | Callable[[], str | bytes]
    ) -> None:
        """`content` for `path`, written at `commit`; nothing when `path` is None (an output not
        asked for). Content given as a function is made only when it is written (a picture is
        drawn only when asked for)."""
        if path is None:
            return
        content = content() if callable(content) else content
        data = content.encode("utf-8") if isinstance(content, str) else content
        self._staged[Path(path)] = data

    def streamed(self, path: str | Path) -> BinaryIO:
        """A file to write `path`'s content into as it is made, for an output too large to hold
        (predictions of any number of rows): a temporary file beside it, renamed into place by
        `commit` with the other outputs, removed by `discard`; a FIFO or device is written
        through."""
        given = Path(path)
        real = given.resolve()
        if real.exists() and not stat.S_ISREG(real.stat().st_mode):
            with _reporting(given):
                handle = open(real, "wb")  # noqa: SIM115 (closed at commit or discard)
            self._streams.append((handle, None, real, given))
            return handle
        with _reporting(given):
            fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=".babynn-", suffix=".tmp")
        handle = os.fdopen(fd, "wb")
        self._streams.append((handle, tmp, real, given))
        return handle

    def discard(self) -> None:
        """Forget the streamed outputs: a failed command leaves no new file (nor a temporary)."""
        for handle, tmp, _, _ in self._streams:
            with contextlib.suppress(OSError):
                handle.close()
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        self._streams.clear()

    def _close_streams(self) -> list[tuple[str, Path, Path]]:
        """The streamed outputs closed (synced, with their permissions): (temporary, real, name)
        of each to rename."""
        ready = []
        for handle, tmp, real, given in self._streams:
            with _reporting(given):
                handle.flush()
                if tmp is not None:
                    os.fsync(handle.fileno())
                handle.close()
                if tmp is not None:
                    os.chmod(tmp, _mode_for(real))
                    ready.append((tmp, real, given))
        return ready

    def commit(self, stdout: Callable[[], None] | None = None) -> None:
        """Write every staged file, all or none (see the class), and `stdout` (what the command
        composed for standard output) between: the files are written to their temporaries
        first, then `stdout` is written, then the files are renamed into place. A failed write
        to stdout (a full disk, a closed descriptor) leaves no new file; a reader that left
        (`| head`) does not cost the files (BrokenPipeError is raised once they are in place).
        A FIFO or a device is opened first, and stdout written, while Ctrl-C and SIGTERM still
        act: opening a FIFO waits for its reader, a pipe for its reader to read, and a wait
        nobody ends must stay interruptible."""
        through: list[tuple[BinaryIO, Path, bytes]] = []
        temps: list[tuple[str, Path, Path]] = []  # (temporary, real file, name given)
        try:
            for path, data in self._staged.items():
                real = path.resolve()
                if real.exists() and not stat.S_ISREG(real.stat().st_mode):
                    with _reporting(path):
                        through.append((open(real, "wb"), path, data))  # noqa: SIM115
            with interrupts.deferred():
                temps += self._close_streams()
                for path, data in self._staged.items():
                    real = path.resolve()
                    if not any(given == path for _, given, _ in through):
                        temps.append((_temporary(real, path, data), real, path))
            left: BrokenPipeError | None = None
            if stdout is not None:
                try:
                    stdout()
                except BrokenPipeError as e:
                    left = e
            with interrupts.deferred():
                for handle, path, data in through:
                    with _reporting(path):
                        handle.write(data)
                        handle.flush()
                for tmp, real, path in temps:
                    with _reporting(path):
                        os.replace(tmp, real)
            if left is not None:
                raise left
        finally:
            for tmp, _, _ in temps:
                Path(tmp).unlink(missing_ok=True)
            self.discard()
            for handle, _, _ in through:
                with contextlib.suppress(OSError):
                    handle.close()
            self._staged.clear()


def _temporary(real: Path, path: Path, data: bytes) -> str:
    """`data` in a new temporary file beside `real`, synced, with the permissions `real` has (or
    the usual ones for a new file). Short name: the target's own may already be the longest the
    file system allows."""
    with _reporting(path):
        fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=".babynn-", suffix=".tmp")
    try:
        with _reporting(path), os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with _reporting(path):
            os.chmod(tmp, _mode_for(real))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _mode_for(real: Path) -> int:
    """The permissions a new version of `real` gets: the old file's, or the usual ones for a
    new file (mkstemp makes 0600)."""
    if real.exists():
        return stat.S_IMODE(real.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def _reporting(path: Path) -> Iterator[None]:
    """An OSError while writing `path` as babynn's one-line error."""
    try:
        yield
    except OSError as e:
        raise OutputError(f"cannot write '{path}': {e.strerror or e}") from None


def _check_writable(text: str) -> None:
    """Fail early when `text` cannot be written: a folder, no such folder, no permission."""
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        raise OutputError(f"cannot write '{text}': it is a directory")
    real = path.resolve()
    folder = real.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write '{path}': no folder '{path.parent}'")
    if not real.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write '{path}': permission denied in '{path.parent}'")
    if real.exists() and not os.access(real, os.W_OK):
        raise OutputError(f"cannot write '{path}': permission denied")


def _same_file(a: Path, b: Path) -> bool:
    """Whether two names reach one file (through links, or as the same path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()
