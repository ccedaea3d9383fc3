"""girml.data.validation_page: the validation report page, rendered from result.json alone.

The page that the validate stage really writes is opened in a browser in test_validate.py."""

from __future__ import annotations

import re

import pytest

from girml.data.validation_page import describe, render_validation_page, rows_checked


def _record(table: str, expectation: str, success: bool = True, **extra: object) -> dict:
    base = {
        "table": table,
        "expectation": expectation,
        "kwargs": {"column": "split", "value_set": ["train", "val"]},
        "success": success,
        "element_count": 10,
        "unexpected_count": 0 if success else 2,
        "observed_value": None,
        "examples": [] if success else [{"id": "a1"}, {"id": "b2"}],
    }
    return base | extra


def _result(records: list[dict], rows: dict | None = None) -> dict:
    return {
        "success": all(r["success"] for r in records),
        "rows": rows or {"manifest": 10, "train_pairs": 24},
        "expectations": records,
    }


@pytest.mark.parametrize(
    ("expectation", "kwargs", "words"),
    [
        ("expect_column_values_to_be_in_set", {"column": "split", "value_set": ["a", "b"]},
         "split is one of: a, b"),
        ("expect_column_values_to_not_be_in_set", {"column": "family", "value_set": ["rain"]},
         "family is none of: rain"),
        ("expect_column_values_to_not_be_null", {"column": "id"}, "id is never empty"),
        ("expect_column_values_to_be_unique", {"column": "id"}, "id is unique"),
        ("expect_column_pair_values_to_be_equal", {"column_A": "w", "column_B": "aw"},
         "w equals aw"),
        ("expect_column_pair_values_a_to_be_greater_than_b",
         {"column_A": "psnr", "column_B": "psnr_low", "or_equal": True}, "psnr ≥ psnr_low"),
        ("expect_column_pair_values_a_to_be_greater_than_b",
         {"column_A": "a", "column_B": "b", "or_equal": False}, "a > b"),
        ("expect_column_values_to_be_between", {"column": "height", "min_value": 96.0},
         "height ≥ 96"),
        ("expect_column_values_to_be_between",
         {"column": "x", "min_value": 1, "max_value": 2.5}, "x ≥ 1 and ≤ 2.5"),
        ("expect_table_row_count_to_be_between",
         {"min_value": 1, "row_condition": "a > 1", "condition_parser": "pandas"},
         "expect_table_row_count_to_be_between(min_value=1)"),
    ],
)  # fmt: skip
def test_describe_says_what_each_expectation_checks(
    expectation: str, kwargs: dict, words: str
) -> None:
    assert describe(expectation, kwargs) == words


def test_rows_checked_reads_both_forms_of_a_row_condition() -> None:
    pandas = {"pass_through_filter": 'family != "clean"', "type": "pass_through"}
    assert rows_checked({"row_condition": pandas}) == 'rows where family != "clean"'
    assert rows_checked({"row_condition": "steps > 0"}) == "rows where steps > 0"
    assert rows_checked({"column": "id"}) == "every row"


def test_every_expectation_is_listed_under_its_table_with_its_status() -> None:
    records = [
        _record("manifest", "expect_column_values_to_be_in_set"),
        _record("train_pairs", "expect_column_values_to_be_in_set", success=False),
        _record("train_pairs", "expect_column_values_to_be_unique", kwargs={"column": "pair"}),
    ]
    page = render_validation_page(_result(records))
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</body></html>")
    assert "<title>GIR data validation: FAILED</title>" in page
    assert "Validation FAILED: 1 of 3 expectations broken." in page
    sections = re.findall(r'<section id="([^"]+)">', page)
    assert sections == ["manifest", "train_pairs"]
    train = page.split('<section id="train_pairs">', 1)[1]
    assert train.count("<tr><td class=") == 2 and train.count("✗ broken") == 1
    assert "2 of 10 rows unexpected" in train and "id=a1, id=b2" in train
    summary = page.split("<section", 1)[0]
    assert '<tr><td><a href="#train_pairs">train_pairs</a></td><td class="n">24</td>' in summary
    assert "<script" not in page and "<link" not in page and "url(" not in page
    assert not re.search(r'(?:src|href)="(?!#)', page)  # nothing loaded, links stay in the page


def test_a_passing_result_errors_and_observed_values_are_shown_and_values_escaped() -> None:
    records = [
        _record("manifest", "expect_column_values_to_be_in_set",
                kwargs={"column": "split", "value_set": ["<script>x</script>"]}),
        _record("manifest", "expect_table_row_count_to_be_between", kwargs={"min_value": 1},
                element_count=None, unexpected_count=None, observed_value=10),
        _record("other", "expect_column_values_to_not_be_null", success=False,
                kwargs={"column": "nope"}, element_count=None, unexpected_count=None,
                error='The column "nope" does not exist.'),
    ]  # fmt: skip
    page = render_validation_page(_result(records, rows={"manifest": 10}))
    assert "<script>x" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "observed: 10" in page
    assert "error: The column &quot;nope&quot; does not exist." in page
    assert '<section id="other">' in page and "?" in page.split('<section id="other">')[1]
    passing = render_validation_page(_result(records[:2], rows={"manifest": 10}))
    assert "<title>GIR data validation: passed</title>" in passing
    assert "Validation passed: all 2 expectations met." in passing


def test_a_result_without_its_expectations_is_refused() -> None:
    with pytest.raises(ValueError, match="validation result lacks expectations"):
        render_validation_page({"success": True, "rows": {}, "failures": []})
