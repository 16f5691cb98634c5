"""A plan written to a file, the format chosen by the path: ``plan.json`` (the documented
keys, compact unless indented), ``plan.parquet`` (a folder of one Parquet file per table),
``plan.xlsx`` (a workbook for people) or a folder ``plan/`` (one CSV per table). Every file
goes through a temporary file and a rename, so a reader never sees half of one.

The CLI (``allocator solve -o``), batch runs and the service use these writers.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from allocator.cells import csv_cell
from allocator.plan import jsonio

if TYPE_CHECKING:
    from allocator.plan.tables import Plan

FORMATS = ("json", "parquet", "xlsx", "csv")
TABLES = (
    "allocations",
    "segments",
    "pools",
    "reservations",
    "binding",
    "moves",
    "power",
    "sites",
)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename:
    a reader (or a resumed batch) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with open(tmp, "wb") as f:
        f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def format_of(path: str | Path) -> str:
    """``json``, ``parquet`` or ``xlsx`` by the suffix; ``csv`` for a folder (a path that
    ends with ``/``, has no suffix or is an existing directory)."""
    p = Path(path)
    suffix = p.suffix.lower().lstrip(".")
    if suffix in ("json", "parquet", "xlsx"):
        return suffix
    if str(path).endswith(("/", os.sep)) or p.is_dir() or not suffix:
        return "csv"
    raise ValueError(
        f"cannot tell the format of {str(path)!r}: give a path ending .json, .parquet or "
        ".xlsx, or a folder (ending /) for one CSV per table"
    )


def write_plan(plan: Plan, path: str | Path, indent: int | None = None) -> list[Path]:
    """Write ``plan`` to ``path`` in the format its name says; returns the files written."""
    fmt, p = format_of(path), Path(path)
    if fmt == "json":
        write_atomic(p, plan.to_json_bytes(indent) + b"\n")
        return [p]
    if fmt == "parquet":
        return write_parquet(plan, p)
    if fmt == "xlsx":
        from allocator.plan.workbook import write_plan_workbook

        write_atomic(p, write_plan_workbook(plan))
        return [p]
    return write_csv(plan, p)


def summary_dict(plan: Plan) -> dict[str, Any]:
    """Everything of the plan but its row tables (written beside them)."""
    d = plan.to_dict()
    for name in TABLES:
        d.pop(name, None)  # power and sites: only in plans with sites
    return d


def write_parquet(plan: Plan, folder: Path) -> list[Path]:
    """``folder/<table>.parquet`` for every table (plan metadata in each schema under
    ``allocator.plan``) and ``folder/plan.json`` with the totals, by kind and solver."""
    files = parquet_files(plan)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        written.append(folder / name)
        write_atomic(written[-1], data)
    return written


def parquet_files(plan: Plan, tables: tuple[str, ...] = TABLES) -> dict[str, bytes]:
    """The files of :func:`write_parquet` in memory: ``{"<table>.parquet": bytes, ...,
    "plan.json": bytes}`` (``tables`` picks the tables; the service sends one or all)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("Parquet output needs pyarrow: pip install 'allocator[arrow]'") from None
    import pyarrow as pa

    meta = jsonio.dumps(summary_dict(plan))
    out = {}
    for name, table in plan.to_arrow().items():
        if name not in tables:
            continue
        table = table.replace_schema_metadata({b"allocator.plan": meta})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        out[f"{name}.parquet"] = sink.getvalue().to_pybytes()
    out["plan.json"] = meta + b"\n"
    return out


def table_csv(header: list[str], columns: list[list[Any]]) -> str:
    """CSV text of columns, every cell by :func:`allocator.cells.csv_cell`: None as an empty
    cell, floats to 12 significant digits (what a spreadsheet shows, without last-bit noise
    such as 45600.00000000001), text that would start a formula behind a single quote."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_cell(h) for h in header])
    w.writerows([csv_cell(v) for v in row] for row in zip(*columns, strict=True))
    return buf.getvalue()


def write_csv(plan: Plan, folder: Path) -> list[Path]:
    """``folder/<table>.csv`` for every table (binding's key as one column per
    dimension) and ``folder/plan.json`` with the rest."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in plan.tables().items():
        if name == "binding":
            rows = [
                {"constraint": b.constraint, **b.key, "bound": b.bound, "dual": b.dual}
                for b in table
            ]
            header: list[str] = list(dict.fromkeys(k for r in rows for k in r)) or [
                "constraint",
                "bound",
                "dual",
            ]
            cols = [[r.get(h) for r in rows] for h in header]
        else:
            header, cols = list(table.columns), table.lists()
        written.append(folder / f"{name}.csv")
        write_atomic(written[-1], table_csv(header, cols))
    written.append(folder / "plan.json")
    write_atomic(written[-1], jsonio.dumps(summary_dict(plan), indent=2) + b"\n")
    return written
