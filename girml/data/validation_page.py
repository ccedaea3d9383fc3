"""The data validation report as one self-contained HTML page, rendered from ``result.json``.

Great Expectations' Data Docs load bootstrap, jQuery and their icons from CDNs, so offline they
show little. This page needs nothing but itself: inline CSS, no scripts, no images, no fonts.
It holds the verdict, one summary row per table, then one section per table with every
expectation in suite order: its status, what it checks in words, the rows it applies to, what
was observed and, when it broke, example rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

TABLES = {
    "manifest": "one row per clean photo of data/clean/manifest.csv, with what its file holds",
    "train_pairs": "one row per training pair (data/pairs/train)",
    "val_pairs": "one row per validation pair (data/pairs/val)",
    "bench_pairs": "one row per benchmark pair (data/bench/&lt;suite&gt;/&lt;family&gt;)",
    "train_steps": "one row per numeric parameter of each training recipe's steps",
    "recipe_steps": "one row per numeric parameter of every recipe's steps (train, val, bench)",
}

_CSS = """body{font-family:sans-serif;max-width:1300px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #aaa}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
td,th{border:1px solid #bbb;padding:3px 8px;text-align:left;vertical-align:top}th{background:#eee}
section table{width:100%}td.n{text-align:right}
.ok{color:#161;font-weight:bold}.bad{color:#a00;font-weight:bold}td.s{white-space:nowrap}
.verdict{font-size:18px;padding:.6em 1em;border-left:6px solid}
.verdict.ok{background:#eef7ee;border-color:#393}.verdict.bad{background:#fbeeee;border-color:#c33}
code{font-size:13px}.note{font-size:13px;color:#555}"""


def _text(value: Any) -> str:
    """A kwarg or observed value as short plain text (lists without brackets and quotes)."""
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def describe(expectation: str, kwargs: Mapping[str, Any]) -> str:
    """What an expectation checks, in words (plain text), e.g. ``split is one of train, val``.

    Args:
        expectation: GX's snake-case type, e.g. ``expect_column_values_to_be_in_set``.
        kwargs: its arguments as recorded in ``result.json``.

    Returns:
        A sentence; an expectation type not listed here is shown with its arguments.
    """
    col, a, b = kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B")
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    values = _text(kwargs.get("value_set", []))
    words = {
        "expect_column_values_to_not_be_null": f"{col} is never empty",
        "expect_column_values_to_be_unique": f"{col} is unique",
        "expect_column_values_to_be_in_set": f"{col} is one of: {values}",
        "expect_column_values_to_not_be_in_set": f"{col} is none of: {values}",
        "expect_column_pair_values_to_be_equal": f"{a} equals {b}",
        "expect_column_pair_values_a_to_be_greater_than_b": (
            f"{a} {'≥' if kwargs.get('or_equal') else '>'} {b}"
        ),
    }
    if expectation == "expect_column_values_to_be_between":
        bounds = [f"≥ {_text(lo)}"] * (lo is not None) + [f"≤ {_text(hi)}"] * (hi is not None)
        return f"{col} {' and '.join(bounds) or 'is any value'}"
    if expectation in words:
        return words[expectation]
    shown = {k: v for k, v in kwargs.items() if k not in ("row_condition", "condition_parser")}
    return f"{expectation}({_text(shown)})"


def rows_checked(kwargs: Mapping[str, Any]) -> str:
    """Which rows an expectation applies to: ``every row`` or ``rows where <condition>``
    (GX records a pandas row condition as a string or as ``{"pass_through_filter": ...}``)."""
    condition = kwargs.get("row_condition")
    if isinstance(condition, Mapping):
        condition = condition.get("pass_through_filter") or _text(condition)
    return f"rows where {condition}" if condition else "every row"


def _observed(record: Mapping[str, Any]) -> str:
    """What the check found: the error, the unexpected rows out of the rows checked, or the
    observed value."""
    if record.get("error"):
        return f"error: {record['error']}"
    unexpected, count = record.get("unexpected_count"), record.get("element_count")
    if unexpected is not None and count is not None:
        return f"{unexpected} of {count} rows unexpected"
    if record.get("observed_value") is not None:
        return f"observed: {_text(record['observed_value'])}"
    return ""


def _expectation_row(record: Mapping[str, Any]) -> str:
    kwargs = record.get("kwargs", {})
    status = (
        '<td class="s ok">✓ met</td>' if record["success"] else '<td class="s bad">✗ broken</td>'
    )
    examples = "" if record["success"] else _text(record.get("examples", []))
    cells = [
        escape(describe(record["expectation"], kwargs)),
        escape(rows_checked(kwargs)),
        escape(_observed(record)),
        escape(examples),
        f"<code>{escape(record['expectation'])}</code>",
    ]
    return f"<tr>{status}{''.join(f'<td>{c}</td>' for c in cells)}</tr>"


def _table_section(name: str, rows: Any, records: Sequence[Mapping[str, Any]]) -> str:
    header = "".join(
        f"<th>{h}</th>"
        for h in ("status", "expectation", "rows checked", "observed", "examples", "GX type")
    )
    body = "\n".join(_expectation_row(r) for r in records)
    return (
        f'<section id="{escape(name)}"><h2>{escape(name)}</h2>\n'
        f'<p class="note">{TABLES.get(name, "")}; {escape(str(rows))} rows.</p>\n'
        f"<table>\n<tr>{header}</tr>\n{body}\n</table></section>"
    )


def render_validation_page(result: Mapping[str, Any]) -> str:
    """The validation report page from the validate stage's result.

    Args:
        result: what ``reports/validation/result.json`` holds: ``success``, ``rows`` (table ->
            row count) and ``expectations`` (one record per expectation: ``table``,
            ``expectation``, ``kwargs``, ``success``, ``element_count``, ``unexpected_count``,
            ``observed_value``, ``examples``, optionally ``error``).

    Returns:
        The HTML text: inline CSS, no scripts, nothing loaded from anywhere.

    Raises:
        ValueError: ``result`` lacks the keys above.
    """
    missing = [k for k in ("success", "rows", "expectations") if k not in result]
    if missing:
        raise ValueError(f"validation result lacks {', '.join(missing)}")
    # tables in suite order (the list's), whatever order the ``rows`` mapping has
    names = [r["table"] for r in result["expectations"]] + list(result["rows"])
    records: dict[str, list[Mapping[str, Any]]] = {name: [] for name in dict.fromkeys(names)}
    for record in result["expectations"]:
        records[record["table"]].append(record)
    broken = [r for r in result["expectations"] if not r["success"]]
    total = len(result["expectations"])
    verdict = (
        f"Validation passed: all {total} expectations met."
        if result["success"]
        else f"Validation FAILED: {len(broken)} of {total} expectations broken."
    )
    summary = "\n".join(
        f'<tr><td><a href="#{escape(name)}">{escape(name)}</a></td>'
        f'<td class="n">{escape(str(result["rows"].get(name, "")))}</td>'
        f'<td class="n">{len(recs)}</td>'
        f'<td class="n">{sum(bool(r["success"]) for r in recs)}</td>'
        f'<td class="n{" bad" if any(not r["success"] for r in recs) else ""}">'
        f"{sum(not r['success'] for r in recs)}</td></tr>"
        for name, recs in records.items()
    )
    sections = "\n".join(
        _table_section(name, result["rows"].get(name, "?"), recs) for name, recs in records.items()
    )
    css_class = "ok" if result["success"] else "bad"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f"<title>GIR data validation: {'passed' if result['success'] else 'FAILED'}</title>\n"
        f"<style>\n{_CSS}\n</style></head><body>\n<h1>GIR data validation</h1>\n"
        f'<p class="verdict {css_class}">{escape(verdict)}</p>\n'
        '<p class="note">The validate stage builds one table per kind of data and checks it '
        "with Great Expectations; the same outcome, as JSON, is in "
        "<code>reports/validation/result.json</code>.</p>\n"
        "<table>\n<tr><th>table</th><th>rows</th><th>expectations</th><th>met</th>"
        f"<th>broken</th></tr>\n{summary}\n</table>\n{sections}\n</body></html>\n"
    )
