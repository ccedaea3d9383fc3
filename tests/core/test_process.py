"""Two runs at once and killed runs: stage locks, orphaned workers, MLflow runs left RUNNING."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from girml.cli import app
from girml.cli_common import BUSY_EXIT
from girml.core.process import StageBusy, read_holder, stage_lock
from tests.factories import (
    TINY_LAYOUT,
    make_clean_set,
    spawn_python,
    synthesize_tiny,
    tiny_params,
    wait_for,
    write_params,
)

TRAIN_LOCK = Path(".girml/locks/train.lock")


def _gone(procs: list[psutil.Process]) -> bool:
    def alive(proc: psutil.Process) -> bool:
        try:
            return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return not any(alive(proc) for proc in procs)


@pytest.fixture
def reap() -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts; those still running at the end are killed (by PID)."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _hold_lock(seconds: float) -> str:
    return "\n".join(
        [
            "import time",
            "from pathlib import Path",
            "from girml.core.process import stage_lock",
            f"with stage_lock(Path({str(TRAIN_LOCK)!r}), 'train'):",
            "    Path('held').write_text('x')",
            f"    time.sleep({seconds})",
        ]
    )


def _train_params(steps: int) -> dict:
    params = tiny_params()
    params["model"] = {"type": "nafnet", "width": 8, "enc_blocks": [1], "middle_blocks": 1}
    params["train"] = {
        "seed": 0,
        "steps": steps,
        "batch_size": 2,
        "patch_size": 16,
        "warmup_steps": 1,
        "val_every": steps,
        "ckpt_every": 5,
        "log_every": 5,
        "num_workers": 0,
        "online_degradation_prob": 0.0,
    }
    return params


# --------------------------------------------------------------------------- stage lock


def test_second_train_fails_at_once_naming_the_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reap: list[subprocess.Popen]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", _train_params(steps=10))
    holder = spawn_python(_hold_lock(120), cwd=tmp_path)
    reap.append(holder)
    wait_for((tmp_path / "held").is_file, holder, 60)

    start = time.monotonic()
    result = CliRunner().invoke(app, ["train", "--params", "params.yaml"])
    assert time.monotonic() - start < 30  # at once, not after the holder's two minutes
    assert result.exit_code == BUSY_EXIT, result.output
    assert "girml train is already running in this folder" in result.output
    assert f"PID {holder.pid}" in result.output
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "models").exists()

    # the kernel releases a flock when its holder dies: a stale lock file is no lock
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert read_holder(tmp_path / TRAIN_LOCK).pid == holder.pid  # the file still names it
    with stage_lock(tmp_path / TRAIN_LOCK, "train") as me:
        assert me.pid == os.getpid()
        assert read_holder(tmp_path / TRAIN_LOCK).pid == os.getpid()
    assert read_holder(tmp_path / TRAIN_LOCK).pid is None  # released: names nobody


def test_wait_takes_the_lock_when_the_holder_ends(
    tmp_path: Path, reap: list[subprocess.Popen]
) -> None:
    holder = spawn_python(_hold_lock(2), cwd=tmp_path)
    reap.append(holder)
    wait_for((tmp_path / "held").is_file, holder, 60)
    with (
        pytest.raises(StageBusy, match=f"PID {holder.pid}, started "),
        stage_lock(tmp_path / TRAIN_LOCK, "train"),
    ):
        pass
    with stage_lock(tmp_path / TRAIN_LOCK, "train", wait=True):
        assert read_holder(tmp_path / TRAIN_LOCK).pid == os.getpid()
    assert holder.wait(30) == 0  # it was not disturbed: it released the lock at its end


# --------------------------------------------------------------------------- orphans


def test_killed_synthesize_leaves_no_worker(tmp_path: Path, reap: list[subprocess.Popen]) -> None:
    clean = make_clean_set(tmp_path / "clean", TINY_LAYOUT)
    raw = tiny_params()
    raw["synthesize"].update(workers=2, train_pairs=20000)  # minutes: killed long before
    code = "\n".join(
        [
            "from pathlib import Path",
            "from girml.config import DegradationsConfig, SynthesizeConfig, parse_section",
            "from girml.data.synthesize import read_manifest, synthesize",
            f"raw = {raw!r}",
            f"clean = Path({str(clean)!r})",
            "synthesize(read_manifest(clean / 'manifest.csv', clean / 'images'),",
            "    parse_section(raw['degradations'], 'degradations', DegradationsConfig),",
            "    parse_section(raw['synthesize'], 'synthesize', SynthesizeConfig),",
            "    Path('pairs'), Path('bench'))",
        ]
    )
    proc = spawn_python(code, cwd=tmp_path)
    reap.append(proc)
    parent = psutil.Process(proc.pid)
    wait_for(lambda: len(parent.children()) >= 2, proc, 120)
    time.sleep(1.0)  # the workers are rendering
    workers = parent.children(recursive=True)
    assert proc.poll() is None, "synthesis ended before the kill: make it bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while not _gone(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [w for w in workers if not _gone([w])]
    for worker in left:  # do not leave them behind for the next test
        worker.kill()
    assert not left, f"workers outlived their killed parent: {[w.pid for w in left]}"


# --------------------------------------------------------------------------- MLflow runs


def _runs(db: Path) -> list:
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("gir")
    assert experiment is not None
    return client.search_runs([experiment.experiment_id])


def test_failed_train_ends_its_run_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_schema: Path
) -> None:
    import girml.stages.train

    monkeypatch.chdir(tmp_path)
    shutil.copyfile(mlflow_schema, tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    write_params(tmp_path / "params.yaml", _train_params(steps=10))
    synthesize_tiny(tmp_path / "data")  # the inputs are there (no data fails before the run)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the loop broke")

    monkeypatch.setattr(girml.stages.train, "train", broken)
    result = CliRunner().invoke(app, ["train", "--params", "params.yaml"])
    assert result.exit_code == 1, result.output
    [run] = _runs(tmp_path / "mlflow.db")
    assert run.info.status == "FAILED"
    assert run.data.tags["girml.pid"] == str(os.getpid())


@pytest.mark.slow
def test_sigterm_ends_train_and_its_run_killed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reap: list[subprocess.Popen],
    mlflow_schema: Path,
) -> None:
    synthesize_tiny(tmp_path / "data")
    shutil.copyfile(mlflow_schema, tmp_path / "mlflow.db")
    write_params(tmp_path / "params.yaml", _train_params(steps=100_000))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the project's own mlflow.db
    code = "import sys\nfrom girml.cli import app\napp(['train', '--params', 'params.yaml'])"
    proc = spawn_python(code, cwd=tmp_path)
    reap.append(proc)
    ckpt = tmp_path / "checkpoints" / "train"
    # a complete checkpoint (checkpoint-N.tmp is one being written)
    wait_for(
        lambda: (
            ckpt.is_dir() and any(not p.name.endswith(".tmp") for p in ckpt.glob("checkpoint-*"))
        ),
        proc,
        180,
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 128 + signal.SIGTERM
    [run] = _runs(tmp_path / "mlflow.db")
    assert run.info.status == "KILLED"
    assert read_holder(tmp_path / TRAIN_LOCK).pid is None  # the lock was released


def _start_run_and_wait(db: Path, ready: Path) -> str:
    return "\n".join(
        [
            "import os, time",
            "from pathlib import Path",
            "from girml.tracking.runs import start_run",
            f"os.environ['MLFLOW_TRACKING_URI'] = 'sqlite:///{db}'",
            "with start_run('gir', Path('.'), run_name='train', log_system_metrics=False):",
            f"    Path({str(ready)!r}).write_text('x')",
            "    time.sleep(300)",
        ]
    )


@pytest.mark.slow
def test_stale_running_run_is_closed_at_the_next_start(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reap: list[subprocess.Popen],
    mlflow_schema: Path,
) -> None:
    from girml.tracking.runs import start_run

    db = tmp_path / "mlflow.db"
    shutil.copyfile(mlflow_schema, db)
    killed = spawn_python(_start_run_and_wait(db, tmp_path / "a"), cwd=tmp_path)
    reap.append(killed)
    wait_for((tmp_path / "a").is_file, killed, 120)  # one at a time: SQLite schema creation
    live = spawn_python(_start_run_and_wait(db, tmp_path / "b"), cwd=tmp_path)
    reap.append(live)
    wait_for((tmp_path / "b").is_file, live, 120)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    with start_run("gir", tmp_path, run_name="train", log_system_metrics=False) as run:
        new_id = run.info.run_id
    by_pid = {r.data.tags["girml.pid"]: r for r in _runs(db)}
    stale = by_pid[str(killed.pid)]
    assert stale.info.status == "KILLED"
    assert f"PID {killed.pid}" in stale.data.tags["mlflow.note.content"]
    assert by_pid[str(live.pid)].info.status == "RUNNING"  # its process lives: not touched
    assert by_pid[str(os.getpid())].info.run_id == new_id
    assert by_pid[str(os.getpid())].info.status == "FINISHED"


@pytest.mark.slow
def test_killed_ray_driver_leaves_no_ray_process(
    tmp_path: Path, reap: list[subprocess.Popen]
) -> None:
    code = "\n".join(
        [
            "import time",
            "from pathlib import Path",
            "import ray",
            "from girml.tuning.ray_session import ray_session",
            "def one():",
            "    return 1",
            "with ray_session(None):",
            "    ray.get(ray.remote(one).remote())",
            "    time.sleep(2)",  # the watchdog has seen every Ray process
            "    Path('ready').write_text('x')",
            "    time.sleep(300)",
        ]
    )
    proc = spawn_python(code, cwd=tmp_path)
    reap.append(proc)
    wait_for((tmp_path / "ready").is_file, proc, 240)
    ray_procs = psutil.Process(proc.pid).children(recursive=True)  # and the watchdog
    assert any(p.name().startswith("ray::") for p in ray_procs)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while not _gone(ray_procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in ray_procs if not _gone([p])]
    for p in left:
        p.kill()
    assert not left, f"left behind: {[(p.pid, p.name()) for p in left]}"
