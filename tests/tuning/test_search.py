"""The search end to end (girml/tuning/search.py): real Ray Tune searches on tiny synthesized
pairs, and one resumed after its driver is killed."""

from __future__ import annotations

import csv
import glob
from pathlib import Path

import pytest

from girml.tuning.results import METRIC, TuneResult, tuned_configs, write_best, write_trials_csv
from tests.factories import kill_when, spawn_python
from tests.tuning.common import BASE, MODEL, SPACE, tune_cfg, tune_script


@pytest.mark.slow
def test_search_end_to_end(searched: tuple[TuneResult, Path, Path], tmp_path: Path) -> None:
    result, work, _ = searched
    assert not result.resumed
    assert len(result.trials) == 2 and result.configs_searched == 2
    default, other = result.trials
    assert default["default"] and not other["default"]
    assert default["train.lr"] == 1e-3 and default["model.enc_blocks"] == [1]
    for row in result.trials:
        assert row["status"] == "TERMINATED" and row["steps"] == 6 and not row["stopped_early"]
        assert [p["step"] for p in result.curves[row["trial_id"]]] == [3.0, 6.0]
        assert row[METRIC] == result.curves[row["trial_id"]][-1][METRIC]
    best = max(result.trials, key=lambda r: r[METRIC])
    assert result.best_trial_id == best["trial_id"] and result.best_score == best[METRIC]
    assert result.best_config == {k: best[k] for k in SPACE}
    assert result.default_score == default[METRIC]
    assert not (work / "trials").exists()  # trial checkpoints are gone once the search ended

    write_best(result, tmp_path / "best.yaml")
    write_trials_csv(result, tmp_path / "trials.csv")
    model, train = tuned_configs(MODEL.model_dump(), BASE.model_dump(), tmp_path / "best.yaml")
    assert model.enc_blocks == best["model.enc_blocks"]
    assert train.lr == pytest.approx(best["train.lr"]) and train.steps == BASE.steps
    rows = list(csv.DictReader((tmp_path / "trials.csv").open()))
    assert [r["trial_id"] for r in rows] == [r["trial_id"] for r in result.trials]


def _experiment_state(work: Path) -> str:
    files = glob.glob(str(work / "ray_results" / "gir-tune" / "experiment_state-*.json"))
    return Path(files[0]).read_text() if files else ""


@pytest.mark.slow
def test_an_interrupted_search_resumes_instead_of_starting_over(
    pairs_dir: Path, tmp_path: Path
) -> None:
    from ray.tune import ExperimentAnalysis

    from girml.tuning.outcome import SearchInterrupted, collect_results  # imports Ray
    from girml.tuning.search import tune

    cfg = tune_cfg(max_concurrent=1)  # trials one after the other
    work = tmp_path / "work"
    code = tune_script(cfg, pairs_dir, work)
    # its own session, so the kill reaches the local Ray it starts as well
    proc = spawn_python(code, cwd=tmp_path, new_session=True)
    # once a finished trial is saved
    kill_when(lambda: "TERMINATED" in _experiment_state(work), proc, 240, poll_s=0.1, group=True)
    experiment = work / "ray_results" / "gir-tune"
    before = ExperimentAnalysis(str(experiment))
    finished = {t.trial_id for t in before.trials if t.status == "TERMINATED"}
    reports = {tid: len(frame) for tid, frame in before.trial_dataframes.items()}
    assert finished and len(before.trials) <= 2
    with pytest.raises(SearchInterrupted, match="run it again to resume"):
        collect_results(str(experiment), None, cfg, resumed=False, wall_seconds=0.0)

    result = tune(cfg, MODEL, BASE, pairs_dir, work)
    assert result.resumed
    assert len(result.trials) == 2 and all(r["steps"] == 6 for r in result.trials)
    after = ExperimentAnalysis(str(experiment))
    assert {t.trial_id for t in before.trials} <= {t.trial_id for t in after.trials}
    for trial_id in finished:  # kept, not run again: no extra report
        assert len(after.trial_dataframes[trial_id]) == reports[trial_id] == 2
