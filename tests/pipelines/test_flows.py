"""The ``gir-pipeline`` flow and its deployment (pipelines/flows.py).

The flow tests run a fake tiny DVC project (tests/pipelines/project.py: git + dvc init, stages
that are small Python scripts) against a real temporary Prefect server
(``prefect_test_harness``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from girml.config import ConfigError, OrchestrationConfig
from pipelines.flows import (
    SUMMARY_KEY,
    TABLE_KEY,
    build_deployment,
    gir_pipeline,
    stage_retries,
)
from tests.pipelines.project import (
    BOOM_STAGE,
    PARAMS,
    SECRET,
    logs_and_artifacts,
    make_project,
)

ROOT = Path(__file__).resolve().parents[2]


def test_flow_is_named_gir_pipeline() -> None:
    assert gir_pipeline.name == "gir-pipeline"


@pytest.mark.slow
def test_flow_runs_the_stages_and_publishes(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    project = make_project(tmp_path / "project")
    state = gir_pipeline(
        overrides=["synthesize.train_pairs=3"], project_dir=str(project), return_state=True
    )
    assert state.is_completed(), state.message
    assert state.result() == {"fetch": "ran", "report": "ran"}  # DAG order, not file order
    assert (project / "data/raw.txt").read_text().count("\n") == 3  # the override took effect
    assert "train_pairs: 3" in (project / "params.yaml").read_text()
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"fetch", "report"}
    assert (project / ".fetch-attempted").is_file()  # fetch failed once, then was retried

    logs, artifacts = logs_and_artifacts(state.state_details.flow_run_id)
    assert any("[fetch] error: network down" in m for m in logs)
    assert any("[report] report over 3 pairs; key is ***" in m for m in logs)
    by_key = {a.key: a for a in artifacts}
    summary = by_key[SUMMARY_KEY].data
    assert "| fetch | ran |" in summary and "| `gir_score` | 2.250 |" in summary
    assert "- **promoted**: True" in summary
    table = by_key[TABLE_KEY].data
    table = json.loads(table) if isinstance(table, str) else table
    assert [row["psnr_y"] for row in table] == [31.5, 25.25]
    published = json.dumps([[a.data, a.description] for a in artifacts], default=str)
    assert SECRET not in published and not any(SECRET in m for m in logs)

    # nothing changed: DVC skips every stage; push=True sends the cache to the local remote
    again = gir_pipeline(push=True, project_dir=str(project), return_state=True)
    assert again.is_completed(), again.message
    assert again.result() == {"fetch": "unchanged", "report": "unchanged"}
    assert any(p.is_file() for p in (tmp_path / "remote").rglob("*"))

    from pipelines.cli import app

    cli = CliRunner().invoke(app, ["flow", "--project-dir", str(project), "--no-push"])
    assert cli.exit_code == 0, cli.output
    assert "gir-pipeline completed" in cli.output and "'report': 'unchanged'" in cli.output


@pytest.mark.slow
def test_bad_override_fails_the_flow_naming_the_key(prefect_api: str, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    state = gir_pipeline(
        overrides=["synthesize.train_pairz=3"], project_dir=str(project), return_state=True
    )
    assert state.is_failed()
    assert "synthesize.train_pairz" in state.message
    assert (project / "params.yaml").read_text() == PARAMS
    assert not (project / "dvc.lock").exists()


@pytest.mark.slow
def test_stage_failure_is_the_flow_state_message(prefect_api: str, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", BOOM_STAGE)
    (project / ".fetch-attempted").write_text("1")
    state = gir_pipeline(project_dir=str(project), return_state=True)
    assert state.is_failed()
    assert "boom 42" in state.message and "'boom'" in state.message
    assert not (project / "after.txt").exists()  # later stages do not run

    from pipelines.cli import app

    cli = CliRunner().invoke(app, ["flow", "--project-dir", str(project)])
    assert cli.exit_code == 1 and "error: boom 42" in cli.output


@pytest.mark.slow
def test_deployment_schedule_and_triggered_run(prefect_api: str, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.runner import Runner

    project = make_project(tmp_path / "project")
    (project / ".fetch-attempted").write_text("1")
    cfg = OrchestrationConfig.model_validate(yaml.safe_load(PARAMS)["orchestration"])
    deployment = build_deployment(cfg, project)
    deployment_id = deployment.apply()
    with get_client(sync_client=True) as client:
        stored = client.read_deployment_by_name(f"gir-pipeline/{cfg.deployment}")
        assert stored.id == deployment_id
        [schedule] = client.read_deployment_schedules(deployment_id)
    assert schedule.schedule.cron == cfg.cron and schedule.schedule.timezone == cfg.timezone
    assert stored.parameters == {"project_dir": str(project.resolve())}

    flow_run = run_deployment(f"gir-pipeline/{cfg.deployment}", timeout=0)
    runner = Runner(name="test-runner", limit=1)
    runner.add_deployment(deployment)
    asyncio.run(asyncio.wait_for(runner.start(run_once=True), timeout=240))
    with get_client(sync_client=True) as client:
        final = client.read_flow_run(flow_run.id)
    assert final.state is not None and final.state.is_completed(), final.state
    assert (project / "metrics/train.json").is_file()


def test_io_stages_retry_and_a_foreach_stage_is_named_by_its_base() -> None:
    """``testset`` in io_stages gives every ``testset@<set>`` download its retries."""
    cfg = OrchestrationConfig(retries=3, io_stages=["collect", "testset"])
    assert stage_retries("collect", cfg) == stage_retries("testset@rain100l", cfg) == 3
    assert stage_retries("train", cfg) == stage_retries("protocols@allinone-3", cfg) == 0
    project = yaml.safe_load((ROOT / "params.yaml").read_text())["orchestration"]["io_stages"]
    assert "testset" in project


def test_build_deployment_rejects_a_bad_schedule(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"orchestration\.cron"):
        build_deployment(OrchestrationConfig(cron="61 * * * * *"), tmp_path)
    with pytest.raises(ConfigError, match=r"orchestration\.cron/timezone"):
        build_deployment(OrchestrationConfig(timezone="Mars/Olympus"), tmp_path)


def test_importing_pipelines_turns_prefect_telemetry_off() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED")
    }
    code = (
        "import pipelines.flows, os\n"
        "from prefect.settings import get_current_settings\n"
        "print(get_current_settings().server.analytics_enabled, os.environ['DO_NOT_TRACK'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "1"]  # inherited by a temporary server it starts


@pytest.mark.slow
def test_work_pool_deployment_runs_on_a_process_worker(prefect_api: str, tmp_path: Path) -> None:
    """The team recipe (docs/operations.md): `prefect deploy` to a pool, `prefect worker start`."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    project = make_project(tmp_path / "project")
    (project / ".fetch-attempted").write_text("1")
    # the deploy command runs where the flow's code is; a folder of its own keeps the checkout
    # free of the prefect.yaml and .prefect/ that `prefect deploy` may write
    code = tmp_path / "code"
    code.mkdir()
    (code / "pipelines").symlink_to(ROOT / "pipelines", target_is_directory=True)
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    prefect = [sys.executable, "-m", "prefect"]

    def cli(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*prefect, *args], cwd=code, env=env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        return done

    cli("work-pool", "create", "gir-workers", "--type", "process")
    cli(
        *("--no-prompt", "deploy", "pipelines/flows.py:gir_pipeline", "--name", "team"),
        *("--pool", "gir-workers", "--cron", "0 3 * * 1", "--timezone", "UTC"),
        *("--param", f"project_dir={project}"),
    )
    flow_run = run_deployment("gir-pipeline/team", timeout=0)
    cli("worker", "start", "--pool", "gir-workers", "--run-once", "--limit", "1", timeout=300)
    with get_client(sync_client=True) as client:
        final = client.read_flow_run(flow_run.id)
        deployment = client.read_deployment_by_name("gir-pipeline/team")
    assert final.state is not None and final.state.is_completed(), final.state
    assert deployment.work_pool_name == "gir-workers"
    assert (project / "dvc.lock").is_file() and (project / "data/raw.txt").is_file()
