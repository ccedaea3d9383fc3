"""The three services of the local stack and how each starts: where it listens, its command
line, the URL that tells it is up, the marker that tells a process is it, and the variables a
client exports to use the stack.

- ``s3``: an S3-compatible endpoint (moto's server), with the bucket for DVC and MLflow;
- ``mlflow``: an MLflow tracking server, runs in ``<state dir>/mlflow.db``, artifacts proxied
  to ``s3://<bucket>/mlartifacts`` on that endpoint;
- ``prefect``: a Prefect server (API and UI), its database under ``<state dir>/prefect``; its UI
  calls the API on the server's own port.

The AWS credentials are moto's dummy ones.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
OFFLINE = {
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


@dataclass(frozen=True)
class Ports:
    """Loopback ports of the three services."""

    s3: int = 5000
    mlflow: int = 5001
    prefect: int = 4200


@dataclass(frozen=True)
class Service:
    """How to start one service and how to tell that it is up and that a process is it."""

    name: str
    port: int
    argv: tuple[str, ...]
    health_path: str
    marker: str  # substring of the command line that identifies the process as this service
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def stack_env(ports: Ports) -> dict[str, str]:
    """The variables a client exports to use the stack (endpoint, tracking, Prefect, creds)."""
    s3 = f"http://{HOST}:{ports.s3}"
    return {
        "AWS_ENDPOINT_URL": s3,
        **DUMMY_CREDENTIALS,
        "MLFLOW_TRACKING_URI": f"http://{HOST}:{ports.mlflow}",
        "MLFLOW_S3_ENDPOINT_URL": s3,
        "PREFECT_API_URL": f"http://{HOST}:{ports.prefect}/api",
    }


def services(state_dir: Path, ports: Ports, bucket: str) -> list[Service]:
    """The three services in start order (the S3 endpoint first: MLflow stores artifacts there)."""
    state = state_dir.resolve()
    py = sys.executable
    prefect_api = f"http://{HOST}:{ports.prefect}/api"
    mlflow_env = {
        "MLFLOW_S3_ENDPOINT_URL": f"http://{HOST}:{ports.s3}",
        **DUMMY_CREDENTIALS,
        # background jobs serve GenAI features only; they cost seven busy processes
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    return [
        Service(
            "s3",
            ports.s3,
            (py, "-m", "moto.server", "-H", HOST, "-p", str(ports.s3)),
            "/",
            "moto.server",
        ),
        Service(
            "mlflow",
            ports.mlflow,
            (
                *(py, "-m", "mlflow", "server", "--workers=1", f"--host={HOST}"),
                f"--port={ports.mlflow}",
                f"--backend-store-uri=sqlite:///{state / 'mlflow.db'}",
                f"--artifacts-destination=s3://{bucket}/mlartifacts",
            ),
            "/health",
            "mlflow server",
            mlflow_env,
        ),
        Service(
            "prefect",
            ports.prefect,
            (py, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(ports.prefect)),
            "/api/health",
            "prefect server start",
            {
                "PREFECT_HOME": str(state / "prefect"),
                # the UI asks the browser to call PREFECT_UI_API_URL, which otherwise follows a
                # PREFECT_API_URL in the environment, else port 4200: a blank UI on other ports
                "PREFECT_UI_API_URL": prefect_api,
                "PREFECT_API_URL": prefect_api,
                "PREFECT_SERVER_API_HOST": HOST,
                "PREFECT_SERVER_API_PORT": str(ports.prefect),
            },
        ),
    ]
