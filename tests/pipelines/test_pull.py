"""``girml pull`` (pipelines/pull.py): models and reports from MLflow, data from DVC, on S3.

Real services only: a moto S3 server over HTTP (``s3_server``), a SQLite MLflow store in a temp
folder whose artifacts live on it, a git + DVC repository whose remote is on it, the real
``dvc`` and ``git`` CLIs. The store is also searched for the credentials it was written with.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from moto.server import ThreadedMotoServer
from torch import nn
from typer.testing import CliRunner

from girml.config import ModelConfig
from girml.imageio import read_image, write_png
from girml.models import build_model
from girml.models.store import load_model
from girml.storage import s3
from girml.tracking.mlflow import (
    CHAMPION,
    REGISTERED_MODEL,
    configure,
    log_and_register_model,
    log_curves,
    log_metrics,
    log_params_flat,
    provenance_tags,
    set_alias,
    start_run,
)
from pipelines.cli import app
from pipelines.dvc_run import run_dvc
from pipelines.pull import (
    SUMS_FILE,
    PullError,
    check_sums,
    set_s3_env_defaults,
    write_sums,
)
from tests.conftest import s3_client_env
from tests.factories import textured_image

ROOT = Path(__file__).resolve().parents[2]
KEY_ID = "GIRMLTESTKEYID7C1F0E9A"
SECRET = "girml-test-SECRET-7c1f0e9a-do-not-log"
TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
EXPERIMENT = "gir"
MODEL_BUCKET = "girml-test-mlflow"
DVC_BUCKET = "girml-test-dvc"
REPORT_TEXT = "PSNR gain +1.23 dB\n"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=0"]
runner = CliRunner()
pytestmark = pytest.mark.usefixtures("restore_environ")


@pytest.fixture(scope="module")
def aws(s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """S3 settings (distinctive fake credentials) for this module; yields them."""
    with s3_client_env(s3_server, tmp_path_factory.mktemp("home"), KEY_ID, SECRET) as env:
        yield env


def _forward(model: nn.Module, seed: int = 0) -> torch.Tensor:
    x = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return model(x)


# --------------------------------------------------------------------------- MLflow on S3


@dataclass(frozen=True)
class Registry:
    """A SQLite MLflow store whose experiment keeps its artifacts on the moto S3."""

    tracking_uri: str
    db: Path
    run_id: str
    version: int
    model: nn.Module


@pytest.fixture(scope="module")
def registry(aws: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A training-like run (provenance tags, params, metrics, curves, a report, the model)."""
    root = tmp_path_factory.mktemp("project")
    db = root / "store" / "mlflow.db"
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
    monkeypatch.setattr("pipelines.pull.probe_s3", lambda: None)
    handler = _StartServerOnRetry(free_tcp_port)
    logger = logging.getLogger("girml.retry")
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


# --------------------------------------------------------------------------- DVC on S3


