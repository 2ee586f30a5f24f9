"""babynn sample: the sample data sets that ship with babynn, for trying it anywhere."""

from __future__ import annotations

from typing import Annotated

import typer

from babynn_cli.cli.app import Command, app
from babynn_cli.cli.boundary import reports_errors
from babynn_cli.cli.options import OUTPUT, option


@app.command(
    cls=Command,
    epilog="Example: babynn sample notes_example -o notes.csv && babynn fit notes.csv",
)
@reports_errors
def sample(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            help="A sample's name; none lists them. Any command also reads DATA written "
            "sample:NAME, e.g. babynn fit sample:notes_example.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        str | None,
        option(
            "--output",
            "-o",
            metavar="FILE.csv",
            panel=OUTPUT,
            help="Write the sample here instead of stdout.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write one of the sample data sets that ship with babynn (CSV), or list them."""
    from babynn_cli.data.sources import SAMPLES, sample_text
    from babynn_cli.outputs import Outputs
    from babynn_cli.report.console import Reporter

    report = Reporter()
    if name is None:
        width = max(len(n) for n in SAMPLES)
        listing = "".join(f"{n.ljust(width)}  {what}\n" for n, what in SAMPLES.items())
        report.emit_text(listing)
        report.flush()
        return
    outputs = Outputs()
    outputs.name("--output", output)
    text = sample_text(name)
    if output is None:
        report.emit_text(text.decode("utf-8"))
    else:
        outputs.stage(output, text)
    outputs.commit(report.flush)
