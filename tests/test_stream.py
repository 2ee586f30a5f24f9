"""--stream: data read in blocks, never whole, trains to what the in-memory run gives."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import DIABETES, NOTES, lstsq_solution, run, run_json


def awkward_parts(folder, rows=5003, parts=3):
    """A column with mean 10⁶ and spread 1, blocks that do not divide the rows, several parts."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(rows, 3)) * [1.0, 3.0, 0.5] + [1e6, -5.0, 2.0]
    y = X @ [2.0, -1.0, 4.0] + 0.1 * rng.normal(size=rows)
    frame = pd.DataFrame(np.column_stack([X, y]), columns=["a", "b", "c", "y"])
    folder.mkdir()
    edges = np.linspace(0, rows, parts + 1).astype(int)
    for i in range(parts):
        frame.iloc[edges[i] : edges[i + 1]].to_csv(folder / f"p{i}.csv", index=False)
    return frame


@pytest.mark.parametrize("source", ["diabetes", "parts"])
def test_a_streamed_fit_is_the_in_memory_fit(in_tmp, monkeypatch, source):
    import babynn_cli.data.stream as data

    monkeypatch.setattr(data, "STREAM_BLOCK_ROWS", 100)  # many blocks, a short last one
    if source == "parts":
        awkward_parts(in_tmp / "parts")
        path, args = in_tmp / "parts", ("--lr", "0.5", "--tol", "0", "-e", "300")
    else:
        path, args = DIABETES, ()
    whole = run_json("fit", path, *args, "-o", "a.json")
    streamed = run_json("fit", path, *args, "--stream", "-o", "b.json")
    np.testing.assert_allclose(streamed["weights"], whole["weights"], rtol=1e-10)
    np.testing.assert_allclose(streamed["bias"], whole["bias"], rtol=1e-10)
    assert streamed["final_loss"] == pytest.approx(whole["final_loss"], rel=1e-12)
    assert streamed["optimum_loss"] == pytest.approx(whole["optimum_loss"], rel=1e-12)
    assert streamed["r2"] == pytest.approx(whole["r2"], rel=1e-12)
    assert streamed["verdict"] == whole["verdict"] and streamed["epochs_run"] == whole["epochs_run"]


def test_streamed_sweep_and_compare_are_the_in_memory_ones(in_tmp):
    for command, extra in (("sweep-lr", ("--num", "4")), ("compare", ("-b", "full"))):
        whole = run_json(command, NOTES, *extra, "--epochs", 200)
        streamed = run_json(command, NOTES, *extra, "--epochs", 200, "--stream")
        for a, b in zip(whole["rows"], streamed["rows"], strict=True):
            assert b["verdict"] == a["verdict"]
            assert b["final_loss"] == pytest.approx(a["final_loss"], rel=1e-12)


def test_dropna_and_bad_cells_when_streaming(in_tmp):
    frame = pd.read_csv(NOTES)
    frame.loc[[3, 150], "x1"] = np.nan
    frame.to_csv("holes.csv", index=False)
    whole = run_json("fit", "holes.csv", "--dropna", "-o", "a.json")
    streamed = run_json("fit", "holes.csv", "--dropna", "--stream", "-o", "b.json")
    assert streamed["n_train"] == whole["n_train"] == 198
    np.testing.assert_allclose(streamed["weights"], whole["weights"], rtol=1e-10)
    result = run("fit", "holes.csv", "--stream")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: column 'x1' has a missing value in row 4")


def test_standard_input_cannot_stream(in_tmp):
    result = run("fit", "-", "--stream", input=NOTES.read_text())
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --stream reads DATA again at each pass: it needs files, not stdin\n"
    )


