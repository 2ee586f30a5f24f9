"""How a CSV's columns become the numbers a model reads, as the model file records it.

Each feature column is one of four kinds: a number, as it is; true/false, as 1/0; an ISO date or
date-time, as a fractional year (2024-07-02 12:00 is 2024.5); or a category (a column of text, or a
numeric code named with --categorical), one indicator column per level seen in training,
`column=level`. All k levels get an indicator (full one-hot, not k − 1 beside a reference level),
so a level never seen in training is "none of the known ones": all its indicators 0. With an
intercept the k indicators of a column sum to 1, so the design is rank-deficient; the theory and
the least-squares reference handle that exactly (κ over the non-zero eigenvalues, the optimum of
least norm), and training starts with no part of the weights along it (`Problem`), so gradient
descent ends at that same optimum.

With --impute, a missing number (boolean, date) is filled with its column's mean over the rows fit
saw, and a missing category is a level of its own, MISSING. The reading itself (parsing dates, text)
is the data layer's (`data.encoding`); this module is the record, plain values only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KINDS = ("number", "boolean", "date", "category")
MISSING = "(missing)"  # the level a missing category gets with --impute


@dataclass(frozen=True)
class Column:
    """One of DATA's feature columns: its name, its kind (KINDS), a category's levels, and with
    --impute the value a missing cell gets (a number's mean; None: not filled)."""

    name: str
    kind: str = "number"
    levels: tuple[str, ...] = ()
    fill: float | None = None

    @property
    def features(self) -> list[str]:
        """The feature columns it becomes: itself, or one `name=level` per level."""
        if self.kind == "category":
            return [f"{self.name}={level}" for level in self.levels]
        return [self.name]

    def record(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "category":
            doc["levels"] = list(self.levels)
        if self.fill is not None:
            doc["fill"] = self.fill
        return doc


@dataclass(frozen=True)
class Encoding:
    """DATA's feature columns, in order, and whether missing cells are filled (--impute)."""

    columns: tuple[Column, ...]
    impute: bool = False

    @property
    def features(self) -> list[str]:
        """The names of the numbers a model reads, in order."""
        return [name for column in self.columns for name in column.features]

    @property
    def sources(self) -> list[str]:
        """DATA's columns the features come from."""
        return [column.name for column in self.columns]

    @property
    def plain(self) -> bool:
        """Every feature is a number read as it is, and nothing is filled: no encoding at all."""
        return not self.impute and all(c.kind == "number" for c in self.columns)

    def record(self) -> dict[str, Any]:
        """As the model file keeps it."""
        return {"columns": [c.record() for c in self.columns], "impute": self.impute}

    @classmethod
    def numbers(cls, names: list[str]) -> Encoding:
        """Plain numeric features (a model file from before encodings)."""
        return cls(tuple(Column(name) for name in names))
