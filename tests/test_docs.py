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
