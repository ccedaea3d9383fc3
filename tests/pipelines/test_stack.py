"""``girml stack``: the local S3 + MLflow + Prefect services on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from pipelines.stack import DVC_REMOTE, unpoint_dvc
from pipelines.stack_processes import group_members
from pipelines.stack_services import Ports, stack_env
from tests.conftest import free_port


def _girml(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from pipelines.cli import app; app()", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_stack_up_status_down(tmp_path: Path) -> None:
    ports = Ports(s3=free_port(), mlflow=free_port(), prefect=free_port())
    dvc = [sys.executable, "-m", "dvc"]
    for cmd in (["git", "init", "-q"], [*dvc, "init", "-q"]):
        subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)
    up = _girml(
        "stack", "up", "--s3-port", str(ports.s3), "--mlflow-port", str(ports.mlflow),
        "--prefect-port", str(ports.prefect), "--bucket", "stack-test", cwd=tmp_path,
    )  # fmt: skip
    state = tmp_path / ".stack"
    pids = {p.stem: int(p.read_text()) for p in state.glob("*.pid")}
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        env = stack_env(ports)
        env_file = (state / "env").read_text()
        assert all(f"export {k}={v}\n" in env_file for k, v in env.items())
        assert f"PREFECT_API_URL={env['PREFECT_API_URL']}" in up.stdout
        assert set(pids) == {"s3", "mlflow", "prefect"}

        assert requests.get(f"{env['PREFECT_API_URL']}/health", timeout=10).json() is True
        ui = env["PREFECT_API_URL"].removesuffix("/api")
        ui_settings = requests.get(f"{ui}/ui-settings", timeout=10).json()
        assert ui_settings["api_url"] == env["PREFECT_API_URL"]  # not :4200
        assert requests.get(f"{env['MLFLOW_TRACKING_URI']}/health", timeout=10).ok
        # an MLflow artifact upload goes through the tracking server into the S3 bucket
        put = requests.put(
            f"{env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow-artifacts/artifacts/check/hello.txt",
            data=b"hello",
            timeout=30,
        )
        assert put.ok, put.text
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        body = s3.get_object(Bucket="stack-test", Key="mlartifacts/check/hello.txt")["Body"]
        assert body.read() == b"hello"

        # DVC's default remote is now the stack's bucket: `dvc push` lands there
        assert f"DVC default remote: '{DVC_REMOTE}' -> s3://stack-test/dvc" in up.stdout
        (tmp_path / "data.txt").write_text("pushed\n")
        dvc_env = {**os.environ, **env, "DVC_NO_ANALYTICS": "1"}
        for cmd in (["add", "data.txt"], ["push"]):
            done = subprocess.run([*dvc, *cmd], cwd=tmp_path, env=dvc_env, capture_output=True)
            assert done.returncode == 0, done.stderr
        keys = s3.list_objects_v2(Bucket="stack-test", Prefix="dvc/").get("Contents", [])
        assert keys, "dvc push did not reach the bucket"

        status = _girml("stack", "status", cwd=tmp_path)
        assert status.returncode == 0, status.stdout
        assert status.stdout.count(" up ") == 3
        again = _girml("stack", "up", cwd=tmp_path)  # default ports, but all already running
        assert again.returncode == 0 and again.stdout.count("already running") == 3
    finally:
        down = _girml("stack", "down", cwd=tmp_path)
    assert down.returncode == 0 and "stopped: s3, mlflow, prefect" in down.stdout
    assert f"removed DVC remote '{DVC_REMOTE}'" in down.stdout
    assert DVC_REMOTE not in (tmp_path / ".dvc/config.local").read_text()
    for pid in pids.values():
        assert not group_members(pid)
    for port in (ports.s3, ports.mlflow, ports.prefect):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
    assert not (state / "env").exists() and (state / "mlflow.db").is_file()
    assert _girml("stack", "status", cwd=tmp_path).returncode == 1


def test_status_of_a_stack_that_never_ran_is_down(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, ["stack", "status", "--dir", str(tmp_path / ".stack")])
    assert result.exit_code == 1
    assert [line.split()[:2] for line in result.output.splitlines()] == [
        ["s3", "down"],
        ["mlflow", "down"],
        ["prefect", "down"],
    ]
    assert not unpoint_dvc(tmp_path)  # no DVC remote of the stack to remove
