"""What every verb shares (girml/cli_common.py): one-line errors and their exit codes, the
params check before any work, the stage lock and the service probe."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from girml.cli_common import (
    DEBUG_ENV,
    LOCK_DIR,
    ParamsOpt,
    fail,
    locked,
    stage,
    uses_mlflow,
)
from girml.config import ConfigError
from girml.core.errors import EX_CANTCREAT, EX_UNAVAILABLE
from girml.stages.contract import StageFailed

ROOT = Path(__file__).resolve().parents[1]


def _run(verb, *args: str, env: dict[str, str] | None = None):
    app = typer.Typer()
    app.command()(verb)
    app.command("other")(lambda: None)  # two commands: the verb is named on the command line
    return CliRunner().invoke(app, [verb.__name__.replace("_", "-"), *args], env=env)


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (ConfigError("train.lr: bad"), 2, "error: train.lr: bad"),
        (FileNotFoundError("data/pairs missing"), 1, "error: data/pairs missing"),
        (KeyError("no such key"), 1, "error: no such key"),
        (
            FileNotFoundError(2, "No such file or directory", "data/clean/manifest.csv"),
            1,
            "error: data/clean/manifest.csv: No such file or directory\n",
        ),
        (ValueError("'quoted' at both ends'"), 1, "error: 'quoted' at both ends'\n"),
        (StageFailed("validation FAILED", 3), 3, "error: validation FAILED"),
        (PermissionError(13, "Permission denied", "out/x"), EX_CANTCREAT, "error: "),
    ],
)
def test_a_known_failure_is_one_line_and_its_exit_code(
    exc: Exception, code: int, line: str
) -> None:
    @stage
    def verb() -> None:
        raise exc

    result = _run(verb)
    assert result.exit_code == code, result.output
    assert result.output.startswith(line) and result.output.count("\n") == 1
    assert "Traceback" not in result.output


def test_a_stage_that_already_said_what_failed_exits_quietly() -> None:
    @stage
    def verb() -> None:
        raise StageFailed("", 4)

    result = _run(verb)
    assert result.exit_code == 4 and result.output == ""


def test_a_bug_keeps_its_traceback() -> None:
    @stage
    def verb() -> None:
        raise ZeroDivisionError("a bug")

    result = _run(verb)
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)


def test_the_whole_params_file_is_checked_before_the_verb_runs(tmp_path: Path) -> None:
    ran = []

    @stage
    def verb(params: ParamsOpt = Path("params.yaml")) -> None:
        ran.append(params)

    bad = tmp_path / "params.yaml"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["interpret"]["lam_stepz"] = 3
    bad.write_text(yaml.safe_dump(params))
    result = _run(verb, "--params", str(bad))
    assert result.exit_code == 2 and "lam_stepz" in result.output and not ran
    assert _run(verb, "--params", str(ROOT / "params.yaml")).exit_code == 0 and ran


def test_fail_masks_url_credentials() -> None:
    def verb() -> None:
        fail("cannot reach https://user:s3cret@host/x", 9)

    result = _run(verb)
    assert result.exit_code == 9 and "s3cret" not in result.output and "***" in result.output


def test_the_debug_variable_prints_the_traceback_and_keeps_the_exit_code() -> None:
    @stage
    def verb() -> None:
        raise PermissionError(13, "Permission denied", "out/x")

    result = _run(verb, env={DEBUG_ENV: "1"})
    assert result.exit_code == EX_CANTCREAT and "Traceback" in result.output
    assert result.output.rstrip().splitlines()[-1].startswith("error: ")


def test_the_lock_is_per_stage_and_per_rank(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    held = []

    @locked("demo")
    def verb(wait: bool = False) -> None:
        held.append(sorted(p.name for p in LOCK_DIR.iterdir()))

    assert _run(verb).exit_code == 0
    monkeypatch.setenv("RANK", "1")
    assert _run(verb).exit_code == 0
    assert held == [["demo.lock"], ["demo.lock", "demo.rank1.lock"]]


def test_a_tracking_server_that_does_not_answer_stops_the_verb_before_it_starts(
    free_tcp_port: int,
) -> None:
    ran = []

    @stage
    @uses_mlflow
    def verb() -> None:
        ran.append(True)

    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_tcp_port}"}
    result = _run(verb, env=env)
    assert result.exit_code == EX_UNAVAILABLE and not ran
    assert f"127.0.0.1:{free_tcp_port}" in result.output
