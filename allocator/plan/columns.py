"""A plan's tables held as columns: numpy arrays for numbers, dictionary-encoded labels
(integer codes into a list of ids) for text. Built by whole-array operations in the
read-out; a table still iterates, indexes and compares as a sequence of row dataclasses
(made once, on first use), and hands its columns to JSON, pandas and Arrow without a Python
object per row.

>>> from allocator.plan.rows import Allocation
>>> t = Table(Allocation, {"segment": Labels([0, 1], ["chat", "cloud"]),
...     "kind": Labels([0, 1], ["first_party", "cloud"]), "mode": Labels([0, 0], ["full"]),
...     "pool": Labels([1, 0], ["h100", "b200"]), "period": Labels([0, 0], ["P1"]),
...     "gpus": np.array([5.0, 10.0]), "gpu_hours": np.array([500.0, 1000.0]),
...     "units": np.array([15000.0, 1000.0])})
>>> len(t), t[1].pool, t[1].gpus
(2, 'h100', 10.0)
>>> t.records()[0]["segment"]
'chat'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

import numpy as np

R = TypeVar("R")


class Labels:
    """Text as integer ``codes`` into ``names`` (each name once)."""

    __slots__ = ("codes", "names")

    def __init__(self, codes: Any, names: Sequence[str]):
        self.codes = np.asarray(codes, dtype=np.int32)
        self.names = list(names)

    def __len__(self) -> int:
        return int(self.codes.size)

    def tolist(self) -> list[str]:
        names = self.names
        return [names[c] for c in self.codes.tolist()]

    def take(self, index: np.ndarray) -> Labels:
        return Labels(self.codes[index], self.names)

    @classmethod
    def encode(cls, values: Iterable[str]) -> Labels:
        """Labels of a list of strings (names in order of first appearance)."""
        index: dict[str, int] = {}
        codes = [index.setdefault(v, len(index)) for v in values]
        return cls(np.array(codes, dtype=np.int32), list(index))


Column = np.ndarray | Labels | None  # None: every value is None (e.g. prices without duals)


def _as_list(col: Column, n: int) -> list[Any]:
    if col is None:
        return [None] * n
    return col.tolist()


class Table(Sequence[R], Generic[R]):
    """Rows of type ``row`` (a dataclass) held as one column per field."""

    def __init__(self, row: type[R], columns: Mapping[str, Column], n: int | None = None):
        names = [f.name for f in dataclasses.fields(row)]  # type: ignore[arg-type]
        missing = [f for f in names if f not in columns]
        if missing or set(columns) - set(names):
            raise ValueError(f"{row.__name__} columns {sorted(columns)} != fields {names}")
        self.row = row
        self.columns: dict[str, Column] = {f: columns[f] for f in names}
        sizes = {len(c) for c in self.columns.values() if c is not None}
        if len(sizes) > 1:
            raise ValueError(f"{row.__name__} columns differ in length: {sorted(sizes)}")
        self._n = sizes.pop() if sizes else int(n or 0)
        self._rows: list[R] | None = None

    # ------------------------------------------------------------------ rows
    def __len__(self) -> int:
        return self._n

    def rows(self) -> list[R]:
        """The rows as dataclasses (made on first use, then kept)."""
        if self._rows is None:
            row = self.row
            self._rows = [row(*vals) for vals in zip(*self.lists(), strict=True)]
        return self._rows

    def __iter__(self) -> Iterator[R]:
        return iter(self.rows())

    @overload
    def __getitem__(self, i: int) -> R: ...
    @overload
    def __getitem__(self, i: slice) -> list[R]: ...
    def __getitem__(self, i: int | slice) -> R | list[R]:
        if self._rows is not None:
            return self._rows[i]
        if isinstance(i, slice):  # e.g. the top rows of a large table: only those are made
            return [self._row(k) for k in range(self._n)[i]]
        k = range(self._n)[i]  # IndexError as a list gives it
        return self._row(k)

    def _row(self, k: int) -> R:
        values: list[Any] = []
        for col in self.columns.values():
            if col is None:
                values.append(None)
            elif isinstance(col, Labels):
                values.append(col.names[int(col.codes[k])])
            else:
                values.append(col[k].item() if col.dtype != object else col[k])
        return self.row(*values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Table | list | tuple):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Table({self.row.__name__}, {self._n:,} rows)"

    # --------------------------------------------------------------- columns
    def lists(self) -> list[list[Any]]:
        """Each column as a Python list, in field order."""
        return [_as_list(c, self._n) for c in self.columns.values()]

    def records(self) -> list[dict[str, Any]]:
        """One dict per row (the JSON form): made from the columns, no dataclass per row."""
        names = list(self.columns)
        return [dict(zip(names, vals, strict=True)) for vals in zip(*self.lists(), strict=True)]

    def non_finite(self) -> str | None:
        """The first numeric column holding NaN or an infinity, else None."""
        for name, col in self.columns.items():
            if not isinstance(col, np.ndarray):
                continue
            if col.dtype.kind == "f":
                bad = not np.isfinite(col).all()
            else:
                bad = any(isinstance(v, float) and not math.isfinite(v) for v in col.tolist())
            if bad:
                return name
        return None

    def to_frame(self) -> Any:
        """A pandas DataFrame: numbers share the arrays, text is categorical (its codes
        shared too)."""
        import pandas as pd

        data: dict[str, Any] = {}
        for name, col in self.columns.items():
            if isinstance(col, Labels):
                data[name] = pd.Categorical.from_codes(col.codes, categories=col.names)
            elif col is None:
                data[name] = pd.Series([None] * self._n, dtype="Float64")
            else:
                data[name] = col
        return pd.DataFrame(data, columns=list(self.columns), copy=False)

    def to_arrow(self) -> Any:
        """A pyarrow Table: numbers zero-copy, text as dictionary arrays."""
        import pyarrow as pa

        arrays, names = [], []
        for name, col in self.columns.items():
            names.append(name)
            if isinstance(col, Labels):
                arrays.append(
                    pa.DictionaryArray.from_arrays(
                        pa.array(col.codes, type=pa.int32()), pa.array(col.names, pa.string())
                    )
                )
            elif col is None:
                arrays.append(pa.nulls(self._n, pa.float64()))
            elif col.dtype == object:
                arrays.append(pa.array(col.tolist()))
            else:
                arrays.append(pa.array(col))
        return pa.Table.from_arrays(arrays, names=names)

    # ---------------------------------------------------------------- making
    @classmethod
    def from_rows(cls, row: type[R], rows: Iterable[Any]) -> Table[R]:
        """A table from rows given as dataclasses or dicts (a stored or downloaded plan)."""
        fields = dataclasses.fields(row)  # type: ignore[arg-type]
        items = [r if isinstance(r, Mapping) else dataclasses.asdict(r) for r in rows]
        columns: dict[str, Column] = {}
        for f in fields:
            default = None if f.default is dataclasses.MISSING else f.default
            columns[f.name] = _column([item.get(f.name, default) for item in items])
        return cls(row, columns, n=len(items))


def _column(values: list[Any]) -> Column:
    """Labels for text, float64 for numbers, None when every value is None, an object
    array for anything else (mixed None and numbers, dicts)."""
    if values and all(v is None for v in values):
        return None
    if all(isinstance(v, str) for v in values):
        return Labels.encode(values)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=float)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
