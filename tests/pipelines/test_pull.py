"""The ``girml pull`` verbs (pipelines/pull.py): what they report, and every failure as one
line with its exit code. The pulls themselves: tests/pipelines/test_pull_mlflow.py and
test_pull_dvc.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from pipelines import pull
from pipelines.cli import app
from pipelines.dvc_run import DvcError
from pipelines.pull_verify import Pulled
from tests.pipelines.pull_common import runner

pytestmark = pytest.mark.usefixtures("restore_environ")


def test_the_pull_group_has_its_three_verbs() -> None:
    group = typer.main.get_command(app).get_command(None, "pull")  # type: ignore[attr-defined]
    assert group.list_commands(None) == ["model", "reports", "data"]


def test_a_pull_reports_its_source_masked_its_files_and_its_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = Pulled("https://user:tok3n@git.example.org/repo:data/bench", tmp_path / "b", 3, 2)
    monkeypatch.setattr(pull, "pull_data", lambda *args: done)
    result = runner.invoke(app, ["pull", "data", "data/bench"])
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"pulled https://***@git.example.org/repo:data/bench into {tmp_path / 'b'}: 3 files "
        "md5-verified after 2 attempts\n"
    )


def test_a_dvc_failure_is_one_line_with_dvcs_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise DvcError(["pull", "data/bench"], 255, "ERROR: failed to pull data from the cloud")

    monkeypatch.setattr(pull, "pull_data", fail)
    result = runner.invoke(app, ["pull", "data", "data/bench"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == "error: `dvc pull data/bench` failed (exit code 255):"
    assert "Traceback" not in result.output
