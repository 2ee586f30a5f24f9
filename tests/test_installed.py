"""The installed `babynn` executable, run as a user or `make` runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DIABETES, NOTES, ROOT

BIN = Path(sys.executable).parent / "babynn"
ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}


def babynn(*args, cwd=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN), *map(str, args)], cwd=cwd, capture_output=True, text=True, env=ENV, **kw
    )


def test_version_and_help():
    from babynn_cli import __version__

    assert babynn("--version").stdout == f"babynn {__version__}\n"
    for flag in ("-h", "--help"):
        out = babynn(flag).stdout
        assert "fit" in out and "predict" in out
    fit_help = babynn("fit", "-h").stdout
    for option in ("--schedule", "--lr", "--batch-size", "--val-frac", "--warm-start", "--json"):
        assert option in fit_help
    assert "Example: babynn fit" in fit_help


def test_python_dash_m_works():
    result = subprocess.run(
        [sys.executable, "-m", "babynn_cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("babynn ")


def test_log_output_has_no_progress_bar_garbage(tmp_path):
    result = babynn("fit", DIABETES, "--epochs", 300, "--lr", 0.2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    assert "\x1b" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 4  # the run's header and its verdict, no per-epoch lines
    assert lines[-1].startswith("still falling: (L − L*)/L* = ")


def test_exit_code_of_bad_input_and_divergence(tmp_path):
    missing = babynn("fit", "missing.csv", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr == "Error: cannot read 'missing.csv': no such file\n"
    diverged = babynn("fit", NOTES, "--lr", 10, "-q", cwd=tmp_path)
    assert diverged.returncode == 3 and not (tmp_path / "model.json").exists()
    usage = babynn("fit", NOTES, "--schedule", "nope", cwd=tmp_path)
    assert usage.returncode == 2


def test_ctrl_c_saves_the_weights_so_far(tmp_path):
    proc = subprocess.Popen(
        [str(BIN), "fit", DIABETES, "--batch-size", "1", "--epochs", "100000000", "--tol", "0",
         "--lr", "0.001", "-o", "m.json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**ENV, "BABYNN_COMPILED": "0"},  # numpy's descent: no compiling to wait through
    )  # fmt: skip
    deadline = time.monotonic() + 60  # the header is printed once the data is loaded
    while not proc.stderr.readline().startswith("method:"):
        assert time.monotonic() < deadline and proc.poll() is None, "fit did not start"
    time.sleep(1)  # into the epochs (at batch 1 on 442 rows, an epoch takes about a millisecond)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["result"]["interrupted"] is True
    epochs_run = doc["result"]["epochs_run"]
    assert epochs_run >= 1 and doc["result"]["interrupted_at_epoch"] == epochs_run + 1
    assert f"interrupted (Ctrl-C) during epoch {epochs_run + 1}" in " ".join(stdout.split())


def test_core_imports_neither_pandas_nor_rich_nor_typer():
    code = (
        "import sys, babynn_cli.core; "
        "print(sorted(m for m in ('pandas', 'rich', 'typer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def readme_makefile() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"```make\n(.*?)```", text, re.S)
    assert match, "the README shows a Makefile"
    return match.group(1)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_readme_makefile_runs(tmp_path):
    (tmp_path / "Makefile").write_text(readme_makefile())
    shutil.copy(DIABETES, tmp_path / "train.csv")
    shutil.copy(DIABETES, tmp_path / "new.csv")
    result = subprocess.run(
        ["make", f"BABYNN={BIN}"], cwd=tmp_path, capture_output=True, text=True, env=ENV
    )
    assert result.returncode == 0, result.stderr
    predictions = (tmp_path / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "progression" and len(predictions) == 443
    again = subprocess.run(["make", f"BABYNN={BIN}"], cwd=tmp_path, capture_output=True, text=True)
    assert "Nothing to be done" in again.stdout or "up to date" in again.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_readme_makefile_gate_stops_make_on_a_model_that_did_not_converge(tmp_path):
    """Too few epochs for the README's rule: fit exits 4, no model.json, make stops there."""
    makefile = readme_makefile().replace("--epochs 5000", "--epochs 50")
    (tmp_path / "Makefile").write_text(makefile)
    shutil.copy(DIABETES, tmp_path / "train.csv")
    shutil.copy(DIABETES, tmp_path / "new.csv")
    result = subprocess.run(
        ["make", f"BABYNN={BIN}"], cwd=tmp_path, capture_output=True, text=True, env=ENV
    )
    assert result.returncode != 0
    assert "Error: still falling: " in result.stderr
    assert not (tmp_path / "model.json").exists() and not (tmp_path / "predictions.csv").exists()
