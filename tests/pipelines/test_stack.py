"""``girml stack``: the local S3 + MLflow + Prefect services on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests

from pipelines.stack import (
    DVC_REMOTE,
    Ports,
    StackError,
    group_members,
    move_taken_ports,
    services,
    stack_env,
    stack_status,
    start_stack,
    stop_group,
    stop_stack,
)
from tests.conftest import free_port


def test_env_and_commands_follow_the_ports(tmp_path: Path) -> None:
    ports = Ports(s3=1111, mlflow=2222, prefect=3333)
    env = stack_env(ports)
    assert env["AWS_ENDPOINT_URL"] == env["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:1111"
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:2222"
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:3333/api"
    assert env["AWS_SECRET_ACCESS_KEY"] == "testing"  # moto's dummy credentials only
    s3, mlflow, prefect = services(tmp_path, ports, "bkt")
    assert (s3.name, mlflow.name, prefect.name) == ("s3", "mlflow", "prefect")
    assert "1111" in s3.argv and "127.0.0.1" in s3.argv
    assert "--artifacts-destination=s3://bkt/mlartifacts" in mlflow.argv
    assert f"--backend-store-uri=sqlite:///{tmp_path.resolve()}/mlflow.db" in mlflow.argv
    assert mlflow.env["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:1111"
    assert prefect.argv[-4:] == ("--host", "127.0.0.1", "--port", "3333")
    assert prefect.env["PREFECT_HOME"] == str(tmp_path.resolve() / "prefect")
    # the UI follows the server's port, whatever PREFECT_API_URL the caller exports
    assert (
        prefect.env["PREFECT_UI_API_URL"]
        == prefect.env["PREFECT_API_URL"]
        == env["PREFECT_API_URL"]
    )
    assert prefect.env["PREFECT_SERVER_API_PORT"] == "3333"
    assert all(s.marker in " ".join(s.argv) for s in (s3, mlflow, prefect))


def test_stop_group_leaves_foreign_processes_alone(tmp_path: Path) -> None:
    assert stop_group(os.getpid(), "moto.server") is False  # this pytest is no S3 server
    (tmp_path / "s3.pid").write_text(f"{os.getpid()}\n")  # a stale pid file
    assert stop_stack(tmp_path) == []
    assert psutil.pid_exists(os.getpid()) and not (tmp_path / "s3.pid").exists()
    assert [row[2] for row in stack_status(tmp_path)] == [False, False, False]


def test_up_refuses_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = Ports(s3=port, mlflow=free_port(), prefect=free_port())
        with pytest.raises(StackError, match=f"s3 port {port} already in use"):
            start_stack(tmp_path, ports, "girml", echo=lambda _: None)
    assert not list(tmp_path.glob("*.pid"))


def test_taken_default_ports_move_chosen_ones_do_not() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        free = free_port()
        wanted = Ports(s3=taken, mlflow=taken, prefect=free)
        ports, notes = move_taken_ports(wanted, movable=["s3", "prefect"])
        assert ports.mlflow == taken and ports.prefect == free  # chosen by the user; free
        assert ports.s3 != taken and notes == [f"s3: port {taken} is taken, using {ports.s3}"]
        assert move_taken_ports(wanted, ["s3"], keep=["s3"])[0].s3 == taken  # already ours


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
