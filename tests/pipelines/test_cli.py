"""The installed ``girml`` (pipelines/cli.py): the library's verbs, then the verbs that drive
Prefect, DVC and the local stack."""

from __future__ import annotations

import tomllib
from pathlib import Path

import typer

from pipelines.cli import app
from tests.test_cli import VERBS

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_command_is_this_app() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["girml"] == "pipelines.cli:app"


def test_the_orchestration_verbs_follow_the_librarys() -> None:
    names = typer.main.get_command(app).list_commands(None)  # type: ignore[attr-defined]
    assert names[: len(VERBS)] == VERBS
    assert {"convert-model", "flow", "deploy", "stack", "pull", "remote"} <= set(
        names[len(VERBS) :]
    )
