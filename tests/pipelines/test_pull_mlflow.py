"""``girml pull model|reports`` (pipelines/pull_mlflow.py): models and reports from MLflow on S3.

Real services only: a moto S3 server over HTTP (``s3_server``), a SQLite MLflow store in a temp
folder whose artifacts live on it. The store is also searched for the credentials it was
written with. The MLflow requests a pull makes (listing, checked downloads, pinning a version)
are tested on their own in tests/tracking/test_artifacts.py and test_versions.py.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from botocore.exceptions import ClientError, EndpointConnectionError
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from moto.server import ThreadedMotoServer
from torch import nn

from girml.artifacts.loading import load_model
from girml.artifacts.registered import log_and_register_model
from girml.config import ModelConfig
from girml.core.imageio import read_image, write_png
from girml.core.retry import is_transient, with_retries
from girml.models import build_model
from girml.storage import s3
from girml.tracking.logs import log_curves, log_metrics, log_params_flat
from girml.tracking.provenance import provenance_tags
from girml.tracking.runs import start_run
from girml.tracking.store import configure
from girml.tracking.versions import CHAMPION, REGISTERED_MODEL, set_alias
from pipelines.cli import app
from pipelines.pull_checks import PullError
from pipelines.pull_mlflow import fetch_artifacts, resolve_model
from pipelines.pull_verify import SUMS_FILE, check_sums
from tests.factories import textured_image
from tests.pipelines.pull_common import KEY_ID, SECRET, runner

ROOT = Path(__file__).resolve().parents[2]
TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
EXPERIMENT = "gir"
MODEL_BUCKET = "girml-test-mlflow"
REPORT_TEXT = "PSNR gain +1.23 dB\n"
pytestmark = pytest.mark.usefixtures("restore_environ")


def _forward(model: nn.Module, seed: int = 0) -> torch.Tensor:
    x = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return model(x)


@dataclass(frozen=True)
class Registry:
    """A SQLite MLflow store whose experiment keeps its artifacts on the moto S3."""

    tracking_uri: str
    db: Path
    run_id: str
    version: int
    model: nn.Module


@pytest.fixture(scope="module")
def registry(
    aws: dict[str, str], tmp_path_factory: pytest.TempPathFactory, mlflow_schema: Path
) -> Iterator[Registry]:
    """A training-like run (provenance tags, params, metrics, curves, a report, the model)."""
    root = tmp_path_factory.mktemp("project")
    db = root / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(mlflow_schema, db)
    uri = f"sqlite:///{db}"
    before = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("GIT_CEILING_DIRECTORIES", str(root))
        s3.make_client().create_bucket(Bucket=MODEL_BUCKET)
        configure(root)
        # Variant (a): the experiment's artifact_location is on S3; MLflow writes there directly.
        MlflowClient().create_experiment(EXPERIMENT, artifact_location=f"s3://{MODEL_BUCKET}/mlf")
        (root / "params.yaml").write_text("model:\n  width: 4\n", encoding="utf-8")
        torch.manual_seed(0)
        model = build_model(TINY)
        with torch.no_grad():  # a fresh NAFNet is near identity; make the outputs distinctive
            for param in model.parameters():
                param.add_(0.1 * torch.randn_like(param))
        model.eval()
        tags = {**provenance_tags(root, Path("params.yaml")), "stage": "train"}
        with start_run(EXPERIMENT, root, "train", tags, log_system_metrics=False) as run:
            log_params_flat({"model": TINY})
            log_metrics(2, {"loss": 0.4})
            log_curves([{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.4}], "curves/train")
            mlflow.log_text(REPORT_TEXT, "reports/summary.txt")
            example = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
            version = log_and_register_model(model, example, model_cfg=TINY)
        set_alias(REGISTERED_MODEL, CHAMPION, version)
        yield Registry(uri, db, run.info.run_id, version, model)
        mlflow.set_tracking_uri(before)


def _girml(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``girml ARGS`` in a fresh interpreter with exactly ``env`` (plus PATH and PYTHONPATH)."""
    code = "from pipelines.cli import app; app(prog_name='girml')"
    full_env = {**env, "PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_pull_model_from_clean_directory_then_restore(
    registry: Registry, aws: dict[str, str], tmp_path: Path
) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    env = {**aws, "MLFLOW_TRACKING_URI": registry.tracking_uri, "HOME": str(tmp_path)}

    pulled = _girml(["pull", "model", "models:/gir-restorer@champion", "-o", "model"], clean, env)
    assert pulled.returncode == 0, pulled.stderr
    assert f"models:/{REGISTERED_MODEL}/{registry.version}" in pulled.stdout
    out = clean / "model"
    assert (out / "MLmodel").is_file() and (out / SUMS_FILE).is_file()
    assert check_sums(out) == len([p for p in out.rglob("*") if p.is_file()]) - 1
    assert torch.equal(_forward(load_model(str(out))), _forward(registry.model))
    assert sorted(os.listdir(clean)) == ["model"]  # no mlflow.db, mlruns or temp left behind

    write_png(clean / "photo.png", textured_image(3, 40, 36))
    restored = _girml(["restore", "photo.png", "-o", "restored", "--model", "model"], clean, env)
    assert restored.returncode == 0, restored.stderr
    assert read_image(clean / "restored" / "photo.png").shape == (40, 36, 3)
    for done in (pulled, restored):
        assert SECRET not in done.stdout + done.stderr
        assert KEY_ID not in done.stdout + done.stderr


