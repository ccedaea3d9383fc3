"""Running DVC (pipelines/dvc_run.py): the real ``dvc`` CLI, its failures as :class:`DvcError`,
and which of them are worth retrying."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from girml.core.retry import is_transient
from pipelines.dvc_run import DvcError, run_dvc, stream_dvc


def test_connection_problems_are_transient_and_dvc_usage_errors_are_not() -> None:
    assert is_transient(DvcError(["pull"], 1, "ERROR: Could not connect to the endpoint URL"))
    assert not is_transient(DvcError(["pull"], 1, "ERROR: 'x' does not exist as an output"))


def test_run_dvc_returns_the_output_and_a_failure_names_the_command(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    run_dvc(["init", "-q"], tmp_path)
    assert (tmp_path / ".dvc" / "config").is_file()
    run_dvc(["config", "core.autostage", "true"], tmp_path)
    assert run_dvc(["config", "core.autostage"], tmp_path).strip() == "true"
    with pytest.raises(DvcError) as info:
        run_dvc(["pull", "no/such/target"], tmp_path)
    assert info.value.args_ == ["pull", "no/such/target"] and info.value.returncode != 0
    assert str(info.value).startswith("`dvc pull no/such/target` failed (exit code ")
    assert info.value.output


def test_stream_dvc_yields_lines_and_raises_at_the_end(tmp_path: Path) -> None:
    lines = list(stream_dvc(["version"], tmp_path, None))
    assert any(line.startswith("DVC version") for line in lines)
    with pytest.raises(DvcError) as info:
        list(stream_dvc(["no-such-command"], tmp_path, None))
    assert info.value.returncode != 0
