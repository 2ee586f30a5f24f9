"""babynn predict: a saved model's predictions for every row of a CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from babynn_cli.cli.app import Command, app
from babynn_cli.cli.boundary import reports_errors
from babynn_cli.cli.common import begin
from babynn_cli.cli.options import (
    DATA,
    OUTPUT,
    DataArg,
    DecimalOpt,
    JsonFileOpt,
    NaValuesOpt,
    QuietOpt,
    SepOpt,
    ThousandsOpt,
    dialect_of,
    option,
)
from babynn_cli.errors import DataError, UsageError
from babynn_cli.text import listing


@app.command(
    cls=Command,
    epilog="Example: babynn predict model.json sample:notes_example -o predictions.csv",
)
@reports_errors
def predict(
    model: Annotated[
        Path,
        typer.Argument(
            metavar="MODEL", help="Model file written by babynn fit.", show_default=False
        ),
    ],
    data: DataArg,
    output: Annotated[
        str | None,
        option(
            "--output",
            "-o",
            metavar="PATH",
            panel=OUTPUT,
            help="Write the predictions (CSV) to this file, atomically, instead of stdout.",
            show_default=False,
        ),
    ] = None,
    sep: SepOpt = ",",
    decimal: DecimalOpt = ".",
    thousands: ThousandsOpt = None,
    na_values: NaValuesOpt = None,
    scheduler: Annotated[
        str | None,
        option(
            "--scheduler",
            metavar="ADDRESS",
            panel=DATA,
            help="Predict on a Dask cluster (tcp://host:8786, 'env' or 'local', as for fit): "
            "the workers read DATA and predict, this machine writes one CSV in DATA's row "
            "order. Needs pip install 'babynn\\[dask]'.",
            show_default=False,
        ),
    ] = None,
    quiet: QuietOpt = False,
    json_out: Annotated[
        bool,
        option(
            "--json",
            panel=OUTPUT,
            help="Print one JSON object (predictions, and MSE and R² when DATA has the targets) "
            "on stdout instead of CSV.",
        ),
    ] = False,
    json_file: JsonFileOpt = None,
) -> None:
    """Predict the targets of every row of DATA with a saved model; CSV on stdout or in -o: the
    id columns first, as DATA has them, then one column per target (empty where a row has a
    missing cell the model does not fill)."""
    from babynn_cli import persistence
    from babynn_cli.data.read import load_for_prediction, table_csv
    from babynn_cli.jsontext import dumps
    from babynn_cli.report import predict as predict_report

    dialect = dialect_of(sep, decimal, thousands, na_values)
    if output is not None and str(output) == "-":  # the usual spelling of stdout
        output = None
    outputs, report = begin(
        [("the DATA file", data), ("the MODEL file", model)],
        {"--output": output, "--json-file": json_file},
        quiet,
    )
    saved = persistence.load_model(model)
    if scheduler is None and not json_out and json_file is None:  # CSV: in bounded memory
        _streamed(outputs, report, saved, data, dialect, output)
        return
    if scheduler is not None:
        Y_hat, read = _on_cluster(scheduler, data, dialect, saved)
    else:
        read = load_for_prediction(
            data, dialect, saved.reads, saved.targets, saved.ids, saved.classes
        )
        Y_hat = saved.predict(read.X)
    if saved.classes is not None:  # a classifier: each class's probability, and its label
        Y_hat = saved.probabilities(read.X)
        columns = predict_report.class_columns(saved.targets[0], saved.classes, Y_hat, read.ids)
    else:
        columns = predict_report.columns(saved.targets, Y_hat, read.ids)
    running = predict_report.RunningScores(saved.classes, saved.n_outputs)
    running.add(read.Y, read.codes, Y_hat)  # all the rows: one block
    scores = running.result()
    if output is not None:
        outputs.stage(output, table_csv(columns))
    elif not json_out:
        report.emit_text(table_csv(columns))
    if json_out or json_file is not None:
        doc = predict_report.as_json(saved.targets, Y_hat, scores, read, saved.classes)
        if json_out:
            report.emit_json(doc)
        outputs.stage(json_file, lambda: dumps(doc) + "\n")
    outputs.commit(report.flush)
    predict_report.show(report, scores, saved.targets, read, json_out)


def _streamed(
    outputs: Any, report: Any, saved: Any, data: str, dialect: Any, output: str | Path | None
) -> None:
    """Predict DATA block by block, each block's CSV written as it is made (to -o's temporary
    file, renamed at the end; or to stdout): memory follows the block, not DATA. The bytes are
    the in-memory predict's (tested)."""
    from babynn_cli.data.read import prediction_blocks, table_csv
    from babynn_cli.report import predict as predict_report
    from babynn_cli.report.console import write_stdout

    blocks = prediction_blocks(data, dialect, saved.reads, saved.targets, saved.ids, saved.classes)
    sink = outputs.streamed(output) if output is not None else None
    running = predict_report.RunningScores(saved.classes, saved.n_outputs)
    read, rows = None, 0
    try:
        for read in blocks:
            if saved.classes is not None:
                Y_hat = saved.probabilities(read.X)
                target = saved.targets[0]
                columns = predict_report.class_columns(target, saved.classes, Y_hat, read.ids)
            else:
                Y_hat = saved.predict(read.X)
                columns = predict_report.columns(saved.targets, Y_hat, read.ids)
            text = table_csv(columns)
            text = text if rows == 0 else text.split("\n", 1)[1]  # the header once
            rows += len(read.X)
            if sink is not None:
                sink.write(text.encode("utf-8"))
            else:
                write_stdout(text)
            running.add(read.Y, read.codes, Y_hat)
    except BaseException:
        outputs.discard()
        raise
    outputs.commit()
    assert read is not None  # DATA has rows, or reading it failed
    scores = running.result() if read.unusable is None else {}
    predict_report.show(report, scores, saved.targets, read, False, rows)


def _on_cluster(scheduler: str, data: str, dialect: Any, saved: Any) -> tuple[Any, Any]:
    """Predictions (and the targets' rows, when DATA has the model's targets) computed on the
    cluster; the header is read here, to choose the columns and say what is missing. The cluster
    reads plain numeric columns: a model that encodes its features predicts on this machine."""
    from babynn_cli import cluster
    from babynn_cli.cli.boundary import COMMAND_RESOURCES
    from babynn_cli.data.columns import read_header
    from babynn_cli.data.read import ToPredict
    from babynn_cli.data.sources import Dialect, display_name, open_source

    if saved.encoding is not None or saved.ids or saved.classes or dialect != Dialect(dialect.sep):
        raise UsageError(
            "--scheduler reads plain numeric columns: a model that reads text, dates, ids or "
            "classes, "
            "and --decimal, --thousands and --na-values, predict on this machine"
        )
    cluster.require_dask()
    parts = cluster.worker_parts(data)
    sep = dialect.sep
    header = read_header(open_source(parts[0], sep))
    missing = [c for c in saved.features if c not in header]
    if missing:
        raise DataError(
            f"{display_name(data)} lacks the model's feature column(s): {listing(missing)}"
        )
    targets = list(saved.targets) if all(t in header for t in saved.targets) else []
    c = COMMAND_RESOURCES.enter_context(cluster.client(scheduler))
    Y_hat, Y = cluster.predictions(c, parts, sep, saved, targets)
    return Y_hat, ToPredict.of_rows(len(Y_hat), Y)
