"""Before ``girml pull`` fetches anything (pipelines/pull_checks.py): arguments that cannot work
are refused in one line, exit code 2, and the S3 settings it relies on are set, the user's kept.

Real parts: the ``girml`` command in a folder marked as a DVC project (a ``.dvc`` folder) and in a
bare folder; nothing is downloaded, no DVC or MLflow call is made.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from girml.core.errors import EX_BAD_INPUT
from pipelines.cli import app
from pipelines.pull_checks import (
    PullArgumentError,
    PullError,
    check_out,
    repo_target,
    set_s3_env_defaults,
)

pytestmark = pytest.mark.usefixtures("restore_environ")  # pull sets S3 defaults


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "sub/../../../outside"])
def test_pull_data_outside_the_project_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    project = tmp_path / "project"
    (project / ".dvc").mkdir(parents=True)
    (project / "data").mkdir()
    monkeypatch.chdir(project / "data")
    result = CliRunner().invoke(app, ["pull", "data", target])
    line = _one_error_line(result.output)
    assert result.exit_code == EX_BAD_INPUT
    assert line == (
        f"error: TARGET {target!r} is outside the DVC project {project.resolve()}: give a path "
        "the project tracks, e.g. data/bench/single-id (or pass --repo to get from another one)"
    )


@pytest.mark.parametrize("target", ["../etc/passwd", "/etc/passwd", ""])
def test_pull_data_from_a_repo_needs_a_path_inside_it(tmp_path: Path, target: str) -> None:
    with pytest.raises(PullArgumentError, match="must be a path inside the repository"):
        repo_target(target)
    assert repo_target("data/bench/single-id") == "data/bench/single-id"


@pytest.mark.parametrize(
    "args",
    [
        ["model", "-o", ".", "--force"],
        ["model", "models:/gir-restorer/1", "-o", "..", "--force"],
        ["reports", "0123abcd", "-o", ".", "--force"],
    ],
)
def test_pull_into_the_current_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(app, ["pull", *args])
    line = _one_error_line(result.output)
    assert result.exit_code == EX_BAD_INPUT
    out = args[args.index("-o") + 1]
    assert line == (
        f"error: --out {out}: the output folder is replaced as a whole, so it cannot be the "
        "current folder or one above it; give a new folder, e.g. --out pulled"
    )


def test_check_out_refuses_a_file_and_a_full_folder_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(PullArgumentError, match="is a file; give a folder"):
        check_out(Path("a-file"), force=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.txt").write_text("x")
    with pytest.raises(PullError, match="pass --force") as info:
        check_out(Path("full"), force=False)
    assert info.value.code == 1
    check_out(Path("full"), force=True)
    check_out(Path("new"), force=False)


def test_set_s3_env_defaults_keeps_user_settings() -> None:
    env = {"AWS_ENDPOINT_URL": "http://minio:9000", "AWS_MAX_ATTEMPTS": "9"}
    added = set_s3_env_defaults(env)
    assert added == {"AWS_RETRY_MODE": "standard", "MLFLOW_S3_ENDPOINT_URL": "http://minio:9000"}
    assert env["AWS_MAX_ATTEMPTS"] == "9"
    assert set_s3_env_defaults(env) == {}
    assert set_s3_env_defaults({}) == {"AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "5"}
