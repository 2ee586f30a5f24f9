"""Pictures and plain words: terminal plots that fit the terminal, PNGs, help text, and examples
that run from an installed babynn in an empty folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import DIABETES, NOTES, ROOT, run
from rich.cells import cell_len
from typer.testing import CliRunner

from babynn_cli.cli import app

PNG = b"\x89PNG\r\n\x1a\n"
COMMANDS = [
    ("fit", "sample:diabetes", "-o", "m.json"),
    ("fit", "sample:nonlinear", "--hidden", "8", "-e", "50", "-o", "n.json", "--val-frac", "0.2"),
    ("sweep-lr", "sample:diabetes", "--epochs", "500"),
    ("compare", "sample:notes_example"),
]


@pytest.mark.parametrize("columns", [60, 80, 120, 200])
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_tables_and_plots_fit_the_terminal(in_tmp, columns, args):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns), "NO_COLOR": "1"})
    assert result.exit_code == 0, result.stderr
    too_wide = [line for line in result.stdout.splitlines() if cell_len(line) > columns]
    assert too_wide == []
    assert "(log)" in result.stdout or "log scale" in result.stdout  # a plot, from 60 up


def test_below_60_columns_a_plot_gives_way_to_one_line(in_tmp):
    result = CliRunner().invoke(app, ["fit", str(NOTES)], env={"COLUMNS": "50"})
    assert "(no plot below 60 columns)" in result.stdout


def test_fit_draws_the_loss_falling_to_l_star(in_tmp):
    result = run("fit", NOTES, "--val-frac", "0.2")
    assert "• training loss" in result.stdout and "∘ validation loss" in result.stdout
    assert "┄ L* (least squares)" in result.stdout
    # the weights beside the least-squares ones
    assert "learned" in result.stdout and "least squares" in result.stdout


def test_sweep_draws_epochs_by_rate_with_theory_beside_measurement(in_tmp):
    doc = json.loads(run("sweep-lr", DIABETES, "--epochs", 3000, "--json").stdout)
    rows = [r for r in doc["rows"] if r["epochs_to_optimum"] and r["predicted_epochs"]]
    assert len(rows) >= 2  # theory and experiment, on the same rates ...
    for row in rows:  # ... agree to within an epoch
        assert abs(row["epochs_to_optimum"] - row["predicted_epochs"]) <= 1
    text = run("sweep-lr", DIABETES, "--epochs", 3000).stdout
    assert "○ theory" in text and "● measured" in text and "2/λmax = 0.2485" in text


@pytest.mark.parametrize(
    "args",
    [
        ("fit", NOTES, "-q"),
        ("sweep-lr", NOTES, "--num", "5", "-q"),
        ("compare", NOTES, "-q"),
    ],
)
def test_pngs_are_written(in_tmp, args):
    pytest.importorskip("matplotlib")
    result = run(*args, "--plot", "p.png")
    assert result.exit_code == 0, result.stderr
    data = (in_tmp / "p.png").read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000


def test_help_keeps_brackets_names_arguments_and_lists_exit_codes():
    fit_help = run("fit", "-h").stdout
    assert "babynn[plot]" in fit_help.replace("\n", "").replace("│", "").replace(" ", "")
    assert "fit [OPTIONS] DATA" in fit_help and "<bool>" not in fit_help
    assert "predict [OPTIONS] MODEL DATA" in run("predict", "-h").stdout
    top = run("-h").stdout
    assert "Exit codes: 0 success" in top and "143 SIGTERM" in top
    assert run("-V").stdout.startswith("babynn ")


def test_shell_completion_for_bash():
    babynn = Path(sys.executable).parent / "babynn"
    # the script for bash whatever the shell running the tests (--show-completion detects it)
    env = {**os.environ, "_BABYNN_COMPLETE": "source_bash"}
    result = subprocess.run([babynn], capture_output=True, text=True, env=env)
    assert result.returncode == 0
    assert "_BABYNN_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F _babynn_completion babynn" in result.stdout


def _examples() -> list[str]:
    """Every `Example:` line of every command's --help."""
    commands = ["fit", "predict", "sweep-lr", "compare", "sample"]
    found = []
    for command in commands:
        text = run(command, "-h").stdout
        flat = " ".join(line.strip(" │") for line in text.splitlines())
        found += re.findall(r"Example: (babynn .+?)(?:\s{2,}|$)", flat)
    return found


def test_every_help_example_runs_from_an_installed_wheel_in_an_empty_folder(tmp_path):
    """Build the wheel, install it (no dependencies: those of this environment serve) and run each
    --help example in an empty folder, as a user who has no checkout would."""
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(ROOT)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    # a fresh environment: the wheel installed into it, the dependencies of this one reachable
    # through a .pth file (whose own .pth files, such as an editable install's, are not read)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_dir = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site_dir) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
         "--target", site_dir, *map(str, wheels.glob("*.whl"))],
        capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "babynn"
    launcher.write_text(
        f'#!/bin/sh\nexec {python} -c \'import sys; sys.argv[0] = "babynn"; '
        'from babynn_cli.cli import main; main()\' "$@"\n'
    )
    launcher.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    empty = tmp_path / "empty"
    empty.mkdir()
    where = subprocess.run(["babynn", "sample"], cwd=empty, env=env, capture_output=True, text=True)
    assert where.returncode == 0 and "notes_example" in where.stdout
    check = "import babynn_cli; print(babynn_cli.__file__)"
    origin = subprocess.run(
        [python, "-c", check], cwd=empty, env=env, capture_output=True, text=True
    )
    assert origin.stdout.startswith(site_dir)  # the wheel's babynn, not the checkout's
    examples = _examples()
    assert len(examples) == 5
    for example in sorted(examples, key=lambda e: "predict" in e):  # fit writes predict's model
        done = subprocess.run(
            example, shell=True, cwd=empty, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, (example, done.stderr)
    assert not list(Path(empty).glob("sample_data"))


def _block_after(readme: str, marker: str) -> list[str]:
    """The lines of the first ``` block after `marker` in the pages, unindented."""
    start = readme.index("```", readme.index(marker)) + 3
    end = readme.index("```", start)
    lines = readme[start:end].strip("\n").split("\n")
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return [line[indent:].rstrip() for line in lines]


@pytest.mark.parametrize(
    ("marker", "args", "first"),
    [
        ("`babynn fit sample:notes_example`, at 90", ["fit", "sample:notes_example"], "loss (log)"),
        (
            "`babynn sweep-lr sample:diabetes\n  --epochs 3000`",
            ["sweep-lr", "sample:diabetes", "--epochs", "3000"],
            "epochs to come",
        ),
        (
            "`babynn compare sample:notes_example`:",
            ["compare", "sample:notes_example"],
            "(L - L*)/L*, log",
        ),
    ],
)
def test_the_documented_pictures_are_what_the_commands_draw(in_tmp, marker, args, first):
    readme = "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
    shown = _block_after(readme, marker)
    result = CliRunner().invoke(app, args, env={"COLUMNS": "90", "NO_COLOR": "1"})
    lines = [line.rstrip() for line in result.stdout.split("\n")]
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    assert lines[start : start + len(shown)] == shown
