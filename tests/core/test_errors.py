"""Expected failures end in one line on stderr and a non-zero exit, fast, never a traceback.

Real parts: a closed TCP port (a service that is down), a moto S3 server that checks
credentials, a SQLite MLflow registry, read-only folders.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from girml.artifacts.store import save_model_dir
from girml.config import ModelConfig
from girml.core.errors import EX_CANTCREAT, EX_NOPERM, EX_UNAVAILABLE, describe_error
from girml.models import build_model
from pipelines.cli import app
from tests.factories import REPO, textured_image, tiny_params, write_params

SECRET = "s3cr3t-pw"


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert SECRET not in output
    return lines[0]


def test_train_fails_fast_when_the_mlflow_server_is_down(
    tmp_path: Path, free_tcp_port: int
) -> None:
    write_params(tmp_path / "params.yaml", tiny_params())
    url = f"http://alice:{SECRET}@127.0.0.1:{free_tcp_port}"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": url,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "girml", "train"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - start
    line = _one_error_line(done.stderr)
    assert done.returncode == EX_UNAVAILABLE
    masked = f"http://***@127.0.0.1:{free_tcp_port}"
    assert f"MLflow tracking server at {masked} is unreachable: Connection refused" in line
    # not a speed target: the bound only tells fail-fast (seconds, most of it start-up on a
    # loaded machine) from MLflow's default retry loop (257 s before the fix)
    assert elapsed < 60
    assert not (tmp_path / "checkpoints").exists()  # stopped before any work


def test_girml_debug_shows_the_traceback_and_keeps_the_exit_code(
    tmp_path: Path, free_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", tiny_params())
    env = {
        "MLFLOW_TRACKING_URI": f"http://alice:{SECRET}@127.0.0.1:{free_tcp_port}",
        "GIRML_DEBUG": "1",
    }
    result = CliRunner().invoke(app, ["train"], env=env)
    assert result.exit_code == EX_UNAVAILABLE  # 1 before: the traceback replaced the code
    assert "Traceback (most recent call last)" in result.output and "ServiceUnreachable" in (
        result.output
    )
    assert SECRET not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: MLflow tracking server at http://***@127.0.0.1:")


@pytest.fixture(scope="module")
def registry_db(tmp_path_factory: pytest.TempPathFactory, mlflow_schema: Path) -> str:
    """A SQLite registry whose gir-restorer@champion lives at s3://models/gir (not uploaded)."""
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("registry") / "mlflow.db"
    shutil.copyfile(mlflow_schema, db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("gir-restorer")
    version = client.create_model_version("gir-restorer", "s3://models/gir")
    client.set_registered_model_alias("gir-restorer", "champion", version.version)
    return uri


@pytest.fixture
def registry(registry_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in ``tmp_path`` against :func:`registry_db`; returns ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_db)
    for name in ("AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.setenv(name, "")  # restored after the test (pull sets them when empty)
    return tmp_path


def test_pull_model_from_an_unreachable_s3_endpoint(
    registry: Path, free_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://key:{SECRET}@127.0.0.1:{free_tcp_port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    start = time.monotonic()
    result = CliRunner().invoke(app, ["pull", "model", "-o", str(registry / "out")])
    line = _one_error_line(result.output)
    assert result.exit_code == EX_UNAVAILABLE
    assert f"S3 endpoint at http://***@127.0.0.1:{free_tcp_port} is unreachable" in line
    assert time.monotonic() - start < 60  # fail-fast, not botocore's retry loop


def test_pull_model_with_wrong_s3_credentials(
    registry: Path, s3_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import settings

    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto checks keys now
    result = CliRunner().invoke(app, ["pull", "model", "-o", str(registry / "out")])
    line = _one_error_line(result.output)
    assert result.exit_code == EX_NOPERM, line
    assert f"wrong credentials for {s3_env} (InvalidAccessKeyId" in line


def test_credential_client_error_maps_to_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://k:{SECRET}@minio:9000")
    for name in ("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    error = {"Error": {"Code": "SignatureDoesNotMatch", "Message": "bad secret"}}
    message, code = describe_error(ClientError(error, "ListObjectsV2"))
    assert (
        message == "wrong credentials for http://***@minio:9000 (SignatureDoesNotMatch: bad secret)"
    )
    assert code == EX_NOPERM
    assert describe_error(RuntimeError("a bug")) is None  # bugs keep their traceback


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    cfg = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
    save_model_dir(build_model(cfg), cfg, tmp_path / "model")
    return tmp_path / "model"


def _unwritable(tmp_path: Path) -> Path:
    """A folder path that cannot be written: read-only for a user, under a file for root."""
    if os.geteuid() == 0:  # root ignores the mode bits
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        return blocker / "out"
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    return folder / "out"


def test_restore_into_an_unwritable_folder(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from girml.core.imageio import write_png

    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "in" / "a.png", textured_image(0, 32, 32))
    out = _unwritable(tmp_path)
    args = ["restore", str(tmp_path / "in"), "-o", str(out), "--model", str(model_dir)]
    result = CliRunner().invoke(app, args)
    line = _one_error_line(result.output.split("\n", 1)[1])  # after "model: ... on cpu"
    assert result.exit_code == EX_CANTCREAT
    assert line.startswith("error: cannot access ") and str(tmp_path) in line


def test_restore_into_its_input_folder(tmp_path: Path, model_dir: Path) -> None:
    from girml.core.imageio import write_png

    write_png(tmp_path / "in" / "a.png", textured_image(0, 32, 32))
    args = ["restore", str(tmp_path / "in"), "-o", str(tmp_path / "in"), "--model", str(model_dir)]
    result = CliRunner().invoke(app, args)
    line = _one_error_line(result.output.split("\n", 1)[1])
    assert result.exit_code == 1 and "would overwrite an input" in line


def test_restore_with_no_image_fails(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no photo here")
    args = ["restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(model_dir)]
    result = CliRunner().invoke(app, args)
    line = _one_error_line(result.output.split("\n", 1)[1])
    assert result.exit_code == 1
    assert "nothing restored: no image file" in line and str(tmp_path / "in") in line


def test_flow_stops_at_once_when_the_prefect_api_is_down(
    tmp_path: Path, free_tcp_port: int
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = f"http://user:{SECRET}@127.0.0.1:{free_tcp_port}/api"
    start = time.monotonic()
    with temporary_settings(updates={PREFECT_API_URL: url}):
        result = CliRunner().invoke(app, ["flow", "--project-dir", str(tmp_path)])
    line = _one_error_line(result.output)
    assert result.exit_code == 2 and "is not reachable" in line
    assert time.monotonic() - start < 60  # fail-fast, not botocore's retry loop
