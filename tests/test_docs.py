"""The reference pages in docs/ open with each command's real `-h`, as a user's 100-column terminal
shows it. When an option changes, run `BABYNN_UPDATE_DOCS=1 python -m pytest tests/test_docs.py`
to write the new help into the pages, and read the rest of each page again."""

from __future__ import annotations

import os
import re

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from babynn_cli.cli import app

COMMANDS = ("fit", "predict", "sweep-lr", "compare", "sample")
HELP_BLOCK = re.compile(r"(<!-- help: (\S+) -->\n```text\n)(.*?)(```\n)", re.S)


def help_text(command: str) -> str:
    env = {"COLUMNS": "100", "NO_COLOR": "1"}
    result = CliRunner().invoke(app, [command, "-h"], env=env, prog_name="babynn")
    assert result.exit_code == 0
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines).rstrip() + "\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_page_opens_with_its_help(command):
    page = ROOT / "docs" / f"{command}.md"
    text = page.read_text()
    blocks = HELP_BLOCK.findall(text)
    assert [name for _, name, _, _ in blocks] == [command], f"{page} has no help block first"
    first_heading_after = text.index("<!-- help:") < text.index("\n## ")
    assert first_heading_after, "the help comes before the page's sections"
    wanted = help_text(command)
    if os.environ.get("BABYNN_UPDATE_DOCS") == "1":
        text = HELP_BLOCK.sub(lambda m: m.group(1) + wanted + m.group(4), text)
        page.write_text(text)
    assert blocks[0][2] == wanted, f"{page}'s help is out of date: see this module's docstring"


def test_every_page_the_readme_links_to_exists():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(((?:docs/|CONTRIBUTING|ARCHITECTURE)[^)#]*)", readme)
    assert links
    for link in links:
        assert (ROOT / link).exists(), link


OTHER_TOOLS = {  # options in the pages that are not babynn's: whose they are
    "--port": "dask scheduler",
    "--torch": "benchmarks/networks.py",
}


def _all_help() -> str:
    top = CliRunner().invoke(app, ["-h"], env={"COLUMNS": "200"}, prog_name="babynn").stdout
    return top + "".join(help_text(command) for command in COMMANDS)


def test_every_option_the_pages_name_is_one_babynn_has():
    """The README and docs/ name only options some command's -h shows (or another tool's, said
    which): a renamed or removed option cannot linger in the text."""
    shown = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", _all_help()))
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", page.read_text()))
        unknown = named - shown - set(OTHER_TOOLS)
        assert not unknown, f"{page.name} names {sorted(unknown)}, which no command has"


def _codes(text: str) -> list[int]:
    return [int(code) for code in re.findall(r"^\| (\d+) \|", text, re.M)]


def test_the_exit_code_tables_are_the_help_and_real_runs_give_them(in_tmp):
    """README's and docs/scripting.md's exit-code tables list the codes `babynn -h` lists, and
    real runs exit with them (the signals' and the closed pipe's are run in test_outputs)."""
    from conftest import NOTES, run

    from babynn_cli.cli.app import EXIT_CODES

    helped = [int(code) for code in re.findall(r"(?:: |· )(\d+) ", EXIT_CODES)]
    assert helped == [0, 1, 2, 3, 4, 129, 130, 141, 143]
    assert _codes((ROOT / "README.md").read_text()) == helped
    assert _codes((ROOT / "docs" / "scripting.md").read_text()) == helped
    assert "Exit codes: 0 success" in _all_help()
    runs = {
        0: ("fit", NOTES, "-q"),
        1: ("fit", "missing.csv"),
        2: ("fit", NOTES, "--no-such-option"),
        3: ("fit", NOTES, "--lr", "10", "-q"),
        4: ("fit", NOTES, "--epochs", "1", "--require-converged", "-q"),
    }
    for code, args in runs.items():
        assert run(*args).exit_code == code, args
