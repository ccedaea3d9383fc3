"""girml.interpret.sections: a report section as plain data, and how values are displayed."""

from __future__ import annotations

import math

from girml.interpret.sections import Figure, Paragraph, Section, Table, Unavailable, format_value


def test_section_keeps_its_blocks_in_order_and_its_figures() -> None:
    sec = Section("k", "Title")
    sec.para("first")
    sec.figure("a.png", b"a", "caption a")
    sec.table(["x"], [[1.0]])
    sec.figure("b.png", b"b", "caption b")
    assert [type(b) for b in sec.blocks] == [Paragraph, Figure, Table, Figure]
    assert [b.kind for b in sec.blocks] == ["paragraph", "figure", "table", "figure"]
    assert sec.figures == {"a.png": b"a", "b.png": b"b"}
    assert sec.data == {}  # blocks are display only


def test_unavailable_records_the_reason_in_the_data() -> None:
    sec = Section("k", "Title")
    sec.data["n"] = 3
    sec.unavailable("metrics/eval.json is missing")
    assert sec.data == {"n": 3, "available": False, "reason": "metrics/eval.json is missing"}
    assert sec.blocks == [Unavailable("metrics/eval.json is missing")]


def test_sections_do_not_share_their_lists() -> None:
    first, second = Section("a", "A"), Section("b", "B")
    first.para("only in a")
    first.data["x"] = 1
    assert second.blocks == [] and second.data == {}


def test_format_value() -> None:
    assert format_value(1.0) == "1.000" and format_value(2) == "2"
    assert format_value(None) == format_value(math.inf) == format_value(math.nan) == "-"
    assert format_value(False) == "false"
    assert format_value(["a", 0.5, None]) == "a; 0.500; -"
    assert format_value(("x", True)) == "x; true"
