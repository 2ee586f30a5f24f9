"""Nothing lost: every output is checked before the work and written whole, together, or not at all;
no input and no other output is ever written over; signals and closed pipes cost no file."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import NOTES, run

from babynn_cli import interrupts, outputs
from babynn_cli.errors import OutputError

BIN = Path(sys.executable).parent / "babynn"


def copy_notes(folder: Path) -> Path:
    target = folder / "d.csv"
    target.write_bytes(NOTES.read_bytes())
    return target


def test_a_fifo_output_is_written_through_not_replaced(in_tmp):
    fifo = in_tmp / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    result = run("fit", NOTES, "-q", "-o", fifo)
    reader.join(timeout=30)
    assert result.exit_code == 0, result.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a pipe
    assert got and got[0].startswith(b"{") and b'"babynn-model"' in got[0]


def test_a_symlinked_output_writes_its_target_and_stays_a_link(in_tmp):
    (in_tmp / "real.json").write_text("old")
    (in_tmp / "link.json").symlink_to("real.json")
    assert run("fit", NOTES, "-q", "-o", "link.json").exit_code == 0
    assert (in_tmp / "link.json").is_symlink()
    assert '"babynn-model"' in (in_tmp / "real.json").read_text()


def test_an_existing_output_keeps_its_permissions(in_tmp):
    (in_tmp / "m.json").write_text("old")
    os.chmod(in_tmp / "m.json", 0o600)
    assert run("fit", NOTES, "-q", "-o", "m.json").exit_code == 0
    assert stat.S_IMODE((in_tmp / "m.json").stat().st_mode) == 0o600
    assert '"babynn-model"' in (in_tmp / "m.json").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("fit", "d.csv", "-o", "d.csv"), "--output 'd.csv' is the DATA file 'd.csv'"),
        (
            ("fit", "d.csv", "-o", "m.json", "--history", "m.json"),
            "--history 'm.json' is also --output",
        ),
        (("fit", "d.csv", "-o", "alias.csv"), "--output 'alias.csv' is the DATA file 'd.csv'"),
        (("predict", "m0.json", "d.csv", "-o", "m0.json"), "--output 'm0.json' is the MODEL file"),
        (("sweep-lr", "d.csv", "--plot", "d.csv"), "--plot 'd.csv' is the DATA file 'd.csv'"),
        (("compare", "d.csv", "--model", "m0.json", "-o", "m0.json"), "is also --model 'm0.json'"),
        (("fit", "d.csv", "--warm-start", "m0.json", "-o", "m0.json"), "is also --warm-start"),
    ],
)
def test_no_output_over_an_input_or_another_output(in_tmp, args, message):
    data = copy_notes(in_tmp)
    (in_tmp / "alias.csv").symlink_to("d.csv")
    run("fit", "d.csv", "-q", "-o", "m0.json")
    before = {p.name: p.read_bytes() for p in in_tmp.iterdir() if p.is_file()}
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert {p.name: p.read_bytes() for p in in_tmp.iterdir() if p.is_file()} == before
    assert data.read_bytes() == NOTES.read_bytes()


def test_a_failing_second_output_leaves_no_new_first_output(in_tmp, monkeypatch):
    real = outputs._temporary

    def full_disk(target, path, data):
        if Path(path).name == "h.csv":
            raise OutputError(f"cannot write '{path}': No space left on device")
        return real(target, path, data)

    monkeypatch.setattr(outputs, "_temporary", full_disk)
    result = run("fit", NOTES, "-o", "m.json", "--history", "h.csv")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: cannot write 'h.csv': No space left on device"
    )
    assert sorted(p.name for p in in_tmp.iterdir()) == []  # no model, no temporary
    assert result.stdout == ""  # nothing shown as if it had worked


def test_output_names_are_checked_before_any_work(in_tmp):
    result = run("fit", NOTES, "-o", "newdir/")
    assert (
        result.exit_code == 1
        and result.stderr == "Error: cannot write 'newdir/': it is a directory\n"
    )
    result = run("fit", NOTES, "-o", "no/such/m.json")
    assert (
        result.exit_code == 1
        and result.stderr == "Error: cannot write 'no/such/m.json': no folder 'no/such'\n"
    )


def test_the_longest_legal_output_name_works(in_tmp):
    name = "m" * 250 + ".json"
    assert run("fit", NOTES, "-q", "-o", name).exit_code == 0
    assert (in_tmp / name).exists() and len(list(in_tmp.iterdir())) == 1


def test_signals_wait_while_files_are_written(in_tmp):
    files = outputs.Outputs()
    files.name("-o", in_tmp / "a.json")
    files.stage(in_tmp / "a.json", "x" * 10_000)
    with pytest.raises(interrupts.Terminated), interrupts.deferred():
        os.kill(os.getpid(), signal.SIGTERM)  # held back ...
        files.commit()  # ... while the file is written whole
    assert (in_tmp / "a.json").read_text() == "x" * 10_000
    assert [p.name for p in in_tmp.iterdir()] == ["a.json"]


def _start(args, cwd):
    env = {**os.environ, "NO_COLOR": "1", "BABYNN_COMPILED": "0"}  # no compiling to wait through
    return subprocess.Popen(
        [str(BIN), *map(str, args)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, text=True,
    )  # fmt: skip


def test_sigterm_during_training_stops_like_ctrl_c_and_saves(tmp_path):
    proc = _start(
        ["fit", NOTES, "-b", 1, "--epochs", 10**6, "--tol", 0, "--lr", 0.001, "-o", "m.json"],
        tmp_path,
    )
    deadline = time.monotonic() + 60  # the header is printed once the data is loaded
    while not proc.stderr.readline().startswith("method:"):
        assert time.monotonic() < deadline and proc.poll() is None, "fit did not start"
    time.sleep(1)  # into the epochs
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]  # the last word is the interruption's, named
    assert last.startswith("interrupted by SIGTERM during epoch") and "saved in m.json" in last
    assert "Ctrl-C" not in stderr
    saved = (tmp_path / "m.json").read_text()
    assert '"interrupted": true' in saved
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary left


def test_sighup_stops_a_streamed_run_and_leaves_no_row_copy(tmp_path):
    """A closed terminal (SIGHUP) stops the run as Ctrl-C does: the weights so far are saved,
    and --stream's binary copy of the rows is removed with the command (exit 129)."""
    (tmp_path / "cache").mkdir()
    args = ["fit", NOTES, "--stream", "--cache", "cache", "-b", 1, "--epochs", 10**6, "--tol", 0,
            "--lr", 0.001, "-o", "m.json"]  # fmt: skip
    proc = _start(args, tmp_path)
    deadline = time.monotonic() + 60
    while not proc.stderr.readline().startswith("method:"):
        assert time.monotonic() < deadline and proc.poll() is None, "fit did not start"
    assert list((tmp_path / "cache").iterdir())  # the row copy, while it trains
    time.sleep(1)
    proc.send_signal(signal.SIGHUP)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 129, stderr
    assert "Traceback" not in stderr and "interrupted by SIGHUP" in stderr
    assert list((tmp_path / "cache").iterdir()) == []
    assert '"interrupted": true' in (tmp_path / "m.json").read_text()


