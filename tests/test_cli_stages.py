"""The stage verbs (girml/cli_stages.py): each runs its module in girml.stages with the
params file and its own arguments, after the params check, under its lock."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import girml.stages
from girml.cli import app

ROOT = Path(__file__).resolve().parents[1]
PARAMS = str(ROOT / "params.yaml")


def _fake_stage(monkeypatch: pytest.MonkeyPatch, module: str) -> list[tuple[Any, ...]]:
    """Put a recording ``run`` in place of ``girml.stages.<module>`` (not imported)."""
    calls: list[tuple[Any, ...]] = []

    def run(*args: Any, **kwargs: Any) -> None:
        calls.append((*args, kwargs))

    fake = types.ModuleType(f"girml.stages.{module}")
    fake.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, f"girml.stages.{module}", fake)
    monkeypatch.setattr(girml.stages, module, fake, raising=False)
    return calls


@pytest.mark.parametrize(
    ("args", "module", "extra"),
    [
        (["collect"], "collect", ()),
        (["synthesize"], "synthesize", ()),
        (["validate"], "validate", ()),
        (["train"], "train", ()),
        (["tune"], "tune", ()),
        (["specialists"], "specialists", ()),
        (["evaluate"], "evaluate", ()),
        (["approach", "unified"], "approach", ("unified",)),
        (["approach-eval", "unified"], "approach_eval", ("unified",)),
    ],
)
def test_a_stage_verb_runs_its_stage_module_with_the_params(
    args: list[str],
    module: str,
    extra: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the locks go under .girml/locks here
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    calls = _fake_stage(monkeypatch, module)
    result = CliRunner().invoke(app, [*args, "--params", PARAMS])
    assert result.exit_code == 0, result.output
    [(params, *rest, kwargs)] = calls
    if extra:  # the approach verbs: (params, name, echo)
        assert rest[0] == extra[0]
    assert params == Path(PARAMS) and callable(rest[-1]) and kwargs == {}


def test_interpret_and_study_pass_their_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    interpret = _fake_stage(monkeypatch, "interpret")
    study = _fake_stage(monkeypatch, "study")
    out = tmp_path / "report"
    args = ["interpret", "--params", PARAMS, "--model", "release", "--out", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert interpret[0][-1] == {"model": "release", "out": out}
    assert CliRunner().invoke(app, ["study", "--params", PARAMS, "--no-mlflow"]).exit_code == 0
    assert study[0][-1] == {"log_mlflow": False}


def test_a_bad_params_file_stops_the_verb_before_its_stage_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_stage(monkeypatch, "validate")
    bad = tmp_path / "params.yaml"
    bad.write_text(Path(PARAMS).read_text().replace("\ntrain:\n", "\ntrain:\n  stepz: 3\n", 1))
    result = CliRunner().invoke(app, ["validate", "--params", str(bad)])
    assert result.exit_code == 2 and "train.stepz" in result.output
    assert calls == []
