"""Several training processes as one group: torchrun and accelerate launch on CPU ranks (gloo).

Each test launches real processes on a tiny config (a few seconds of training): one process
group of two ranks, one MLflow run, one registered version, one writer, both ranks ending with
the same weights, the weights of one process with twice the batch, resume after kill -9 with the
same world size and a refusal with another.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import torch
from mlflow import MlflowClient

from girml.artifacts.loading import load_model
from girml.config import ModelConfig, TrainConfig, parse_section
from girml.training.loop import train
from tests.conftest import free_port
from tests.factories import REPO, synthesize_tiny, tiny_params, wait_for, write_params

pytestmark = pytest.mark.slow

LAUNCH_TIMEOUT_S = 240


def _params(steps: int, batch_size: int = 2, ckpt_every: int = 3) -> dict:
    params = tiny_params()
    params["model"] = {"type": "nafnet", "width": 8, "enc_blocks": [1], "middle_blocks": 1}
    params["train"] = {
        "seed": 0,
        "steps": steps,
        "batch_size": batch_size,
        "patch_size": 16,
        "warmup_steps": 1,
        "val_every": steps,
        "ckpt_every": ckpt_every,
        "log_every": 5,
        "num_workers": 0,
        "online_degradation_prob": 0.0,
    }
    return params


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_tiny(tmp_path_factory.mktemp("distributed") / "data")


def _project(root: Path, data: Path, params: dict, mlflow_db: Path | None = None) -> Path:
    """A project folder on ``data``; its MLflow store a copy of ``mlflow_db`` when given."""
    root.mkdir(parents=True, exist_ok=True)
    if mlflow_db is not None:
        shutil.copyfile(mlflow_db, root / "mlflow.db")
    (root / "data").symlink_to(data, target_is_directory=True)
    write_params(root / "params.yaml", params)
    return root


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _torchrun(nproc: int) -> list[str]:
    return [
        sys.executable,
        *("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)),
        *("-m", "girml", "train", "--params", "params.yaml"),
    ]


def _run(cmd: list[str], root: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        cwd=root,
        env={**_env(root), **env},
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
    )


def _ok(done: subprocess.CompletedProcess) -> str:
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


def _mlflow(root: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{root / 'mlflow.db'}")


def _assert_one_group(root: Path, world_size: int) -> dict:
    """One run, one version and rank digests that agree; returns metrics/train.json."""
    record = json.loads((root / "metrics" / "train.json").read_text())
    run_info = record["run"]
    assert run_info["world_size"] == world_size
    digests = run_info["rank_weights_sha256"]
    assert len(digests) == world_size and len(set(digests)) == 1
    client = _mlflow(root)
    experiment = client.get_experiment_by_name("gir")
    finished = client.search_runs(
        [experiment.experiment_id], filter_string="attributes.status = 'FINISHED'"
    )
    assert len(finished) == 1
    assert finished[0].data.tags["world_size"] == str(world_size)
    versions = client.search_model_versions("name = 'gir-restorer'")
    assert [int(v.version) for v in versions] == [run_info["registered_version"]] == [1]
    return record


def test_torchrun_two_ranks_train_as_one_group_with_the_single_process_stream(
    tmp_path: Path, tiny_data: Path, mlflow_schema: Path
) -> None:
    root = _project(tmp_path / "two", tiny_data, _params(steps=6), mlflow_schema)
    _ok(_run(_torchrun(2), root))
    _assert_one_group(root, world_size=2)
    # two ranks of batch 2 read the samples one process of batch 4 reads, and DDP averages
    # their gradients: the same optimisation up to the order of float sums
    single = _params(steps=6, batch_size=4)
    result = train(
        parse_section(single["model"], "model", ModelConfig),
        parse_section(single["train"], "train", TrainConfig),
        tiny_data / "pairs",
        tmp_path / "single-ckpt",
    )
    assert result.world_size == 1
    two = load_model(str(root / "models" / "latest")).state_dict()
    for name, value in result.model.state_dict().items():
        torch.testing.assert_close(two[name], value, atol=1e-5, rtol=1e-4, msg=name)


def test_accelerate_launch_cpu_gives_two_ranks(
    tmp_path: Path, tiny_data: Path, mlflow_schema: Path
) -> None:
    root = _project(tmp_path / "acc", tiny_data, _params(steps=4), mlflow_schema)
    cmd = [
        *(sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"),
        *("--num_processes", "2", "--main_process_port", str(free_port())),
        *("-m", "girml", "train", "--params", "params.yaml"),
    ]
    _ok(_run(cmd, root, ACCELERATE_USE_CPU="1"))  # docs/training.md's CPU recipe
    _assert_one_group(root, world_size=2)


def test_accelerate_launch_that_starts_one_process_is_refused(
    tmp_path: Path, tiny_data: Path
) -> None:
    root = _project(tmp_path / "one", tiny_data, _params(steps=4))
    cmd = [
        *(sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2"),
        *("--main_process_port", str(free_port())),
        *("-m", "girml", "train", "--params", "params.yaml"),
    ]
    done = _run(cmd, root)
    assert done.returncode != 0
    assert "--multi_gpu" in done.stderr
    assert not (root / "models").exists() and not (root / "checkpoints").exists()


def test_killed_launcher_ends_its_ranks_and_resumes_with_its_world_size_only(
    tmp_path: Path, tiny_data: Path, mlflow_schema: Path
) -> None:
    steps = 300
    params = _params(steps=steps, ckpt_every=5)
    root = _project(tmp_path / "kill", tiny_data, params, mlflow_schema)
    proc = subprocess.Popen(
        _torchrun(2), cwd=root, env=_env(root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    ranks: list[psutil.Process] = []
    try:
        ckpt = root / "checkpoints" / "train"
        wait_for(lambda: bool(list(ckpt.glob("checkpoint-*[0-9]"))), proc, LAUNCH_TIMEOUT_S)
        ranks = psutil.Process(proc.pid).children(recursive=True)
        proc.kill()  # kill -9 of the launcher: torchrun's ranks run in sessions of their own
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        _, alive = psutil.wait_procs(ranks, timeout=60)
        for orphan in alive:
            orphan.kill()
    assert len(ranks) >= 2 and not alive, "ranks outlived their launcher"
    assert not (root / "models").exists()  # killed before the end: nothing written

    output = _ok(_run(_torchrun(2), root))
    assert "resuming from" in output
    record = _assert_one_group(root, world_size=2)
    assert record["steps"] == steps
    client = _mlflow(root)
    statuses = sorted(
        r.info.status
        for r in client.search_runs([client.get_experiment_by_name("gir").experiment_id])
    )
    assert statuses == ["FINISHED", "KILLED"]

    done = _run([sys.executable, "-m", "girml", "train", "--params", "params.yaml"], root)
    assert done.returncode == 1
    assert "written by a launch of 2 process(es)" in done.stderr
    assert "this one has 1" in done.stderr
    assert (root / "checkpoints" / "train" / f"checkpoint-{steps}").is_dir()  # nothing lost