def test_streamed_minibatches_beside_a_validation_split(in_tmp, monkeypatch, descent_path):
    import babynn_cli.core.rows as rows_module
    import babynn_cli.data.stream as data
    from babynn_cli.core.problem import make_problem, make_streamed_problem

    args = ("--val-frac", "0.25", "-b", "16", "-e", "12", "--lr", "0.01", "--tol", "0")
    whole = run_json("fit", DIABETES, *args, "-o", "a.json")
    streamed = run_json("fit", DIABETES, *args, "--stream", "-o", "b.json")
    np.testing.assert_allclose(streamed["weights"], whole["weights"], rtol=1e-10)
    assert streamed["val_loss"] == pytest.approx(whole["val_loss"], rel=1e-10)
    # with blocks smaller than the data, the training rows are still read back exactly
    monkeypatch.setattr(rows_module, "SHUFFLE_BLOCK_ROWS", 40)
    monkeypatch.setattr(data, "STREAM_BLOCK_ROWS", 64)
    source = data.stream(str(DIABETES))
    streamed_problem = make_streamed_problem(
        source.blocks, row_file=source.row_file, val_frac=0.25, seed=3
    )
    frame = pd.read_csv(DIABETES)
    X, Y = frame.iloc[:, :-1].to_numpy(), frame.iloc[:, -1:].to_numpy()
    in_memory = make_problem(X, Y, val_frac=0.25, seed=3)
    train = streamed_problem.train
    assert train.n_rows == in_memory.train.n_rows == 332  # 442 - round(0.25·442)
    idx = train.order(np.random.default_rng(2))
    assert sorted(idx) == list(range(332))
    np.testing.assert_array_equal(train.targets(idx), in_memory.train.Y[idx])
    np.testing.assert_allclose(train.rows(idx), in_memory.train.rows(idx), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "args",
    [
        ("-b", "16", "--lr", "0.05"),  # minibatches from the copy, in the in-memory order
        ("--lr", "0.1", "--val-frac", "0.2"),  # full batch block by block, a held-out split
    ],
)
def test_a_streamed_network_is_the_in_memory_one(in_tmp, monkeypatch, args):
    import babynn_cli.data.stream as data

    monkeypatch.setattr(data, "STREAM_BLOCK_ROWS", 128)  # full-batch gradients over 8 blocks
    common = ("--hidden", "8", "--activation", "tanh", "-e", "25", "--tol", "0", *args)
    whole = run_json("fit", "sample:nonlinear", *common, "-o", "a.json")
    streamed = run_json("fit", "sample:nonlinear", *common, "--stream", "-o", "b.json")
    assert streamed["kind"] == "mlp" and streamed["epochs_run"] == 25
    for a, b in zip(whole["layers"], streamed["layers"], strict=True):
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        [h["train_loss"] for h in streamed["history"]],
        [h["train_loss"] for h in whole["history"]],
        rtol=1e-10,
    )
    assert streamed["final_loss"] == pytest.approx(whole["final_loss"], rel=1e-10)
    np.testing.assert_allclose(streamed["r2"], whole["r2"], rtol=1e-10)
    if "--val-frac" in args:
        assert streamed["val_loss"] == pytest.approx(whole["val_loss"], rel=1e-10)
        np.testing.assert_allclose(streamed["val_r2"], whole["val_r2"], rtol=1e-10)


def test_a_streamed_validation_split_is_the_in_memory_one(in_tmp, monkeypatch):
    import babynn_cli.data.stream as data

    monkeypatch.setattr(data, "STREAM_BLOCK_ROWS", 50)  # the held-out rows span blocks
    args = ("--val-frac", "0.2", "--early-stopping", "-e", "300", "--seed", "4")
    whole = run_json("fit", DIABETES, *args, "-o", "a.json")
    streamed = run_json("fit", DIABETES, *args, "--stream", "-o", "b.json")
    assert (
        (streamed["n_train"], streamed["n_val"]) == (whole["n_train"], whole["n_val"]) == (354, 88)
    )
    np.testing.assert_allclose(streamed["weights"], whole["weights"], rtol=1e-10)
    for key in ("final_loss", "val_loss", "optimum_loss"):
        assert streamed[key] == pytest.approx(whole[key], rel=1e-12)
    np.testing.assert_allclose(streamed["val_r2"], whole["val_r2"], rtol=1e-12)
    assert streamed["best_epoch"] == whole["best_epoch"]
    # a saved model scored on the same held-out rows, both ways
    compared = [
        run_json("compare", DIABETES, "-b", "full", "--val-frac", "0.2", "--seed", "4",
                 "--model", "a.json", *extra)
        for extra in ((), ("--stream",))
    ]  # fmt: skip
    for a, b in zip(compared[0]["rows"], compared[1]["rows"], strict=True):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-12)


