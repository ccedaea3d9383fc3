"""``girml validate`` (girml/stages/validate.py) in a tiny synthesized project: it checks the data
with ``params.yaml: validate, degradations`` and the two keys it borrows (``collect.min_size``,
``synthesize.unseen_content_category``), prints the summary and where the report is, and exits 1
after the summary when a check fails.

Real parts: the ``girml validate`` command, Great Expectations, the synthesize stage's data.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from tests.factories import synthesize_tiny, tiny_params, write_params

RESULT = "result: reports/validation/result.json  report: reports/validation/index.html"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_tiny(tmp_path_factory.mktemp("data"))


@pytest.fixture
def project(synthesized: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (the working directory) with the tiny data/ and params."""
    shutil.copytree(synthesized, tmp_path / "data")
    write_params(tmp_path / "params.yaml", tiny_params())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_valid_data_passes_and_says_where_the_report_is(project: Path) -> None:
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("validation passed: ") and lines[-1] == RESULT
    report = json.loads((project / "reports/validation/result.json").read_text())
    assert report["success"] is True
    assert (project / "reports/validation/index.html").is_file()


@pytest.mark.parametrize(
    ("section", "key", "value", "broken"),
    [
        ("collect", "min_size", 100, "column=height, min_value=100"),  # the photos are 96x128
        # a category the training pairs hold, as if it were the held-out one
        ("synthesize", "unseen_content_category", "cat1", "value_set=['cat1']"),
    ],
)
def test_a_borrowed_key_is_checked_and_a_failure_exits_1_after_the_summary(
    section: str, key: str, value: object, broken: str, project: Path
) -> None:
    params = tiny_params()
    params[section][key] = value
    write_params(project / "params.yaml", params)
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("validation FAILED: 1 of ") and lines[-1] == RESULT
    assert broken in lines[1]
    assert not [line for line in lines if line.startswith("error:")]  # the summary said it
    report = json.loads((project / "reports/validation/result.json").read_text())
    assert report["success"] is False and report["failed_expectations"] == 1
