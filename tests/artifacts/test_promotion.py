"""The evaluate stage's work as one call (girml/artifacts/promotion.py): the model, the
baselines, a specialist and the champion scored on a tiny synthesized bench and the decision
written; then recorded in MLflow as the stage does (``apply_decision``).

Real parts throughout: a bench written by the synthesize stage, the real baselines and NIQE, a
specialist trained and stored as the specialists stage does, a temporary SQLite MLflow store
with registered models.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from girml.artifacts.champion import apply_decision
from girml.artifacts.promotion import EvaluationResult, evaluate_and_promote
from girml.artifacts.specialists import load_specialists, save_specialists
from girml.artifacts.store import save_model_dir
from girml.config import DegradationsConfig
from girml.evaluation.bench import Bench
from girml.evaluation.scores import MAX_PSNR
from girml.tracking.versions import CHALLENGER, CHAMPION, REGISTERED_MODEL, get_alias_version
from girml.training.specialists import train_specialists
from tests.evaluation.common import (
    CFG,
    HARM_KEYS,
    N_DEGRADED_GROUPS,
    ROW_KEYS,
    TINY,
    TINY_GROUPS,
    TINY_TRAIN,
    TRAIN_JSON,
    read_csv,
    register,
    tiny_model,
)


def _record(result: EvaluationResult) -> None:
    """Record the decision as the evaluate stage does (girml/stages/evaluate.py)."""
    apply_decision(
        result.decision,
        result.registered.version,
        result.registered.run_id,
        result.metrics,
        result.previous,
        artifacts=result.attachments,
    )


def test_evaluate_and_promote_end_to_end(
    data: Path, spec: DegradationsConfig, registry: Path
) -> None:
    metrics_dir, plots_dir = registry / "metrics", registry / "plots"
    model_dir = registry / "models" / "latest"
    cfg = CFG.model_copy(update={"specialists": True, "specialist_families": ["noise"]})
    run1, v1 = register(tiny_model(0, 0.0), registry, model_dir)
    # the specialists stage's part: train, write models/specialists; evaluate loads it
    trained = train_specialists(TINY, TINY_TRAIN, spec, ["noise"], data / "pairs", registry / "c")
    save_specialists(trained, TINY, TINY_TRAIN, registry / "models" / "specialists")
    with pytest.raises(ValueError, match=r"evaluate\.specialists is on: pass the specialists"):
        evaluate_and_promote(
            model_dir, data / "bench", data / "clean", cfg, metrics_dir, plots_dir, registry
        )
    first = evaluate_and_promote(
        model_dir,
        data / "bench",
        data / "clean",
        cfg,
        metrics_dir,
        plots_dir,
        registry,
        load_specialists(registry / "models" / "specialists"),
        train_metrics=registry / TRAIN_JSON,
    )
    # it decides and writes, and records nothing: the stage does that
    assert (first.registered.run_id, first.registered.version, first.previous) == (run1, v1, None)
    assert first.attachments == [metrics_dir / "eval.json", metrics_dir / "per_family.csv"]
    assert get_alias_version(REGISTERED_MODEL, CHAMPION) is None
    assert "champion.promoted" not in MlflowClient().get_run(run1).data.tags
    _record(first)
    assert first.decision.promoted and get_alias_version(REGISTERED_MODEL, CHAMPION) == v1
    # the specialists' rows come right after the baselines', as when evaluate trained them
    assert list(dict.fromkeys(r["method"] for r in first.rows)) == [
        "model",
        "identity",
        "deblock",
        "gamma",
        "specialist:noise",
    ]
    assert "version 1 promoted to @champion" in first.summary()
    run = MlflowClient().get_run(run1)
    assert run.data.tags["champion.promoted"] == "true"
    assert run.data.tags["champion.previous_version"] == "none"
    assert run.data.metrics["gir_score"] == pytest.approx(first.metrics["gir_score"])
    for key in HARM_KEYS:  # the harm keys reach MLflow too
        assert run.data.metrics[key] == pytest.approx(first.metrics[key])
    assert "harm rate: single-id " in first.summary() and "clean PSNR-Y: single-id " in (
        first.summary()
    )
    logged = MlflowClient().list_artifacts(run1, "evaluation")
    assert sorted(a.path for a in logged) == ["evaluation/eval.json", "evaluation/per_family.csv"]

    result = json.loads((metrics_dir / "eval.json").read_text())
    suites = list(TINY_GROUPS)
    headline_keys = {
        f"{m}.{s}" for m in ("psnr_y", "ssim_y", "psnr_gain", "niqe") for s in suites
    } | {"gir_score", "generalization_gap"}
    assert headline_keys | HARM_KEYS <= set(result)
    assert 0 <= result["harm_rate.single-id"] <= 1
    assert result["harm.clean_psnr_y.single-id"] <= MAX_PSNR
    assert result["lpips"] == "not computed (no weights configured)"
    assert {k for k in result if k.startswith("baselines.")} == {
        f"baselines.{b}.{k}"
        for b in ("identity", "deblock", "gamma")
        for k in ("gir_score", *HARM_KEYS)
    }
    assert result["baselines.identity.gir_score"] == 0
    assert result["baselines.identity.harm_rate.single-id"] == 0
    assert result["baselines.identity.harm.clean_psnr_y.single-id"] == MAX_PSNR
    assert "specialists.noise.harm_rate.single-id" in result
    assert "best_baseline.clean.name" not in result
    assert isinstance(result["specialists.noise.gir_score"], float)
    assert result["champion.promoted"] is True and result["champion.version"] == v1
    assert result["champion.previous_version"] is None
    assert result["best_baseline.noise.name"] in ("deblock", "gamma")

    header, rows = read_csv(metrics_dir / "per_image.csv")
    n_whole = len(Bench(data / "bench", whole=True))
    assert header == [*ROW_KEYS, "block_shift"]
    assert len(rows) == 5 * len(Bench(data / "bench")) + n_whole  # whole photos: model only
    whole_rows = [r for r in rows if r["suite"] == "whole"]
    assert {r["method"] for r in whole_rows} == {"model"} and len(whole_rows) == n_whole
    assert all(float(r["block_shift"]) >= 0 for r in whole_rows)
    # the patch metric: on whole photos and on every clean crop, nowhere else
    measured = [r for r in rows if r["suite"] == "whole" or r["family"] == "clean"]
    assert all(float(r["block_shift"]) >= 0 for r in measured)
    assert all(r["block_shift"] == "" for r in rows if r not in measured)
    # the whole-photo suite's keys: gain per suite, clean PSNR-Y and the patch metric
    assert {"psnr_gain.whole", "harm.clean_psnr_y.whole", "harm.block_shift.whole"} <= set(result)
    assert "gir_score" in result  # unchanged: the GIR suites only
    header, rows = read_csv(metrics_dir / "per_family.csv")
    assert header[:4] == ["method", "suite", "family", "n"] and "psnr_gain" in header
    assert "harm_rate" in header
    clean = [r for r in rows if r["family"] == "clean"]
    assert len(clean) == 2 * 5 + 1  # the crop suites' two, and the model's whole photos
    assert all(r["harm_rate"] == "" for r in clean)  # NaN: not judged
    header, rows = read_csv(plots_dir / "psnr_per_family.csv")
    assert header == ["suite", "family", "method", "psnr_y", "label"]
    # model, best baseline, identity per crop group; the model alone per whole-photo family
    assert len(rows) == 3 * N_DEGRADED_GROUPS + 3  # clean left out
    header, rows = read_csv(plots_dir / "generalization.csv")
    assert header == [
        "suite_index",
        "suite",
        "model",
        "identity",
        "deblock",
        "gamma",
        "specialist:noise",
        "best_baseline",
    ]
    assert [r["suite"] for r in rows] == suites
    assert all(float(r["identity"]) == 0 for r in rows)

    # a much worse second version is compared with the champion and kept as challenger
    second_cfg = CFG.model_copy(update={"baselines": ["identity"]})
    run2, v2 = register(tiny_model(1, 0.2), registry, model_dir)
    second = evaluate_and_promote(
        model_dir,
        data / "bench",
        data / "clean",
        second_cfg,
        metrics_dir,
        plots_dir,
        registry,
        train_metrics=registry / TRAIN_JSON,
    )
    assert second.previous == v1 and get_alias_version(REGISTERED_MODEL, CHALLENGER) is None
    _record(second)
    assert not second.decision.promoted
    assert any("regressed" in reason for reason in second.decision.reasons)
    harm_checked = ("harm_rate.", "no harm_rate rose", "harm.clean_psnr_y.", "no clean PSNR-Y")
    assert any(reason.startswith(harm_checked) for reason in second.decision.reasons)
    for reason in second.decision.reasons:  # printed with the decision
        assert f"  - {reason}" in second.summary()
    assert {r["method"] for r in second.rows} == {"model", "identity", "champion"}
    assert get_alias_version(REGISTERED_MODEL, CHAMPION) == v1
    assert get_alias_version(REGISTERED_MODEL, CHALLENGER) == v2
    result = json.loads((metrics_dir / "eval.json").read_text())
    assert result["champion.promoted"] is False and result["champion.previous_version"] == v1
    assert result["champion.previous_gir_score"] > result["gir_score"]
    tags = MlflowClient().get_run(run2).data.tags
    assert tags["champion.promoted"] == "false" and tags["champion.alias"] == CHALLENGER
    assert tags["champion.reasons"] == "\n".join(second.decision.reasons)
    assert tags["champion.previous_version"] == str(v1)


def test_evaluate_and_promote_needs_registry_info(data: Path, tmp_path: Path) -> None:
    model_dir = save_model_dir(tiny_model(0, 0.0), TINY, tmp_path / "latest")
    with pytest.raises(ValueError, match=r"no mlflow\.run_id"):
        evaluate_and_promote(
            model_dir, data / "bench", data / "clean", CFG, tmp_path, tmp_path, tmp_path
        )
    with pytest.raises(KeyError, match="unknown baseline"):
        evaluate_and_promote(
            model_dir,
            data / "bench",
            data / "clean",
            CFG.model_copy(update={"baselines": ["nope"]}),
            tmp_path,
            tmp_path,
            tmp_path,
        )
