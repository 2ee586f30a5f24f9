"""--scheduler: the moments computed on a Dask cluster give the weights one machine gives.

A real scheduler and worker run as separate processes (`dask scheduler`, `dask worker`), started
once for the module; one test starts a LocalCluster through `--scheduler local`.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import DIABETES, NOTES, lstsq_solution, run, run_json
from test_stream import awkward_parts


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """The address of a scheduler with one single-threaded worker, both separate processes."""
    folder = tmp_path_factory.mktemp("dask")
    file = folder / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    started = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder,
        ),
        subprocess.Popen(
            [*dask, "worker", "--scheduler-file", str(file), "--nthreads", "1",
             "--no-dashboard", "--local-directory", str(folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder,
        ),
    ]  # fmt: skip
    try:
        from distributed import Client

        deadline = time.monotonic() + 60
        while not file.exists():
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.2)
        with Client(scheduler_file=str(file), timeout="30s") as c:
            c.wait_for_workers(1, timeout=60)
            address = c.scheduler.address
        yield address
    finally:
        for p in started:
            p.terminate()
        for p in started:
            p.wait(timeout=30)


def test_an_external_cluster_fits_what_one_machine_fits(in_tmp, monkeypatch, scheduler):
    import babynn_cli.cluster as cluster

    monkeypatch.setattr(cluster, "BLOCKSIZE", "64KB")  # many partitions, across three parts
    frame = awkward_parts(in_tmp / "parts", rows=20000)
    args = ("--lr", "0.5", "--tol", "0", "-e", "300")
    streamed = run_json("fit", "parts", *args, "--stream", "-o", "a.json")
    result = run("fit", "parts", *args, "--scheduler", scheduler, "--json", "-o", "b.json")
    assert result.exit_code == 0, result.stderr
    import json

    distributed = json.loads(result.stdout)
    np.testing.assert_allclose(distributed["weights"], streamed["weights"], rtol=1e-10)
    np.testing.assert_allclose(distributed["bias"], streamed["bias"], rtol=1e-10)
    assert distributed["optimum_loss"] == pytest.approx(streamed["optimum_loss"], rel=1e-10)
    assert distributed["final_loss"] == pytest.approx(streamed["final_loss"], rel=1e-10)
    # and the least-squares optimum is numpy's, whatever babynn did
    X, y = frame[["a", "b", "c"]].to_numpy(), frame["y"].to_numpy()
    design = np.column_stack([X - X.mean(axis=0), np.ones(len(X))])
    sol, *_ = np.linalg.lstsq(design, y - y.mean(), rcond=None)
    loss = float(np.mean((y - y.mean() - design @ sol) ** 2))
    assert distributed["optimum_loss"] == pytest.approx(loss, rel=1e-9)


def test_the_environment_names_the_scheduler(in_tmp, monkeypatch, scheduler):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", scheduler)
    report = run_json("sweep-lr", NOTES, "--num", "3", "--epochs", "50", "--scheduler", "env")
    local = run_json("sweep-lr", NOTES, "--num", "3", "--epochs", "50")
    for a, b in zip(local["rows"], report["rows"], strict=True):
        assert b["final_loss"] == pytest.approx(a["final_loss"], rel=1e-10)


def test_a_bad_cell_on_the_cluster_names_its_part_and_row(in_tmp, scheduler):
    awkward_parts(in_tmp / "parts", rows=3000)
    part = pd.read_csv(in_tmp / "parts" / "p1.csv")
    part["b"] = part["b"].astype(object)
    part.loc[41, "b"] = "oops"
    part.to_csv(in_tmp / "parts" / "p1.csv", index=False)
    result = run("fit", "parts", "--scheduler", scheduler, "-o", "m.json")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: 'parts/p1.csv': column 'b' is not a number: row 42 holds 'oops' (if it marks a "
        "missing cell, pass --na-values oops; --categorical b reads the column as categories, "
        "--exclude b leaves it out)"
    ]
    assert not (in_tmp / "m.json").exists()


def test_a_local_cluster_fits_and_leaves_nothing_running(in_tmp, monkeypatch):
    import tempfile

    import psutil

    scratch = in_tmp / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the workers' files go
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    report = run_json("fit", DIABETES, "--scheduler", "local", "-o", "m.json")
    assert list(scratch.iterdir()) == []  # no scratch space, no lock file left
    *_, loss = lstsq_solution(DIABETES)
    assert report["optimum_loss"] == pytest.approx(loss, rel=1e-10)
    whole = run_json("fit", DIABETES, "-o", "w.json")
    np.testing.assert_allclose(report["weights"], whole["weights"], rtol=1e-10)

    def left() -> list[list[str]]:
        return [
            p.cmdline()
            for p in psutil.Process().children(recursive=True)
            if p.pid not in before and p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        ]

    for _ in range(100):  # the workers may take a moment to exit once told
        if not left():
            break
        time.sleep(0.1)
    # multiprocessing's resource tracker lives as long as its parent (this test process), by design
    assert [c for c in left() if "multiprocessing.resource_tracker" not in " ".join(c)] == []


def test_an_unreachable_scheduler_fails_with_one_line(in_tmp, monkeypatch):
    import babynn_cli.cluster as cluster

    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 2)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run("fit", NOTES, "--scheduler", f"tcp://127.0.0.1:{port}", "-o", "m.json")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")
    assert not (in_tmp / "m.json").exists()


def test_without_dask_the_flag_names_the_extra(in_tmp, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    result = run("fit", NOTES, "--scheduler", "local")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --scheduler needs Dask, which is not installed: pip install 'babynn[dask]'\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--hidden", "4"), "Error: --scheduler trains the affine model at full batch"),
        (("-b", "8"), "Error: --scheduler trains the affine model at full batch"),
        (("--val-frac", "0.2"), "Error: --scheduler trains the affine model at full batch"),
    ],
)
def test_what_a_cluster_cannot_train_says_so(in_tmp, args, message):
    result = run("fit", NOTES, "--scheduler", "local", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)


def test_env_without_the_variable(in_tmp, monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    result = run("fit", NOTES, "--scheduler", "env")
    assert result.exit_code == 2
    assert result.stderr == "Error: --scheduler env: DASK_SCHEDULER_ADDRESS is not set\n"


def test_parquet_parts_on_a_cluster(in_tmp, scheduler):
    frame = pd.read_csv(DIABETES)
    (in_tmp / "pq").mkdir()
    for k, lo in enumerate(range(0, 442, 100)):
        frame.iloc[lo : lo + 100].to_parquet(f"pq/p{k}.parquet", index=False)
    *_, loss = lstsq_solution(DIABETES)
    report = run_json("fit", "pq", "--scheduler", scheduler, "-o", "m.json")
    streamed = run_json("fit", "pq", "--stream", "-o", "s.json")
    assert report["optimum_loss"] == pytest.approx(loss, rel=1e-10)
    np.testing.assert_allclose(report["weights"], streamed["weights"], rtol=1e-10)


def test_predict_on_a_cluster_writes_what_one_machine_writes(in_tmp, monkeypatch, scheduler):
    import babynn_cli.cluster as cluster

    monkeypatch.setattr(cluster, "BLOCKSIZE", "16KB")  # many partitions: their order must hold
    awkward_parts(in_tmp / "parts", rows=4000)
    assert run("fit", "parts", "-e", "50", "-q", "-o", "affine.json").exit_code == 0
    hidden = ("--hidden", "4", "-e", "5", "--lr", "1e-7", "-q", "-o", "net.json")
    assert run("fit", "parts", *hidden).exit_code == 0
    for model in ("affine.json", "net.json"):
        here = run("predict", model, "parts", "-o", "here.csv")
        there = run("predict", model, "parts", "--scheduler", scheduler, "-o", "there.csv")
        assert there.exit_code == 0, there.stderr
        assert (in_tmp / "there.csv").read_bytes() == (in_tmp / "here.csv").read_bytes()
        assert there.stderr == here.stderr  # the same MSE and R² line
    pd.read_csv(in_tmp / "parts" / "p0.csv").drop(columns=["b"]).to_csv("nob.csv", index=False)
    result = run("predict", "affine.json", "nob.csv", "--scheduler", scheduler)
    assert result.exit_code == 1
    assert result.stderr == "Error: 'nob.csv' lacks the model's feature column(s): b\n"


def test_a_scheduler_without_workers_says_so(in_tmp, monkeypatch, tmp_path):
    import babynn_cli.cluster as cluster

    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 2)
    file = tmp_path / "alone.json"
    alone = subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    try:
        import json

        deadline, address = time.monotonic() + 60, None
        while address is None:  # the file appears, then holds the address
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.2)
            with contextlib.suppress(OSError, ValueError, KeyError):
                address = json.loads(file.read_text())["address"]
        result = run("fit", NOTES, "--scheduler", address, "-o", "m.json")
        assert result.exit_code == 1
        assert result.stderr == (
            f"Error: the Dask scheduler at {address} has no workers (none joined within 2 s): "
            f"start one with: dask worker {address}\n"
        )
    finally:
        alone.terminate()
        alone.wait(timeout=30)


def test_ctrl_c_stops_a_cluster_run_and_leaves_nothing_running(in_tmp):
    import signal

    import psutil

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300_000, 5))
    frame = pd.DataFrame(np.column_stack([X, X.sum(axis=1)]), columns=[*"abcde", "y"])
    frame.to_csv("big.csv", index=False)
    run_ = subprocess.Popen(
        [sys.executable, "-m", "babynn_cli", "fit", "big.csv", "--scheduler", "local"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=in_tmp,
    )  # fmt: skip
    parent = psutil.Process(run_.pid)
    deadline = time.monotonic() + 60
    while len(parent.children(recursive=True)) < 2:  # the workers have started
        assert time.monotonic() < deadline and run_.poll() is None, run_.stderr
        time.sleep(0.1)
    started = parent.children(recursive=True)
    run_.send_signal(signal.SIGINT)
    _, err = run_.communicate(timeout=60)
    assert run_.returncode == 130
    assert err == "Interrupted.\n"
    time.sleep(1)
    assert [p.pid for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert not (in_tmp / "model.json").exists()


def test_dropna_on_a_cluster_when_the_first_row_has_a_hole(in_tmp, scheduler):
    frame = pd.read_csv(NOTES)
    frame.loc[[0, 57], "x1"] = np.nan  # the first row too: no shift may carry a NaN
    frame.to_csv("holes.csv", index=False)
    here = run_json("fit", "holes.csv", "--dropna", "-o", "a.json")
    there = run_json("fit", "holes.csv", "--dropna", "--scheduler", scheduler, "-o", "b.json")
    assert there["n_train"] == here["n_train"] == 198
    np.testing.assert_allclose(there["weights"], here["weights"], rtol=1e-10)
    assert there["optimum_loss"] == pytest.approx(here["optimum_loss"], rel=1e-10)


def test_a_cluster_that_loses_its_workers_fails_with_one_line(in_tmp, monkeypatch, tmp_path):
    """The only worker dies inside a task (no nanny to restart it): one line, no hang."""
    import importlib
    import json
    import os

    import babynn_cli.cluster as cluster

    # a partition function that kills its worker, importable by the driver, scheduler and worker
    (tmp_path / "babynn_test_killer.py").write_text(
        "import os\n\ndef die(*a, **k):\n    os._exit(1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    killer = importlib.import_module("babynn_test_killer")
    monkeypatch.setattr(cluster, "_partition_sums", killer.die)
    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 2)
    file = tmp_path / "lossy.json"
    dask = [sys.executable, "-m", "dask"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    quiet = {
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "cwd": tmp_path,
        "env": env,
    }
    procs = [
        subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                          "--no-dashboard", "--scheduler-file", str(file)], **quiet),
        subprocess.Popen([*dask, "worker", "--scheduler-file", str(file), "--nthreads", "1",
                          "--no-nanny", "--no-dashboard"], **quiet),
    ]  # fmt: skip
    try:
        deadline, address = time.monotonic() + 60, None
        while address is None:
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.2)
            with contextlib.suppress(OSError, ValueError, KeyError):
                address = json.loads(file.read_text())["address"]
        result = run("fit", NOTES, "--scheduler", address, "-o", "m.json")
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: the Dask cluster has had no worker for 2 s (they died or left): start "
            "workers and run again\n"
        )
        assert not (in_tmp / "m.json").exists()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


@pytest.mark.parametrize("command", ["fit", "sweep-lr", "compare", "predict"])
def test_help_names_the_extra_the_cluster_needs(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "--scheduler" in result.stdout and "'babynn[dask]'" in result.stdout


@pytest.mark.parametrize("command", [("fit",), ("predict", "m.json")])
def test_a_sample_must_be_written_out_for_the_workers(in_tmp, command):
    assert run("fit", NOTES, "-q", "-o", "m.json").exit_code == 0
    result = run(*command, "sample:notes_example", "--scheduler", "local")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --scheduler reads DATA on the workers: write the sample to a file first "
        "(babynn sample notes_example -o notes_example.csv)\n"
    )


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("", "Error: --scheduler needs an address (tcp://host:8786), 'env' or 'local'\n"),
        ("  ", "Error: --scheduler needs an address (tcp://host:8786), 'env' or 'local'\n"),
        ("garbage://x:1", "Error: --scheduler 'garbage://x:1' is not a scheduler's address: "),
        ("tcp://127.0.0.1:port", "Error: --scheduler 'tcp://127.0.0.1:port' is not a scheduler's"),
    ],
)
@pytest.mark.parametrize("command", [("fit",), ("predict", "m.json")])
def test_what_is_not_an_address_is_a_usage_error(in_tmp, command, address, message):
    assert run("fit", NOTES, "-q", "-o", "m.json").exit_code == 0
    result = run(*command, NOTES, "--scheduler", address)
    assert result.exit_code == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


def test_dropped_rows_are_counted_and_every_part_checked_on_a_cluster(in_tmp, scheduler):
    frame = pd.read_csv(NOTES)
    frame.loc[[3, 7], "x1"] = np.nan
    frame.to_csv("holes.csv", index=False)
    result = run("fit", "holes.csv", "--dropna", "--scheduler", scheduler, "-o", "m.json")
    assert result.exit_code == 0 and "--dropna dropped 2 row(s)" in result.stderr
    (in_tmp / "parts").mkdir()
    frame[:100].to_csv("parts/a.csv", index=False)
    frame[100:].drop(columns="y").to_csv("parts/b.csv", index=False)  # a part without the target
    lacking = run("fit", "parts", "--dropna", "--scheduler", scheduler, "-o", "p.json")
    assert lacking.exit_code == 1 and "every part must share the header" in lacking.stderr
    assert "internal error" not in lacking.stderr
    rng = np.random.default_rng(0)
    lines = ["x0,x1,y"] + [
        f"{i},{a},{b},{2 * a - b}" for i, (a, b) in enumerate(rng.normal(size=(50, 2)))
    ]
    (in_tmp / "lead.csv").write_text("\n".join(lines) + "\n")  # an index field with no name
    shifted = run("fit", "lead.csv", "--scheduler", scheduler, "-o", "l.json")
    assert shifted.exit_code == 1 and "more fields than its header" in shifted.stderr


def test_local_workers_keep_python_warnings_off_stderr(capfd):
    """The workers of --scheduler local share babynn's stderr: they start with Python's warnings
    off, so -q stays quiet and an error stays one line."""
    from babynn_cli import cluster

    def noisy() -> int:
        import warnings

        warnings.warn("a worker's warning", stacklevel=1)
        return 1

    with cluster.client("local") as c:
        assert c.submit(noisy, pure=False).result() == 1
    assert "a worker's warning" not in capfd.readouterr().err
