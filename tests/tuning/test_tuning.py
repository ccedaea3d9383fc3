"""Hyperparameter search: space handling, best.yaml/trials.csv, and real Ray Tune searches on
tiny synthesized pairs (end to end with MLflow, and resumed after the driver is killed)."""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import psutil
import pytest
import yaml
from mlflow import MlflowClient

from girml.config import (
    ConfigError,
    ModelConfig,
    SearchDim,
    TrainConfig,
    TuneConfig,
)
from girml.tuning.results import (
    METRIC,
    TuneResult,
    load_tuned_overrides,
    tuned_configs,
    write_best,
    write_trials_csv,
)
from girml.tuning.space import (
    check_space,
    decode_params,
    default_params,
    encode_value,
    nest,
    trial_configs,
)
from tests.conftest import free_port
from tests.factories import REPO, kill_when, spawn_python, synthesize_tiny

MODEL = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
BASE = TrainConfig(
    steps=60,
    batch_size=2,
    patch_size=16,
    warmup_steps=10,
    ema_decay=0.9,
    log_every=1000,
    num_workers=0,
    # the plain loop these tests were written for (params.yaml's defaults switch these on)
    lr=1e-3,
    loss="charbonnier",
    online_degradation_prob=0.0,
    clean_prob=0.0,
    channels_last=False,
    num_threads=0,
    val_every=500,
    ckpt_every=250,
)
SPACE = {
    "train.lr": {"type": "loguniform", "low": 3e-4, "high": 3e-3},
    "model.enc_blocks": {"type": "choice", "values": [[1], [1, 1]]},
}
# one searched configuration + the default reference = 2 trials of 6 steps, reporting twice
CFG = TuneConfig(
    space=SPACE, num_samples=1, steps_per_trial=6, report_every=3, scheduler="fifo", seed=0
)


def _tune_cfg(**changes: object) -> TuneConfig:
    return TuneConfig.model_validate({**CFG.model_dump(), **changes})


# --------------------------------------------------------------------------- space (no Ray)


def test_trial_configs_apply_overrides_and_the_trial_budget() -> None:
    model, train = trial_configs({"train.lr": 2e-3, "model.enc_blocks": [1, 1]}, MODEL, BASE, CFG)
    assert model.enc_blocks == [1, 1] and model.width == MODEL.width
    assert train.lr == 2e-3 and train.batch_size == BASE.batch_size
    assert (train.steps, train.val_every, train.ckpt_every) == (6, 3, 3)
    assert train.warmup_steps == 1  # 10 warm-up steps of 60, scaled to 6 steps
    assert train.num_workers == 0
    _, searched = trial_configs({"train.warmup_steps": 4}, MODEL, BASE, CFG)
    assert searched.warmup_steps == 4
    with pytest.raises(ConfigError, match=r"train\.lr"):
        trial_configs({"train.lr": -1.0}, MODEL, BASE, CFG)
    with pytest.raises(ValueError, match=r"got 'optim\.lr'"):
        nest({"optim.lr": 1.0})


def test_nest_and_default_params() -> None:
    assert nest({"train.lr": 1.0, "model.width": 8}) == {
        "model": {"width": 8},
        "train": {"lr": 1.0},
    }
    space = {k: SearchDim.model_validate(v) for k, v in SPACE.items()}
    assert default_params(space, MODEL, BASE) == {"train.lr": 1e-3, "model.enc_blocks": [1]}