def test_each_pass_says_what_it_read(in_tmp):
    result = run("fit", NOTES, "--stream", "-o", "m.json")
    passes = [line for line in result.stderr.splitlines() if line.startswith("stream pass")]
    assert [p.split(":")[0] for p in passes] == ["stream pass 1", "stream pass 2"]
    assert all("200 rows in" in p and "rows/s" in p for p in passes)
    header = f"{NOTES} (streamed: read in blocks, never whole): 200 training rows"
    assert header in result.stderr
    assert "streamed" not in run("fit", NOTES, "-o", "w.json").stderr  # only when it is


def test_the_second_pass_reads_a_binary_cache_that_is_removed_afterwards(in_tmp, monkeypatch):
    import tempfile

    scratch = in_tmp / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    result = run("fit", NOTES, "--stream", "-o", "m.json")
    assert result.exit_code == 0, result.stderr
    import gc

    gc.collect()
    assert list(scratch.iterdir()) == []  # the cache of the first pass is gone


def test_parquet_sources_read_as_csv_does(in_tmp):
    frame = pd.read_csv(DIABETES)
    frame.to_parquet("whole.parquet", index=False)
    (in_tmp / "pq").mkdir()
    frame.iloc[:150].to_parquet("pq/a.parquet", index=False)
    frame.iloc[150:].to_parquet("pq/b.parquet", index=False)
    *_, loss = lstsq_solution(DIABETES)
    for source, extra in (("whole.parquet", ()), ("pq", ()), ("pq", ("--stream",))):
        report = run_json("fit", source, *extra, "-o", "m.json")
        assert report["n_train"] == 442
        assert report["optimum_loss"] == pytest.approx(loss, rel=1e-10)
    predicted = run("predict", "m.json", "pq")
    assert predicted.exit_code == 0, predicted.stderr
    assert len(predicted.stdout.splitlines()) == 443  # a header and one line a row


def test_a_bad_cell_in_a_parquet_part_names_the_part_and_row(in_tmp):
    frame = pd.read_csv(NOTES)
    (in_tmp / "pq").mkdir()
    frame.iloc[:100].to_parquet("pq/a.parquet", index=False)
    tail = frame.iloc[100:].copy()
    tail.loc[tail.index[6], "x1"] = np.nan
    tail.to_parquet("pq/b.parquet", index=False)
    for extra in ((), ("--stream",)):
        result = run("fit", "pq", *extra, "-o", "m.json")
        assert result.exit_code == 1
        assert result.stderr.startswith(
            "Error: 'pq/b.parquet': column 'x1' has a missing value in row 7"
        ), result.stderr


def test_parquet_without_pyarrow_names_the_extra(in_tmp, monkeypatch):
    pd.read_csv(NOTES).to_parquet("n.parquet", index=False)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    result = run("fit", "n.parquet")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: reading Parquet needs pyarrow, which is not installed: pip install 'babynn[dask]'\n"
    )


def test_a_long_pass_says_how_far_it_got_in_logs(in_tmp, monkeypatch):
    import babynn_cli.data.stream as data
    import babynn_cli.report.console as report

    monkeypatch.setattr(report, "PLAIN_LINE_EVERY", 0.0)  # a line for every block
    monkeypatch.setattr(data, "STREAM_BLOCK_ROWS", 50)
    result = run("fit", NOTES, "--stream", "-o", "m.json")
    assert result.exit_code == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if "rows read" in line]
    read = [int(line.split(": ")[1].split(" rows")[0].replace(",", "")) for line in progress]
    assert read == [50, 100, 150, 200, 50, 100, 150, 200]  # two passes, block by block