@dataclass(frozen=True)
class Origin:
    """A git + DVC repository whose data lives on the moto S3 (tags v1 and v2 pushed)."""

    path: Path
    v1: dict[str, bytes]
    v2: dict[str, bytes]


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _git(cwd: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def origin(aws: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origin]:
    repo = tmp_path_factory.mktemp("origin")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        patch.setenv("GIT_CEILING_DIRECTORIES", str(repo.parent))
        s3.make_client().create_bucket(Bucket=DVC_BUCKET)
        _git(repo, "init", "-q")
        run_dvc(["init", "-q"], repo)
        bench = repo / "data" / "bench"
        for i, rel in enumerate(["single-id/noise/0.png", "single-id/noise/1.png"]):
            write_png(bench / rel, textured_image(i, 16, 16))
        write_png(bench / "single-id/blur/0.png", textured_image(2, 16, 16))
        write_png(bench / "mixed/noise+blur/0.png", textured_image(3, 16, 16))
        endpoint = aws["AWS_ENDPOINT_URL"]
        args = ["remote", "s3", f"{DVC_BUCKET}/dvc", "--endpoint-url", endpoint, "--default"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        v1 = _tree(bench / "single-id")
        for tag in ("v1", "v2"):
            if tag == "v2":  # a new data version: one image changes
                write_png(bench / "single-id/noise/1.png", textured_image(9, 16, 16))
            run_dvc(["add", "-q", "data/bench"], repo)
            _git(repo, "add", "-A")
            _git(repo, "commit", "-qm", tag)
            _git(repo, "tag", tag)
            run_dvc(["push", "-q"], repo)
        yield Origin(repo, v1, _tree(bench / "single-id"))


def _clone(origin: Origin, dest: Path) -> Path:
    _git(origin.path.parent, "clone", "-q", str(origin.path), str(dest))
    return dest


@pytest.mark.slow
def test_dvc_push_clone_pull_round_trip(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = (origin.path / ".dvc" / "config").read_text()
    assert f"url = s3://{DVC_BUCKET}/dvc" in config and "endpointurl = http://127.0.0.1:" in config
    assert SECRET not in config and KEY_ID not in config
    keys = [o.key for o in s3.iter_objects(DVC_BUCKET, "dvc/")]
    assert any(key.endswith(".dir") for key in keys)

    clone = _clone(origin, tmp_path / "clone")
    monkeypatch.chdir(clone / "data")  # targets are relative to the working directory
    result = runner.invoke(app, ["pull", "data", "bench/single-id"])
    assert result.exit_code == 0, result.output
    assert "3 files md5-verified" in result.output
    assert _tree(clone / "data/bench/single-id") == origin.v2
    assert not (clone / "data/bench/mixed").exists()  # only the suite asked for was fetched
    assert SECRET not in result.output


@pytest.mark.slow
def test_dvc_get_a_revision_from_a_clean_directory(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["pull", "data", "data/bench/single-id", "--repo", str(origin.path), "--rev", "v1"]
    result = runner.invoke(app, [*args, "-o", "suite"])
    assert result.exit_code == 0, result.output
    assert _tree(tmp_path / "suite") == origin.v1 != origin.v2

    no_repo = runner.invoke(app, ["pull", "data", "data/bench/single-id", "--rev", "v1"])
    assert no_repo.exit_code == 1 and "--repo" in no_repo.output
    outside = runner.invoke(app, ["pull", "data", "data/bench/single-id"])
    assert outside.exit_code == 1 and "not inside a DVC project" in outside.output


@pytest.mark.slow
def test_corrupt_remote_object_is_detected(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    md5 = hashlib.md5(origin.v2["noise/0.png"]).hexdigest()
    key = f"dvc/files/md5/{md5[:2]}/{md5[2:]}"
    client = s3.make_client()
    good = s3.get_bytes(DVC_BUCKET, key, client=client)
    client.put_object(Bucket=DVC_BUCKET, Key=key, Body=good[:-1] + b"\x00")
    try:
        clone = _clone(origin, tmp_path / "clone")
        monkeypatch.chdir(clone)
        result = runner.invoke(app, ["pull", "data", "data/bench/single-id"])
    finally:
        client.put_object(Bucket=DVC_BUCKET, Key=key, Body=good)
    assert result.exit_code == 1
    assert "noise/0.png: md5" in result.output and md5 in result.output


# --------------------------------------------------------------------------- checksums, settings


def test_sha256sums_written_checked_and_tampering_caught(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "data" / "model.pth").write_bytes(b"\x00\x01weights")
    sums = write_sums(tmp_path)
    assert sums == {
        "MLmodel": hashlib.sha256(b"flavors: {}\n").hexdigest(),
        "data/model.pth": hashlib.sha256(b"\x00\x01weights").hexdigest(),
    }
    lines = (tmp_path / SUMS_FILE).read_text().splitlines()
    assert lines == [f"{digest}  {rel}" for rel, digest in sums.items()]  # sha256sum -c format
    assert check_sums(tmp_path) == 2

    (tmp_path / "data" / "model.pth").write_bytes(b"\x00\x01weightz")
    (tmp_path / "MLmodel").unlink()
    with pytest.raises(PullError, match=r"data/model.pth: sha256 differs") as info:
        check_sums(tmp_path)
    assert "MLmodel: missing" in str(info.value)
    (tmp_path / SUMS_FILE).write_text("not a checksum line\n")
    with pytest.raises(PullError, match="not a sha256sum line"):
        check_sums(tmp_path)


def test_set_s3_env_defaults_keeps_user_settings() -> None:
    env = {"AWS_ENDPOINT_URL": "http://minio:9000", "AWS_MAX_ATTEMPTS": "9"}
    added = set_s3_env_defaults(env)
    assert added == {"AWS_RETRY_MODE": "standard", "MLFLOW_S3_ENDPOINT_URL": "http://minio:9000"}
    assert env["AWS_MAX_ATTEMPTS"] == "9"
    assert set_s3_env_defaults(env) == {}
    assert set_s3_env_defaults({}) == {"AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "5"}