def test_choices_of_lists_are_json_for_the_searcher_and_decoded_back() -> None:
    space = {
        "model.enc_blocks": SearchDim(type="choice", values=[[1], [1, 1]]),
        "model.type": SearchDim(type="choice", values=["nafnet", "prompt_nafnet"]),
        "train.lr": SearchDim(type="loguniform", low=1e-4, high=1e-2),
    }
    assert encode_value(space["model.enc_blocks"], [1, 1]) == "[1, 1]"
    assert encode_value(space["model.type"], "nafnet") == "nafnet"
    config = {"model.enc_blocks": "[1, 1]", "model.type": "nafnet", "train.lr": np.float64(0.01)}
    decoded = decode_params(space, {**config, "unrelated": 1})
    assert decoded == {"model.enc_blocks": [1, 1], "model.type": "nafnet", "train.lr": 0.01}
    assert type(decoded["train.lr"]) is float
    with pytest.raises(ValueError, match=r"lacks the searched keys \['train.lr'\]"):
        decode_params(space, {"model.enc_blocks": "[1]", "model.type": "nafnet"})


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"train.steps": {"type": "choice", "values": [5]}}, "train.steps: set by the tuner"),
        ({"model.width": {"type": "uniform", "low": 4, "high": 8}}, "integer; use randint"),
        ({"model.width": {"type": "randint", "low": 4.5, "high": 8}}, "integer bounds"),
        ({"train.patch_size": {"type": "choice", "values": [64, 4]}}, "value 4 is invalid"),
        ({"model.type": {"type": "choice", "values": ["nafnet", "nope"]}}, "value 'nope'"),
        ({"train.lr": {"type": "uniform", "low": -1.0, "high": 1.0}}, "value -1.0 is invalid"),
    ],
)
def test_check_space_rejects_spaces_that_cannot_run(space: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_space(_tune_cfg(space=space), MODEL, BASE)


def test_check_space_budget_and_optuna_reference() -> None:
    check_space(CFG, MODEL, BASE)
    check_space(_tune_cfg(searcher="optuna"), MODEL, BASE)
    with pytest.raises(ConfigError, match=r"report_every must be <= tune\.steps_per_trial"):
        check_space(_tune_cfg(report_every=7), MODEL, BASE)
    widths = {"model.width": {"type": "choice", "values": [8, 12]}}
    check_space(_tune_cfg(space=widths), MODEL, BASE)  # random search takes any default
    with pytest.raises(ConfigError, match=r"base value 4 .* one of the choices \[8, 12\]"):
        check_space(_tune_cfg(space=widths, searcher="optuna"), MODEL, BASE)


# --------------------------------------------------------------------------- outputs (no Ray)


def _result(default_score: float | None = 20.0) -> TuneResult:
    rows = [
        {
            "trial_id": f"t{i}",
            "default": i == 0,
            "train.lr": lr,
            "model.enc_blocks": blocks,
            METRIC: score,
            f"{METRIC}_best": score,
            "val.psnr_gain": score - 25.0,
            "val.psnr_y_input": 25.0,
            "steps": steps,
            "status": "TERMINATED",
            "stopped_early": steps < 6,
            "seconds": 1.5,
        }
        for i, (lr, blocks, score, steps) in enumerate(
            [(1e-3, [1], 20.0, 6), (2e-3, [1, 1], 22.5, 6), (5e-4, [1], math.nan, 0)]
        )
    ]
    return TuneResult(
        best_config={"train.lr": 2e-3, "model.enc_blocks": [1, 1]},
        best_score=22.5,
        best_trial_id="t1",
        trials=rows,
        curves={"t0": [], "t1": [], "t2": []},
        default_score=default_score,
        steps_per_trial=6,
        resumed=False,
        wall_seconds=3.0,
    )


def test_best_yaml_round_trip_into_the_train_sections(tmp_path: Path) -> None:
    path = tmp_path / "tune" / "best.yaml"
    write_best(_result(), path)
    doc = yaml.safe_load(path.read_text())
    assert doc["metric"] == METRIC and doc["score"] == 22.5 and doc["default_score"] == 20.0
    assert doc["steps_per_trial"] == 6 and doc["trial_id"] == "t1"
    assert doc["params"] == {"model": {"enc_blocks": [1, 1]}, "train": {"lr": 2e-3}}
    assert load_tuned_overrides(path) == doc["params"]

    model_raw = {"width": 16, "enc_blocks": [1, 1, 2], "middle_blocks": 2}
    train_raw = {"steps": 1500, "lr": 1e-3, "use_tuned": True}
    model, train = tuned_configs(model_raw, train_raw, path)
    assert model == ModelConfig(width=16, enc_blocks=[1, 1], middle_blocks=2)
    assert train == TrainConfig(steps=1500, lr=2e-3, use_tuned=True)
    assert model_raw["enc_blocks"] == [1, 1, 2]  # the caller's mapping is left alone

    write_best(_result(default_score=None), path)
    assert yaml.safe_load(path.read_text())["default_score"] is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"optim": {"lr": 1}}, "params.optim must be a model/train mapping"),
        ({"train": {"lrr": 1}}, r"params.train has unknown fields \['lrr'\]"),
        ({"train": {"lr": -1}}, "train.lr: Input should be greater than 0"),
        (None, "needs a `params` mapping"),
    ],
)
def test_bad_best_yaml_names_the_problem(tmp_path: Path, params: object, message: str) -> None:
    path = tmp_path / "best.yaml"
    path.write_text(yaml.safe_dump({"score": 1.0, "params": params}))
    with pytest.raises(ConfigError, match=message):
        tuned_configs({}, {}, path)


