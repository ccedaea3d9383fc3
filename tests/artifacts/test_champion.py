"""Recording a champion decision (girml/artifacts/champion.py): the registry's alias, the reason
on the version, and the decision and evaluation added to the run that trained it (a real SQLite
MLflow store)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from mlflow import MlflowClient

from girml.artifacts.champion import apply_decision
from girml.evaluation.gate import Decision
from girml.tracking.registry import CHAMPION_REASON_TAG, champion_info
from girml.tracking.versions import CHALLENGER, CHAMPION, REGISTERED_MODEL, get_alias_version
from tests.evaluation.common import register, tiny_model


def test_a_promotion_moves_champion_and_records_why(
    mlflow_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_id, version = register(tiny_model(0, 0.0), mlflow_store, mlflow_store / "latest")
    eval_json = mlflow_store / "eval.json"
    eval_json.write_text(json.dumps({"gir_score": 1.5}), encoding="utf-8")
    metrics = {"gir_score": 1.5, "champion.promoted": True, "lpips": "not computed"}
    metrics |= {"harm_rate.unseen": float("nan")}
    decision = Decision(True, ("no champion yet: the first model becomes the champion",))
    with caplog.at_level(logging.INFO, logger="girml.artifacts.champion"):
        apply_decision(decision, version, run_id, metrics, None, artifacts=[eval_json])
    assert f"champion decision for version {version}: {CHAMPION}" in caplog.messages

    assert get_alias_version(REGISTERED_MODEL, CHAMPION) == version
    info = champion_info()
    assert info is not None and info.reason == decision.reasons[0]
    run = MlflowClient().get_run(run_id)
    assert run.data.tags["champion.promoted"] == "true"
    assert run.data.tags["champion.alias"] == CHAMPION
    assert run.data.tags["champion.previous_version"] == "none"
    assert run.data.tags["champion.reasons"] == decision.reasons[0]
    # numbers only (booleans as 0/1), NaN left out
    assert {k: v for k, v in run.data.metrics.items() if not k.startswith("system/")} == {
        "gir_score": 1.5,
        "champion.promoted": 1.0,
    }
    logged = MlflowClient().list_artifacts(run_id, "evaluation")
    assert [a.path for a in logged] == ["evaluation/eval.json"]


def test_a_refusal_makes_the_challenger_and_keeps_the_champion(mlflow_store: Path) -> None:
    _, first = register(tiny_model(0, 0.0), mlflow_store, mlflow_store / "a")
    apply_decision(Decision(True, ("first",)), first, _run_of(first), {}, None)
    run_id, second = register(tiny_model(1, 0.2), mlflow_store, mlflow_store / "b")
    reasons = ("gir_score 1.00 dB vs champion 2.00 dB: -1.00 < 0.05", "single-id/noise regressed")
    apply_decision(Decision(False, reasons), second, run_id, {"gir_score": 1.0}, first)

    assert get_alias_version(REGISTERED_MODEL, CHAMPION) == first
    assert get_alias_version(REGISTERED_MODEL, CHALLENGER) == second
    version = MlflowClient().get_model_version(REGISTERED_MODEL, str(second))
    assert CHAMPION_REASON_TAG not in (version.tags or {})  # only a champion says why
    tags = MlflowClient().get_run(run_id).data.tags
    assert tags["champion.promoted"] == "false" and tags["champion.alias"] == CHALLENGER
    assert tags["champion.previous_version"] == str(first)
    assert tags["champion.reasons"] == "\n".join(reasons)


def _run_of(version: int) -> str:
    return MlflowClient().get_model_version(REGISTERED_MODEL, str(version)).run_id