def test_pull_model_refuses_bad_uri_missing_alias_and_missing_store(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bad = runner.invoke(app, ["pull", "model", "runs:/abc/model", "-o", "m"])
    assert bad.exit_code == 1 and "models:/<name>@<alias>" in bad.output
    missing = runner.invoke(app, ["pull", "model", "models:/gir-restorer@nope", "-o", "m"])
    assert missing.exit_code == 1 and "not in the registry" in missing.output
    assert not (tmp_path / "m").exists()

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    no_store = runner.invoke(app, ["pull", "model", "-o", "m"])
    assert no_store.exit_code == 1 and "MLFLOW_TRACKING_URI" in no_store.output
    assert list(tmp_path.iterdir()) == []  # no empty mlflow.db created just to look


def test_pull_reports_folder_file_and_whole_run(registry: Registry, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["pull", "reports", registry.run_id, "--path", "reports", "-o", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r/reports/summary.txt").read_text() == REPORT_TEXT
    assert check_sums(tmp_path / "r") == 1

    whole = tmp_path / "all"
    result = runner.invoke(app, ["pull", "reports", registry.run_id, "-o", str(whole)])
    assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(whole).as_posix() for p in whole.rglob("*") if p.is_file())
    assert files == [SUMS_FILE, "curves/train.csv", "curves/train.png", "reports/summary.txt"]

    args = ["pull", "reports", registry.run_id, "--path", "reports/summary.txt", "-o", str(whole)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "--force" in refused.output
    replaced = runner.invoke(app, [*args, "--force"])
    assert replaced.exit_code == 0, replaced.output
    assert sorted(p.name for p in whole.rglob("*") if p.is_file()) == [SUMS_FILE, "summary.txt"]

    unknown = runner.invoke(app, ["pull", "reports", "0" * 32, "-o", str(tmp_path / "x")])
    assert unknown.exit_code == 1 and "0" * 32 in unknown.output
    nothing = runner.invoke(
        app, ["pull", "reports", registry.run_id, "--path", "nope", "-o", str(tmp_path / "y")]
    )
    assert nothing.exit_code == 1 and "no artifacts" in nothing.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


class _StartServerOnRetry(logging.Handler):
    """Starts the S3 server at the first retry warning: the first attempt surely failed."""

    def __init__(self, port: int) -> None:
        super().__init__(logging.WARNING)
        self.port = port
        self.server: ThreadedMotoServer | None = None
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if self.server is None:
            # Same process, so the same in-memory S3 state as the s3_server fixture.
            self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
            self.server.start()


def test_pull_retries_until_the_endpoint_answers(
    registry: Registry, tmp_path: Path, free_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{free_tcp_port}"  # nothing listens there yet
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no botocore retries: the outer loop's job
    # The fail-fast probe of a down endpoint is tested in test_errors.py; here the endpoint
    # goes down between the probe and the download, which the download's retries must ride out.
    monkeypatch.setattr("pipelines.pull_mlflow.probe_s3", lambda: None)
    handler = _StartServerOnRetry(free_tcp_port)
    logger = logging.getLogger("girml.core.retry")
    logger.addHandler(handler)
    try:
        uri = f"models:/{REGISTERED_MODEL}/{registry.version}"
        result = runner.invoke(app, ["pull", "model", uri, "-o", str(tmp_path / "m")])
    finally:
        logger.removeHandler(handler)
        if handler.server is not None:
            handler.server.stop()
    assert result.exit_code == 0, result.output
    assert handler.server is not None
    assert "attempt 1/4 failed" in handler.messages[0] and "retrying" in handler.messages[0]
    assert "after 2 attempts" in result.output
    assert torch.equal(_forward(load_model(str(tmp_path / "m"))), _forward(registry.model))


def test_no_credentials_in_tracking_store_or_artifacts(registry: Registry, tmp_path: Path) -> None:
    client = MlflowClient()
    run = client.get_run(registry.run_id)
    assert run.info.artifact_uri.startswith(f"s3://{MODEL_BUCKET}/")
    texts = [*run.data.params.items(), *run.data.tags.items()]
    version = client.get_model_version(REGISTERED_MODEL, str(registry.version))
    texts += [*version.tags.items(), (version.description or "", version.source)]
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    texts += [*logged.params.items(), *logged.tags.items()]
    assert "params_hash" in run.data.tags and "model.width" in run.data.params
    joined = repr(texts)
    # Every byte stored: the SQLite file and every object in the artifact bucket.
    blobs = [registry.db.read_bytes()]
    client_s3 = s3.make_client()
    keys = [o.key for o in s3.iter_objects(MODEL_BUCKET, client=client_s3)]
    assert any(key.endswith("reports/summary.txt") for key in keys)
    assert any(key.endswith("artifacts/model/weights.pt") for key in keys)  # weights + config
    blobs += [s3.get_bytes(MODEL_BUCKET, key, client=client_s3) for key in keys]
    for needle in (SECRET, KEY_ID):
        assert needle not in joined
        assert all(needle.encode() not in blob for blob in blobs)


def test_arguments_that_cannot_name_a_version_or_a_path_are_refused_before_any_request(
    tmp_path: Path,
) -> None:
    for uri in ("runs:/abc/model", "models:/gir-restorer", "models:/a/b/c", "models:/x@"):
        with pytest.raises(PullError, match=r"expected models:/<name>@<alias> or"):
            resolve_model(uri)
    for path in ("/etc", "../up", ""):
        with pytest.raises(PullError, match="artifact path must be relative"):
            fetch_artifacts("file:///nowhere", path, tmp_path / "out", "test")
    assert not (tmp_path / "out").exists()


def test_a_download_is_retried_on_transient_failures_only() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return "ok"

    assert with_retries(flaky, "flaky", attempts=3, backoff_s=0) == ("ok", 3)

    calls.clear()
    with pytest.raises(EndpointConnectionError):
        with_retries(flaky, "flaky", attempts=2, backoff_s=0)
    assert len(calls) == 2

    def missing() -> None:
        calls.append(1)
        raise PullError("no such model")

    calls.clear()
    with pytest.raises(PullError):
        with_retries(missing, "missing", attempts=5, backoff_s=0)
    assert len(calls) == 1
    with pytest.raises(ValueError, match="attempts must be >= 1, got 0"):
        with_retries(missing, "x", attempts=0)
    with pytest.raises(ValueError, match="backoff_s must be >= 0, got -1"):
        with_retries(missing, "x", backoff_s=-1)


def _client_error(status: int, code: str) -> ClientError:
    response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "GetObject")


def test_the_failures_a_pull_meets_are_classified() -> None:
    assert is_transient(ConnectionResetError())
    assert is_transient(_client_error(503, "SlowDown"))
    assert not is_transient(_client_error(404, "NoSuchKey"))
    assert not is_transient(_client_error(403, "AccessDenied"))
    assert is_transient(MlflowException("failures while downloading"))  # INTERNAL_ERROR
    assert not is_transient(MlflowException("gone", error_code=RESOURCE_DOES_NOT_EXIST))
    assert not is_transient(ValueError("bad"))
