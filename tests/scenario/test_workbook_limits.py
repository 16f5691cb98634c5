"""Hostile workbooks cost no more than honest ones: only the sheets the reader uses are
parsed, each within rows, columns and cells bounds (WorkbookTooLarge naming the sheet);
malformed XML (truncated, a DTD entity, billion laughs) is a ScenarioError naming what does
not read, never an unhandled exception. The files are built here, small."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import load_workbook

from allocator import Scenario, ScenarioError
from allocator.errors import WorkbookTooLarge
from allocator.scenario.workbook import ReadLimits, read_workbook, write_workbook
from tests.conftest import DATA

XFD = 16_384  # Excel's last column


def tiny_workbook(path: Path) -> Path:
    write_workbook(Scenario.from_dict(json.loads((DATA / "tiny.json").read_text())), path)
    return path


def far_right(path: Path, sheet: str, rows: int, column: int = XFD) -> bytes:
    """tiny.json's workbook with one number at ``column`` in each of ``rows`` rows of
    ``sheet`` (created when the workbook has no such sheet; below the data when it has)."""
    tiny_workbook(path)
    wb = load_workbook(path)
    ws = wb[sheet] if sheet in wb.sheetnames else wb.create_sheet(sheet)
    first = ws.max_row + 1 if sheet in wb.sheetnames else 1
    for r in range(first, first + rows):
        ws.cell(row=r, column=column, value=r)
    wb.save(path)
    return path.read_bytes()


def sheet_part(raw: bytes, sheet: str) -> str:
    """The zip member holding ``sheet`` (openpyxl writes sheet1.xml ... in order)."""
    names = load_workbook(io.BytesIO(raw), read_only=True).sheetnames
    return f"xl/worksheets/sheet{names.index(sheet) + 1}.xml"


def rewrite(raw: bytes, part: str, edit: Callable[[bytes], bytes]) -> bytes:
    """``raw`` with zip member ``part`` replaced by ``edit`` of its bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, edit(data) if info.filename == part else data)
    return out.getvalue()


LAUGHS = (
    b'<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]>"
)


def malformed(raw: bytes) -> dict[str, tuple[str, bytes]]:
    """Workbooks whose XML does not read, and the sheet each names ("" the workbook): a
    truncated workbook part, a DTD entity in a sheet, billion laughs in a sheet (openpyxl
    writes its parts without an XML declaration and its strings inline, in <t>)."""

    def entity(decl: bytes, ref: bytes) -> Callable[[bytes], bytes]:
        return lambda data: decl + data.replace(b"<t>", b"<t>" + ref, 1)

    return {
        "truncated": ("", rewrite(raw, "xl/workbook.xml", lambda d: d[: len(d) // 2])),
        "dtd entity": (
            "pools",
            rewrite(
                raw,
                sheet_part(raw, "pools"),
                entity(b'<!DOCTYPE w [<!ENTITY e "pool">]>', b"&e;"),
            ),
        ),
        "billion laughs": (
            "periods",
            rewrite(raw, sheet_part(raw, "periods"), entity(LAUGHS, b"&lol9;")),
        ),
    }


def test_a_cell_at_xfd_on_an_ignored_sheet_costs_nothing(tmp_path: Path) -> None:
    """Every row of the extra sheet has a cell at column XFD: read as tuples (as before),
    its 1,000 rows alone were 1,000 x 16,384 x 8 bytes = 131 MB. The sheet is not read now:
    the scenario reads exactly, in a few MB."""
    raw = far_right(tmp_path / "xfd.xlsx", "extra", 1_000)
    tracemalloc.start()
    try:
        data = read_workbook(io.BytesIO(raw))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6, f"{peak / 1e6:.0f} MB"
    want = Scenario.from_file(tiny_workbook(tmp_path / "honest.xlsx")).to_dict()
    assert Scenario.from_dict(data).to_dict() == want


def test_a_cell_beyond_the_columns_of_a_used_sheet_is_refused_naming_it(tmp_path: Path) -> None:
    raw = far_right(tmp_path / "xfd.xlsx", "pools", 3)
    with pytest.raises(WorkbookTooLarge) as exc:
        read_workbook(io.BytesIO(raw))
    (issue,) = exc.value.issues
    assert issue.path == "pools"
    assert "pools!XFD4 is beyond column FAN (4,096 columns)" in issue.message
    assert isinstance(exc.value, ScenarioError)  # the CLI reports it as any invalid file


def test_rows_and_cells_of_the_sheets_read_are_bounded(tmp_path: Path) -> None:
    """tiny.json's workbook has 2 pools (3 rows), 4 segments, 2 periods: 5-row sheets at
    most. A bound below that names the sheet that crosses it; exactly at it, it reads."""
    path = tiny_workbook(tmp_path / "t.xlsx")
    sheets = {ws.title: (ws.max_row, ws.max_column) for ws in load_workbook(path).worksheets}
    sheets.pop("about")
    rows = max(r for r, _ in sheets.values())
    cells = sum(r * c for r, c in sheets.values())
    read_workbook(path, ReadLimits(rows=rows, cells=cells))  # within: reads

    with pytest.raises(WorkbookTooLarge) as exc:
        read_workbook(path, ReadLimits(rows=rows - 1))
    (issue,) = exc.value.issues
    assert sheets[issue.path][0] == rows and f"more than {rows - 1:,} rows" in issue.message

    with pytest.raises(WorkbookTooLarge) as exc:
        read_workbook(path, ReadLimits(cells=cells - 1))
    assert "over" in exc.value.issues[0].message and "cells" in exc.value.issues[0].message

    # many rows far right on a used sheet (within the columns): the cells bound stops it
    raw = far_right(tmp_path / "wide.xlsx", "segments", 2_000, column=4_000)
    with pytest.raises(WorkbookTooLarge) as exc:
        read_workbook(io.BytesIO(raw))
    assert exc.value.issues[0].path == "segments"
    assert "over 2,000,000 cells" in exc.value.issues[0].message


def test_a_zip_that_unpacks_beyond_the_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    raw = tiny_workbook(tmp_path / "t.xlsx").read_bytes()
    size = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(raw)).infolist())
    read_workbook(io.BytesIO(raw), ReadLimits(unzipped_bytes=size))
    with pytest.raises(WorkbookTooLarge, match=f"unpacks to {size:,} bytes, over {size - 1:,}"):
        read_workbook(io.BytesIO(raw), ReadLimits(unzipped_bytes=size - 1))


@pytest.mark.parametrize("kind", ["truncated", "dtd entity", "billion laughs"])
def test_malformed_xml_is_a_scenario_error_naming_what_does_not_read(
    tmp_path: Path, kind: str
) -> None:
    where, raw = malformed(tiny_workbook(tmp_path / "t.xlsx").read_bytes())[kind]
    with pytest.raises(ScenarioError) as exc:
        read_workbook(io.BytesIO(raw))
    (issue,) = exc.value.issues
    assert issue.path == where
    if where:
        assert issue.message.startswith("the sheet cannot be read: ")
    else:
        assert "the workbook: not a readable Excel workbook: ParseError" in issue.message
    # defusedxml refuses entities before expanding them
    assert ("EntitiesForbidden" in issue.message) == (kind != "truncated")
