"""The stack's services (pipelines/stack_services.py): ports, command lines, environments."""

from __future__ import annotations

from pathlib import Path

from pipelines.stack_services import DUMMY_CREDENTIALS, Ports, services, stack_env


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


def test_the_s3_endpoint_starts_first_and_the_services_answer_on_their_ports(
    tmp_path: Path,
) -> None:
    ports = Ports()
    assert (ports.s3, ports.mlflow, ports.prefect) == (5000, 5001, 4200)
    specs = services(tmp_path, ports, "girml")
    assert [s.name for s in specs] == ["s3", "mlflow", "prefect"]  # MLflow stores into S3
    assert [s.url + s.health_path for s in specs] == [
        "http://127.0.0.1:5000/",
        "http://127.0.0.1:5001/health",
        "http://127.0.0.1:4200/api/health",
    ]
    mlflow = specs[1]
    assert {k: mlflow.env[k] for k in DUMMY_CREDENTIALS} == DUMMY_CREDENTIALS
    assert mlflow.env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
