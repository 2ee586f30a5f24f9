"""Plots: in the terminal with plain characters (Rich styles them), or to PNG with matplotlib.

matplotlib is optional (`pip install 'babynn[plot]'`) and imported only when a PNG is asked for.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from babynn_cli.errors import UsageError


@dataclass
class Series:
    """Points (x, y) drawn with `char`; non-finite or non-positive values are skipped (log axes)."""

    xs: Sequence[float]
    ys: Sequence[float]
    char: str = "●"
    style: str = ""
    label: str = ""


@dataclass
class VLine:
    x: float
    char: str = "│"
    style: str = "dim"
    label: str = ""


@dataclass
class HLine:
    y: float
    char: str = "─"
    style: str = "dim"
    label: str = ""


MIN_WIDTH = 60  # narrower terminals get one line instead of a plot


@dataclass
class TextPlot:
    series: list[Series]
    vlines: list[VLine] = field(default_factory=list)
    top: list[Series] = field(default_factory=list)  # drawn on the top row whatever their y
    width: int = 64  # of the plotting area; `fit` sets it from the terminal's
    height: int = 14
    x_label: str = ""
    y_label: str = ""
    x_log: bool = True  # the y axis is always logarithmic
    hlines: list[HLine] = field(default_factory=list)

    def fit(self, columns: int) -> Text:
        """The plot for a terminal `columns` wide: as wide as it allows (at most 100 columns of
        plot), or one line saying why there is none."""
        if columns < MIN_WIDTH:
            return Text(f"(no plot below {MIN_WIDTH} columns)", style="dim")
        self.width = min(100, columns - 14)
        return self.render()

    def render(self) -> Text:
        def ok_x(x: float | None) -> bool:
            return _ok(x) if self.x_log else x is not None and math.isfinite(x)

        def tx(x: float) -> float:
            return math.log10(x) if self.x_log else x

        def untx(v: float) -> float:
            return 10**v if self.x_log else v

        xs = [x for s in [*self.series, *self.top] for x in s.xs if ok_x(x)]
        xs += [v.x for v in self.vlines if ok_x(v.x)]
        ys = [y for s in self.series for x, y in zip(s.xs, s.ys, strict=True) if ok_x(x) and _ok(y)]
        ys += [h.y for h in self.hlines if _ok(h.y)]
        if not xs:
            return Text("(nothing to plot)")
        lx = [tx(x) for x in xs]
        x0, x1 = min(lx), max(lx)
        if x1 - x0 < 1e-12:
            x0, x1 = x0 - 0.5, x1 + 0.5
        ly = [math.log10(y) for y in ys] or [0.0]
        y0, y1 = min(ly), max(ly)
        if y1 - y0 < 1e-12:
            y0, y1 = y0 - 0.5, y1 + 0.5
        W, H = self.width, self.height
        cells = [[(" ", "") for _ in range(W)] for _ in range(H)]

        def col(x: float) -> int:
            return round((tx(x) - x0) / (x1 - x0) * (W - 1))

        def row(y: float) -> int:
            return H - 1 - round((math.log10(y) - y0) / (y1 - y0) * (H - 1))

        for h in self.hlines:
            if _ok(h.y):
                cells[row(h.y)] = [(h.char, h.style) for _ in range(W)]
        for v in self.vlines:
            if ok_x(v.x):
                for r in range(H):
                    cells[r][col(v.x)] = (v.char, v.style)
        for s in self.series:
            for x, y in zip(s.xs, s.ys, strict=True):
                if ok_x(x) and _ok(y):
                    cells[row(y)][col(x)] = (s.char, s.style)
        for s in self.top:
            for x in s.xs:
                if ok_x(x):
                    cells[0][col(x)] = (s.char, s.style)

        half = (y0 + y1) / 2
        labels = {0: _num(_ten(y1)), (H - 1) // 2: _num(_ten(half)), H - 1: _num(_ten(y0))}
        pad = max(len(v) for v in labels.values())
        out = Text()
        if self.y_label:  # never wider than the plot: cut with an ellipsis
            room = W + pad + 2
            label = self.y_label if len(self.y_label) <= room else self.y_label[: room - 1] + "…"
            out.append(f"{label}\n", style="dim")
        for r in range(H):
            out.append(labels.get(r, "").rjust(pad) + " ┤" if r in labels else " " * pad + " │")
            last = max((c for c, (char, _) in enumerate(cells[r]) if char != " "), default=-1)
            for char, style in cells[r][: last + 1]:  # no trailing blanks
                out.append(char, style=style or None)
            out.append("\n")
        out.append(" " * pad + " └" + "─" * W + "\n")
        left, right = _num(untx(x0)), _num(untx(x1))
        mid = _num(untx((x0 + x1) / 2))
        gap = W - len(left) - len(right) - len(mid)
        axis = left + " " * (gap // 2) + mid + " " * (gap - gap // 2) + right
        out.append(" " * (pad + 2) + axis + "\n")
        if self.x_label:
            out.append(" " * (pad + 2) + self.x_label[:W].center(W).rstrip() + "\n", style="dim")
        legend = [(s.char, s.style, s.label) for s in [*self.series, *self.top] if s.label]
        legend += [(v.char, v.style, v.label) for v in self.vlines if v.label]
        legend += [(h.char, h.style, h.label) for h in self.hlines if h.label]
        line = 0
        for char, style, label in legend:
            if line and line + len(label) + 4 > W + pad + 2:
                out.append("\n")
                line = 0
            if not line:
                out.append(" " * (pad + 2))
                line = pad + 2
            else:
                out.append("  ")
                line += 2
            out.append(char, style=style or None)
            out.append(f" {label}")
            line += len(label) + 2
        if legend:
            out.append("\n")
        return out


def _ok(v: float | None) -> bool:
    return v is not None and math.isfinite(v) and v > 0


def _ten(power: float) -> float:
    """10**power, inf past double precision (a flat curve near 1e308 pads its axis past it)."""
    try:
        return 10.0**power
    except OverflowError:
        return math.inf


def _num(v: float) -> str:
    """A tick label a person reads at once: 1000 not 1e+03, 1e-6 not 1e-06, 0.5 not 5e-01."""
    if v == 0 or 0.01 <= abs(v) < 10000:
        return f"{float(f'{v:.3g}'):g}"  # three digits, never an exponent
    mantissa, exponent = f"{v:.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def require_matplotlib() -> None:
    """Fail early, before any training, when --plot cannot be honoured (a usage error, as for
    every extra not installed); matplotlib's own messages (building its font cache, warnings)
    stay off stderr."""
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(
            "--plot needs matplotlib, which is not installed: pip install 'babynn[plot]'"
        ) from None


def png_bytes(figure: object) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # (a glyph missing from the font, a tight layout's limits)
        warnings.simplefilter("ignore")
        figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")  # type: ignore[attr-defined]
    return buffer.getvalue()


def new_figure(width: float = 7.0, height: float = 4.5, rows: int = 1) -> tuple[object, Any]:
    """A figure and its axes (a tuple of `rows` axes sharing x when rows > 1)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    if rows == 1:
        return figure, figure.add_subplot()
    return figure, tuple(figure.subplots(rows, 1, sharex=True))