@pytest.mark.parametrize("batch", ["1", "32"])
def test_streamed_minibatches_are_the_in_memory_ones_when_one_block_holds_the_data(in_tmp, batch):
    args = ("-b", batch, "-e", "15", "--tol", "0", "--lr", "0.01")
    whole = run_json("fit", DIABETES, *args, "-o", "a.json")
    streamed = run_json("fit", DIABETES, *args, "--stream", "-o", "b.json")
    np.testing.assert_allclose(streamed["weights"], whole["weights"], rtol=1e-10)
    np.testing.assert_allclose(
        [h["train_loss"] for h in streamed["history"]],
        [h["train_loss"] for h in whole["history"]],
        rtol=1e-10,
    )


def test_streamed_rows_are_shuffled_in_blocks_and_read_back_exactly(in_tmp, monkeypatch):
    import babynn_cli.core.rows as rows_module
    import babynn_cli.data.stream as data
    from babynn_cli.core.problem import make_streamed_problem

    monkeypatch.setattr(rows_module, "SHUFFLE_BLOCK_ROWS", 30)
    monkeypatch.setattr(data, "STREAM_BLOCK_ROWS", 17)
    source = data.stream(str(NOTES))
    problem = make_streamed_problem(source.blocks, row_file=source.row_file)
    train = problem.train
    order = train.order(np.random.default_rng(5))
    assert sorted(order) == list(range(200))  # every row once
    visited, at = [], 0
    while at < 200:  # the order is whole blocks, one after another, in some order
        block = int(order[at]) // 30
        size = 30 if block < 6 else 20  # rows 180–199: the short last block
        assert set(order[at : at + size] // 30) == {block}
        visited.append(block)
        at += size
    assert sorted(visited) == list(range(7)) and visited != list(range(7))
    frame = pd.read_csv(NOTES)
    X, Y = frame[["x0", "x1", "x2"]].to_numpy(), frame[["y"]].to_numpy()
    idx = np.random.default_rng(1).permutation(200)[:64]  # rows from every block, any order
    np.testing.assert_array_equal(train.targets(idx), Y[idx])
    np.testing.assert_allclose(train.rows(idx), (X[idx] - train.mean) / train.scale, rtol=1e-15)


def test_the_cache_folder_is_chosen_and_cleaned(in_tmp):
    (in_tmp / "cache").mkdir()
    report = run_json("fit", NOTES, "--stream", "--cache", "cache", "-b", "8", "-o", "m.json")
    assert report["n_train"] == 200
    assert list((in_tmp / "cache").iterdir()) == []  # the copy is gone with the command
    result = run("fit", NOTES, "--cache", "cache")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --cache is where --stream keeps its copy of the rows")
    result = run("fit", NOTES, "--stream", "--cache", "nowhere", "-o", "m2.json")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: cannot keep the stream's cache in 'nowhere': No such file or directory\n"
    )


def test_a_fifo_cannot_stream_and_says_so_without_waiting(in_tmp):
    """--stream reads DATA at each pass; a FIFO's second pass would wait for a writer for ever.
    It is refused before DATA is opened (nothing here writes to the FIFO)."""
    import os

    os.mkfifo(in_tmp / "pipe")
    result = run("fit", "pipe", "--stream", "-o", "m.json")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: 'pipe' is a pipe or a device, which can be read only")


def test_a_row_copy_that_cannot_be_opened_never_stops_the_parse(tmp_path, monkeypatch):
    """No inode left (or no space) for the row copy: the parse goes on past the writer's queue,
    the copy is not used, and minibatches are refused in one line naming why."""
    import errno
    import threading

    from babynn_cli.data import stream as stream_module
    from babynn_cli.errors import DataError

    def no_inode(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(stream_module, "open", no_inode, raising=False)
    writer = stream_module.RowFileWriter(2, str(tmp_path))
    blocks = [(np.ones((3, 2)) * i, np.ones((3, 1))) for i in range(20)]  # more than the queue
    seen = []
    reader = threading.Thread(
        target=lambda: seen.extend(writer.wrap(lambda: iter(blocks))()), daemon=True
    )
    reader.start()
    reader.join(timeout=60)
    assert not reader.is_alive() and len(seen) == 20
    with pytest.raises(DataError, match="No space left on device"):
        writer.row_file()
