"""A search's outcome (girml/tuning/outcome.py): the experiment read back into a result, and
the search logged to MLflow as a parent run with one child per trial."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from girml.tuning.results import METRIC, TuneResult
from tests.tuning.common import CFG


@pytest.mark.slow
def test_search_is_tracked_as_a_parent_with_one_child_per_trial(
    searched: tuple[TuneResult, Path, Path],
) -> None:
    result, _, db = searched
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("gir")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.info.run_name == "tune"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.tags["stage"] == "tune" and "params_hash" in parent.data.tags
    assert parent.data.params["tune.num_samples"] == "1"
    assert parent.data.params["tune.space.train.lr.type"] == "loguniform"
    assert parent.data.metrics[f"best.{METRIC}"] == pytest.approx(result.best_score)
    assert parent.data.metrics[f"default.{METRIC}"] == pytest.approx(result.default_score)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1 == len(result.trials)
    by_trial = {c.data.tags["trial_id"]: c for c in children}
    for row in result.trials:
        child = by_trial[row["trial_id"]]
        assert child.data.tags["default"] == str(row["default"]).lower()
        assert child.data.params["model.enc_blocks"] == str(row["model.enc_blocks"])
        history = client.get_metric_history(child.info.run_id, METRIC)
        assert [(m.step, m.value) for m in history] == [
            (int(p["step"]), pytest.approx(p[METRIC])) for p in result.curves[row["trial_id"]]
        ]


@pytest.mark.slow
def test_the_stored_experiment_reads_back_into_the_same_result(
    searched: tuple[TuneResult, Path, Path],
) -> None:
    from girml.tuning.outcome import collect_results  # imports Ray (seconds)

    result, work, _ = searched
    experiment = work / "ray_results" / "gir-tune"
    again = collect_results(str(experiment), None, CFG, resumed=True, wall_seconds=1.0)
    assert again.trials == result.trials and again.curves == result.curves
    assert (again.best_trial_id, again.best_score) == (result.best_trial_id, result.best_score)
    assert again.default_score == result.default_score and again.trials[0]["default"]
    assert again.resumed and again.wall_seconds == 1.0