def test_missing_best_yaml_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tuned params not found"):
        load_tuned_overrides(tmp_path / "best.yaml")


def test_trials_csv_has_one_row_per_trial(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "trials.csv"
    write_trials_csv(_result(), path)
    rows = list(csv.DictReader(path.open()))
    assert [r["trial_id"] for r in rows] == ["t0", "t1", "t2"]
    assert list(rows[0])[:4] == ["trial_id", "default", "train.lr", "model.enc_blocks"]
    assert rows[1]["model.enc_blocks"] == "[1, 1]" and rows[1][METRIC] == "22.5"
    assert rows[2][METRIC] == "" and rows[2]["stopped_early"] == "True"


# --------------------------------------------------------------------------- Ray (slow)


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 train and 6 val 32x32 pairs synthesized from the tiny clean set."""
    return synthesize_tiny(tmp_path_factory.mktemp("data")) / "pairs"


@pytest.mark.slow
def test_optuna_searcher_tries_the_default_first_and_is_seeded() -> None:
    from girml.tuning.search import make_searcher, param_space  # imports Ray (seconds)

    cfg = _tune_cfg(searcher="optuna")
    space = {k: SearchDim.model_validate(v) for k, v in SPACE.items()}

    def suggestions() -> list[dict]:
        searcher = make_searcher(cfg, default_params(space, MODEL, BASE))
        searcher.set_search_properties("val_psnr", "max", param_space(space))
        return [searcher.suggest(f"t{i}") for i in range(2)]

    first = suggestions()
    assert first[0] == {"train.lr": 1e-3, "model.enc_blocks": "[1]"}
    assert first[1] != first[0] and first == suggestions()


@pytest.fixture(scope="module")
def searched(
    pairs_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TuneResult, Path, Path]]:
    """One real 2-trial search tracked in a temporary SQLite MLflow store.

    Yields the result, the work folder and the store's file.
    """
    from girml.tuning.search import tune  # imports Ray (seconds)

    root = tmp_path_factory.mktemp("project")
    (root / "params.yaml").write_text("tune: {}\n")
    db = root / "mlflow.db"
    before = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.setenv("GIT_CEILING_DIRECTORIES", str(root.parent))
        result = tune(
            CFG,
            MODEL,
            BASE,
            pairs_dir,
            root / "work",
            project_root=root,
            params_path=Path("params.yaml"),
        )
        yield result, root / "work", db
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(before)


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


def _tune_script(cfg: TuneConfig, pairs_dir: Path, work: Path) -> str:
    """Python code that runs :func:`girml.tuning.search.tune` on :data:`MODEL`/:data:`BASE` and
    prints ``[trials, best score]`` as JSON (for a test to run in a process of its own)."""
    return "\n".join(
        [
            "import json",
            "from pathlib import Path",
            "from girml.config import ModelConfig, TrainConfig, TuneConfig",
            "from girml.tuning.search import tune",
            f"cfg = TuneConfig.model_validate_json({cfg.model_dump_json()!r})",
            f"model = ModelConfig.model_validate_json({MODEL.model_dump_json()!r})",
            f"train = TrainConfig.model_validate_json({BASE.model_dump_json()!r})",
            f"result = tune(cfg, model, train, Path({str(pairs_dir)!r}), Path({str(work)!r}))",
            "print(json.dumps([len(result.trials), result.best_score]))",
        ]
    )


def _experiment_state(work: Path) -> str:
    files = glob.glob(str(work / "ray_results" / "gir-tune" / "experiment_state-*.json"))
    return Path(files[0]).read_text() if files else ""


@pytest.mark.slow
def test_an_interrupted_search_resumes_instead_of_starting_over(
    pairs_dir: Path, tmp_path: Path
) -> None:
    from ray.tune import ExperimentAnalysis

    from girml.tuning.search import SearchInterrupted, collect_results, tune  # imports Ray

    cfg = _tune_cfg(max_concurrent=1)  # trials one after the other
    work = tmp_path / "work"
    code = _tune_script(cfg, pairs_dir, work)
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


@pytest.mark.slow
def test_asha_never_stops_the_default_reference_early() -> None:
    from ray.tune.experiment import Trial  # imports Ray (seconds)
    from ray.tune.schedulers import TrialScheduler

    from girml.tuning.search import make_scheduler

    scheduler = make_scheduler(_tune_cfg(scheduler="asha", steps_per_trial=12, report_every=3))
    assert scheduler.set_search_properties("val_psnr", "max")
    default, good, bad = (Trial("run_trial", stub=True) for _ in range(3))
    for trial in (default, good, bad):
        scheduler.on_trial_add(None, trial)

    def decide(trial: Trial, step: int, score: float) -> str:
        return scheduler.on_trial_result(None, trial, {"step": step, "val_psnr": score})

    assert decide(good, 3, 30.0) == TrialScheduler.CONTINUE
    assert decide(default, 3, 10.0) == TrialScheduler.CONTINUE  # below the rung's cutoff
    assert decide(bad, 3, 9.0) == TrialScheduler.STOP
    assert decide(default, 12, 10.0) == TrialScheduler.STOP  # the budget is spent


def _stop_by_pid(folder: str) -> None:
    """End every process whose command line names ``folder`` (a head's temp dir), by PID."""
    procs = [
        p for p in psutil.process_iter(["cmdline"]) if folder in " ".join(p.info["cmdline"] or [])
    ]
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=10)
    for proc in alive:  # the GCS server does not always stop on SIGTERM
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)


