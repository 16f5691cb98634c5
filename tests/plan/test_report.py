"""The text summary: every table's columns line up whatever the length of the ids."""

from __future__ import annotations

import re

from allocator import Scenario, solve
from allocator.plan.report import summary
from allocator.plan.text import table

LONG = "pool-4-TPU-like-us-east-with-a-name-longer-than-any-column"


def tables(text: str) -> list[tuple[str, list[str]]]:
    """(rule, rows) of every table: a line of dashes separated by two spaces, the header
    above it and the rows until a blank or unindented line."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if re.fullmatch(r"\s*-+(  -+)*", line):
            rows = [lines[i - 1]]
            for row in lines[i + 1 :]:
                if not row.strip() or not row.startswith(" "):
                    break
                rows.append(row)
            out.append((line, rows))
    return out


def assert_aligned(rule: str, rows: list[str]) -> None:
    """Every cell sits inside its column: the two spaces between columns stay blank."""
    gaps = [m.start() for m in re.finditer(r"  (?=-)", rule)]
    assert gaps, rule
    for row in rows:
        assert len(row) <= len(rule), (rule, row)
        for g in gaps:
            assert row[g : g + 2].strip() == "", (rule, row)


def test_long_pool_ids_keep_every_summary_table_aligned(tiny_dict) -> None:
    tiny_dict["pools"][1]["id"] = LONG
    text = summary(solve(Scenario.from_dict(tiny_dict)))
    found = tables(text)
    assert len(found) >= 4  # kinds, pools, prices, binding
    for rule, rows in found:
        assert_aligned(rule, rows)
    # the period is its own column, never glued to the pool id
    assert re.search(re.escape(LONG) + r"  +P1", text)
    assert LONG + "P1" not in text


def test_table_right_aligns_numbers_and_formats_thousands() -> None:
    lines = table(["id", "GPUs"], [["a", 1234567.0], ["bb", None]])
    assert lines == ["id       GPUs", "--  ---------", "a   1,234,567", "bb        n/a"]
