"""Joining or starting Ray (girml/tuning/ray_session.py): a refused join says how to
authenticate, and a search joins a real token-authenticated cluster."""

from __future__ import annotations

import contextlib
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

import psutil
import pytest

from tests.conftest import free_port
from tests.factories import REPO
from tests.tuning.common import tune_cfg, tune_script


def _stop_by_pid(folder: str) -> None:
    """End every process whose command line names ``folder`` (a head's temp dir), by PID."""
    procs = [
        p for p in psutil.process_iter(["cmdline"]) if folder in " ".join(p.info["cmdline"] or [])
    ]
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=3)
    for proc in alive:  # the GCS server does not always stop on SIGTERM: 3 s, not 10, for it
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
    cfg = tune_cfg(max_concurrent=1)
    code = tune_script(cfg, pairs_dir, tmp_path / "work")
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

    from girml.core.errors import ServiceUnreachable
    from girml.tuning.ray_session import ray_session

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