def test_a_fifo_output_nobody_reads_can_still_be_interrupted(tmp_path):
    """Opening a FIFO waits for its reader; that wait must not hold SIGTERM back."""
    os.mkfifo(tmp_path / "out")
    proc = _start(["fit", NOTES, "-q", "-o", "out"], tmp_path)
    time.sleep(2)  # trained, and waiting for a reader
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "Traceback" not in stderr


def test_a_reader_that_closes_the_pipe_costs_no_file(tmp_path):
    proc = subprocess.Popen(
        [str(BIN), "fit", NOTES, "--json", "-o", "m.json"], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    proc.stdout.read(1)  # like `| head -c 1`
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode in (0, 141)  # 141: the pipe closed before all of it was written
    assert "Traceback" not in stderr and "Error" not in stderr
    assert '"babynn-model"' in (tmp_path / "m.json").read_text()


@pytest.mark.parametrize("stdout", ["full", "closed"])
@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_stdout_that_cannot_be_written_leaves_the_old_files(tmp_path, stdout, unbuffered):
    """A full disk (/dev/full) or a closed descriptor (>&-) on stdout: one line, exit 1, and the
    files the run would have replaced keep their old bytes; so for predict's streamed rows, and
    with Python's unbuffered stdout (PYTHONUNBUFFERED=1), whose short writes are not dropped."""
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    (tmp_path / "m.json").write_text("old")
    assert (
        subprocess.run([str(BIN), "fit", NOTES, "-q", "-o", "p.json"], cwd=tmp_path).returncode == 0
    )
    for args in (["fit", NOTES, "--json", "-o", "m.json"], ["predict", "p.json", NOTES]):
        with open(os.devnull if stdout == "closed" else "/dev/full", "wb") as sink:
            done = subprocess.run(
                [str(BIN), *args], cwd=tmp_path, env=env, capture_output=False,
                stdout=subprocess.DEVNULL if stdout == "closed" else sink, stderr=subprocess.PIPE,
                pass_fds=(), close_fds=True,
                preexec_fn=(lambda: os.close(1)) if stdout == "closed" else None,
            )  # fmt: skip
        last = done.stderr.decode().strip().splitlines()[-1]
        assert done.returncode == 1, done.stderr
        assert last.startswith("Error: cannot write to standard output: "), last
        assert done.stderr.decode().count("Error") == 1
        assert (tmp_path / "m.json").read_text() == "old"
        assert not list(tmp_path.glob(".babynn-*"))


def test_a_reader_that_leaves_stderr_costs_no_file(tmp_path):
    """`babynn fit … 2>&1 >/dev/null | head -1`: the words on stderr are a person's; once nobody
    reads them the run goes on, quietly, and its model file is written (it exited before)."""
    proc = subprocess.Popen(
        [str(BIN), "fit", NOTES, "-o", "m.json", "--lr", "0.1", "--epochs", "500"], cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    proc.stderr.read(10)  # like `| head -c 10`
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0
    assert '"babynn-model"' in (tmp_path / "m.json").read_text()


def test_an_interrupt_while_numba_compiles_is_acted_on_afterwards():
    """numba's compiler swallows a Ctrl-C that lands inside it (printing a traceback and going
    on): babynn holds it back while compiling and raises it once the compiler is done."""
    from babynn_cli.core.signals import held

    reached = False
    with pytest.raises(KeyboardInterrupt), held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # a handler that raised would have raised by now
        reached = True
    assert reached
