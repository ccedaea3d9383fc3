"""``girml deploy`` (pipelines/deploy.py): a reachable Prefect API, and never the name of a
team's work-pool deployment."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from girml.config import OrchestrationConfig
from pipelines.flows import build_deployment
from tests.pipelines.project import PARAMS, SECRET


def test_deploy_needs_a_reachable_prefect_api(tmp_path: Path, free_tcp_port: int) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipelines.cli import app

    params = tmp_path / "params.yaml"
    params.write_text(PARAMS)
    runner = CliRunner()
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = runner.invoke(app, ["deploy", "--params", str(params)])
    assert result.exit_code == 2
    assert "prefect server start" in result.output
    assert "PREFECT_API_URL=http://127.0.0.1:4200/api" in result.output
    url = f"http://user:{SECRET}@127.0.0.1:{free_tcp_port}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}):
        result = runner.invoke(app, ["deploy", "--params", str(params)])
    assert result.exit_code == 2 and "not reachable" in result.output
    assert SECRET not in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(PARAMS.replace("retries: 1", "retries: -1"))
    result = runner.invoke(app, ["deploy", "--params", str(bad)])
    assert result.exit_code == 2 and "orchestration.retries" in result.output


def test_deploy_refuses_the_name_of_a_work_pool_deployment(
    prefect_api: str, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from pipelines.cli import app
    from pipelines.deploy import pool_deployment

    cfg = OrchestrationConfig.model_validate(yaml.safe_load(PARAMS)["orchestration"])
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="gir-team", type="process"))
    build_deployment(cfg, tmp_path, name="team").apply(work_pool_name="gir-team")
    assert pool_deployment("team") == "gir-team"
    assert pool_deployment("no-such-deployment") is None

    params = tmp_path / "params.yaml"
    params.write_text(PARAMS)
    result = CliRunner().invoke(app, ["deploy", "--params", str(params), "--name", "team"])
    assert result.exit_code == 2, result.output
    assert "work pool 'gir-team'" in result.output and "--name" in result.output