@pytest.fixture
def ray_head(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A one-node Ray cluster with token authentication, started with ``ray start --head`` on
    127.0.0.1 in a temporary folder; yields its GCS address, the client environment and the
    folder, and stops its processes by PID (never ``ray stop``: it ends every Ray of the
    machine)."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    token = tmp_path / "ray_token"
    token.write_text(secrets.token_hex(32))
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env = {
        **os.environ,
        **auth,
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    address = f"127.0.0.1:{free_port()}"
    ray = Path(sys.executable).with_name("ray")
    try:
        subprocess.run(
            [
                *(str(ray), "start", "--head", "--node-ip-address", "127.0.0.1"),
                *("--port", address.rsplit(":", 1)[1], "--temp-dir", temp, "--num-cpus", "2"),
                *("--include-dashboard", "false", "--disable-usage-stats"),
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield address, auth, Path(temp)
    finally:
        _stop_by_pid(temp)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_tune_joins_a_token_authenticated_cluster_by_address(
    ray_head: tuple[str, dict[str, str], Path], pairs_dir: Path, tmp_path: Path
) -> None:
    address, auth, head_dir = ray_head
    cfg = _tune_cfg(max_concurrent=1)
    code = _tune_script(cfg, pairs_dir, tmp_path / "work")
    env = {
        **os.environ,
        **auth,
        "RAY_ADDRESS": address,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    trials, best = json.loads(done.stdout.strip().splitlines()[-1])
    assert trials == 2 and math.isfinite(best)
    # joined, not started a Ray of its own: the driver's core log is in the head's session
    logs = sorted(p.name for p in head_dir.glob("session_latest/logs/*"))
    assert any(name.startswith("python-core-driver-") for name in logs), logs


def test_a_refused_join_says_how_to_authenticate(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    from girml.errors import ServiceUnreachable
    from girml.tuning.search import ray_session

    def refuse(**_: object) -> None:
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.9:6379")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")
    with (
        pytest.raises(ServiceUnreachable, match="RAY_AUTH_MODE=token") as caught,
        ray_session(None),
    ):
        pass
    assert "Ray cluster at 10.0.0.9:6379" in str(caught.value)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # already authenticating: no hint
    with pytest.raises(ServiceUnreachable) as caught, ray_session(None):
        pass
    assert "RAY_AUTH_MODE" not in str(caught.value)
    monkeypatch.setenv("RAY_ADDRESS", "ray://10.0.0.9:10001")
    with pytest.raises(ValueError, match=r"GCS address"), ray_session(None):
        pass
