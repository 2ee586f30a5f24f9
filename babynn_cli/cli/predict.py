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
    QuietOpt,
    SepOpt,
    check_sep,
    option,
)
from babynn_cli.errors import DataError
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
) -> None:
    """Predict the targets of every row of DATA with a saved model; CSV on stdout or in -o."""
    from babynn_cli import persistence
    from babynn_cli.core.vocabulary import mse, r2_per_output
    from babynn_cli.data.read import load_for_prediction, table_csv
    from babynn_cli.report import predict as predict_report

    outputs, report = begin(
        [("the DATA file", data), ("the MODEL file", model)], {"--output": output}, quiet
    )
    saved = persistence.load_model(model)
    if scheduler is not None:
        Y_hat, Y, unusable = _on_cluster(scheduler, data, check_sep(sep), saved)
    else:
        X, Y, unusable = load_for_prediction(data, check_sep(sep), saved.features, saved.targets)
        Y_hat = saved.predict(X)
    metrics: dict[str, Any] = {}
    if Y is not None:
        metrics = {"mse": mse(Y, Y_hat), "r2": r2_per_output(Y, Y_hat).tolist()}
    predictions = {t: Y_hat[:, j] for j, t in enumerate(saved.targets)}
    if output is not None:
        outputs.stage(output, table_csv(predictions))
    elif not json_out:
        report.emit_text(table_csv(predictions))
    if json_out:
        report.emit_json(predict_report.as_json(saved.targets, Y_hat, metrics))
    outputs.commit()
    report.flush()
    if not json_out:
        predict_report.show(report, metrics, saved.targets)
    if unusable:
        report.status(f"no MSE or R²: {unusable} (the predictions do not need the targets)")


def _on_cluster(scheduler: str, data: str, sep: str, saved: Any) -> tuple[Any, Any, str | None]:
    """Predictions (and the targets' rows, when DATA has the model's targets) computed on the
    cluster; the header is read here, to choose the columns and say what is missing."""
    from babynn_cli import cluster
    from babynn_cli.cli.boundary import COMMAND_RESOURCES
    from babynn_cli.data.columns import read_header
    from babynn_cli.data.sources import display_name, open_source

    cluster.require_dask()
    parts = cluster.worker_parts(data)
    header = read_header(open_source(parts[0], sep))
    missing = [c for c in saved.features if c not in header]
    if missing:
        raise DataError(
            f"{display_name(data)} lacks the model's feature column(s): {listing(missing)}"
        )
    targets = list(saved.targets) if all(t in header for t in saved.targets) else []
    c = COMMAND_RESOURCES.enter_context(cluster.client(scheduler))
    Y_hat, Y = cluster.predictions(c, parts, sep, saved, targets)
    return Y_hat, Y, None
