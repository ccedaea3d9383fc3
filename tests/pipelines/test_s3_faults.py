"""S3 faults mid-transfer, and a killed collect: through a real proxy in front of moto's server.

The S3 endpoint every client sees is a :class:`tests.faults.FaultProxy` in front of the session's
moto server, so connections can be cut part-way through a response (downloads) or a request
(uploads), or reset, while MLflow, DVC and the collect stage run for real. The questions: is
the failure retried or reported in one line, and is nothing half-written ever taken as done?
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from PIL import Image
from typer.testing import CliRunner

from girml.artifacts.loading import load_model
from girml.artifacts.registered import log_and_register_model
from girml.cli import app as girml_app
from girml.config import CollectConfig, ModelConfig
from girml.core.imageio import read_image, write_png
from girml.data.collect import collect
from girml.models import build_model
from girml.storage import s3
from girml.tracking.runs import start_run
from girml.tracking.store import configure
from girml.tracking.versions import CHAMPION, REGISTERED_MODEL, set_alias
from pipelines.cli import app
from pipelines.dvc_run import DvcError, run_dvc
from pipelines.pull_verify import check_sums
from tests.conftest import s3_client_env
from tests.factories import kill_when, spawn_python, textured_image, write_params
from tests.faults import FaultProxy

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
MODEL_BUCKET = "girml-faults-mlflow"
DVC_BUCKET = "girml-faults-dvc"
COLLECT_BUCKET = "girml-faults-collect"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=0"]
CUT_AT = 4000  # bytes of one response (or request) let through before a cut
runner = CliRunner()
pytestmark = pytest.mark.usefixtures("restore_environ")


@pytest.fixture(scope="module")
def aws(s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Dummy credentials, moto as the endpoint (for set-up), quiet tools; yields moto's URL."""
    with s3_client_env(s3_server, tmp_path_factory.mktemp("home")):
        yield s3_server


@pytest.fixture
def proxy(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A fault proxy in front of moto, set as every client's S3 endpoint for one test."""
    port = urlparse(aws).port
    assert port is not None
    with FaultProxy(port) as fault_proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.url)
        monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", fault_proxy.url)
        yield fault_proxy


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _leftovers(folder: Path) -> list[str]:
    """Names under ``folder`` that an interrupted write leaves (temp and partial files)."""
    marks = (".tmp", ".part", ".partial")
    return [p.name for p in folder.rglob("*") if p.name.endswith(marks) or ".tmp" in p.name]


# --------------------------------------------------------------------------- girml pull


@dataclass(frozen=True)
class Registry:
    """A SQLite MLflow store whose experiment keeps its artifacts on moto."""

    tracking_uri: str
    run_id: str
    version: int
    model: torch.nn.Module
    report: bytes


@pytest.fixture(scope="module")
def registry(
    aws: str, tmp_path_factory: pytest.TempPathFactory, mlflow_schema: Path
) -> Iterator[Registry]:
    """One run with a report (100 kB, so a cut lands mid-body) and a registered tiny model."""
    root = tmp_path_factory.mktemp("project")
    shutil.copyfile(mlflow_schema, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    before = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("GIT_CEILING_DIRECTORIES", str(root))
        s3.make_client().create_bucket(Bucket=MODEL_BUCKET)
        configure(root)
        MlflowClient().create_experiment("faults", artifact_location=f"s3://{MODEL_BUCKET}/mlf")
        torch.manual_seed(0)
        model = build_model(TINY)
        with torch.no_grad():  # a fresh NAFNet is near identity; make the outputs distinctive
            for param in model.parameters():
                param.add_(0.1 * torch.randn_like(param))
        model.eval()
        report = np.random.default_rng(1).bytes(100_000).hex().encode()[:100_000]
        tags = {"stage": "train"}
        with start_run("faults", root, "train", tags, log_system_metrics=False) as run:
            mlflow.log_text(report.decode(), "reports/big.txt")
            example = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
            version = log_and_register_model(model, example, model_cfg=TINY)
        set_alias(REGISTERED_MODEL, CHAMPION, version)
        yield Registry(uri, run.info.run_id, version, model, report)
        mlflow.set_tracking_uri(before)


def _forward(model: torch.nn.Module) -> torch.Tensor:
    x = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        return model(x)


class _HealOnRetry(logging.Handler):
    """Lets the proxy pass again at the first retry warning: the first attempt surely failed."""

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__(logging.WARNING)
        self.proxy = proxy
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.proxy.pass_through()


def test_pull_model_cut_mid_transfer_is_retried_and_verified(
    registry: Registry, proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no botocore retries: the outer loop's job
    proxy.cut(CUT_AT)  # every response cut after 4 kB until the first retry warning
    handler = _HealOnRetry(proxy)
    logger = logging.getLogger("girml.core.retry")
    logger.addHandler(handler)
    try:
        out = tmp_path / "m"
        result = runner.invoke(app, ["pull", "model", "-o", str(out)])
    finally:
        logger.removeHandler(handler)
    assert result.exit_code == 0, result.output
    assert proxy.cuts >= 1 and handler.messages, "the first attempt was never cut"
    assert "attempt 1/4 failed" in handler.messages[0]
    assert "after 2 attempts" in result.output
    assert check_sums(out) == len([p for p in out.rglob("*") if p.is_file()]) - 1
    assert torch.equal(_forward(load_model(str(out))), _forward(registry.model))
    assert sorted(os.listdir(tmp_path)) == ["m"] and _leftovers(out) == []


def test_pull_reports_persistent_cut_fails_in_one_line_leaving_nothing(
    registry: Registry, proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    proxy.cut(CUT_AT)
    out = tmp_path / "r"
    args = ["pull", "reports", registry.run_id, "--path", "reports", "-o", str(out)]
    result = runner.invoke(app, [*args, "--attempts", "2"])
    assert result.exit_code != 0 and proxy.cuts >= 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "reports/big.txt" in errors[0] and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # neither r nor a staging folder beside it

    # The same command once the network heals, after a few resets: botocore's retries ride
    # them out (the fail-fast probe would take two resets for a dead endpoint: test_errors.py).
    monkeypatch.setattr("pipelines.pull_mlflow.probe_s3", lambda: None)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "5")
    proxy.pass_through()
    proxy.refuse(3)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert proxy.refused == 3
    assert (out / "reports/big.txt").read_bytes() == registry.report
    assert check_sums(out) == 1


# --------------------------------------------------------------------------- dvc push / pull


def _git(cwd: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True)


def _bucket_is_consistent(prefix: str) -> set[str]:
    """Every object under ``prefix`` holds exactly the bytes its md5 key names; returns keys."""
    client = s3.make_client()
    keys = {o.key for o in s3.iter_objects(DVC_BUCKET, prefix, client=client)}
    for key in keys:
        digest = key.removeprefix(f"{prefix}files/md5/").replace("/", "").removesuffix(".dir")
        body = s3.get_bytes(DVC_BUCKET, key, client=client)
        assert hashlib.md5(body).hexdigest() == digest, f"{key}: truncated or corrupt object"
    return keys


@pytest.mark.slow
def test_dvc_push_cut_mid_upload_then_healthy_push_and_pull(
    proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    s3.make_client().create_bucket(Bucket=DVC_BUCKET)
    repo = tmp_path / "repo"
    (repo / "data" / "blobs").mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i in range(3):  # 64 kB each: a cut after 4 kB of a request lands mid-body
        (repo / "data" / "blobs" / f"{i}.bin").write_bytes(rng.bytes(65_536))
    _git(repo, "init", "-q")
    run_dvc(["init", "-q"], repo)
    monkeypatch.chdir(repo)
    args = ["remote", "s3", f"{DVC_BUCKET}/dvc", "--endpoint-url", proxy.url, "--default"]
    assert runner.invoke(app, args).exit_code == 0
    run_dvc(["add", "-q", "data/blobs"], repo)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "blobs")

    proxy.cut(CUT_AT, direction="request")
    with pytest.raises(DvcError) as failed:
        run_dvc(["push"], repo)
    assert proxy.cuts >= 1
    assert "failed to push" in str(failed.value).lower(), failed.value
    _bucket_is_consistent("dvc/")  # whatever arrived is whole: nothing truncated was stored

    proxy.pass_through()
    run_dvc(["push"], repo)
    keys = _bucket_is_consistent("dvc/")
    assert len(keys) == 4 and sum(k.endswith(".dir") for k in keys) == 1

    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(repo), str(clone))
    run_dvc(["pull"], clone)
    assert _tree(clone / "data/blobs") == _tree(repo / "data/blobs")


# --------------------------------------------------------------------------- collect


def _png(pixels: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _check_clean(out: Path) -> dict[str, bytes]:
    """Every PNG is a manifest row's, whole and decodable; no temp file; returns the tree."""
    manifest = (out / "manifest.csv").read_text().splitlines()[1:]
    ids = sorted(line.split(",")[0] for line in manifest)
    assert sorted(p.stem for p in (out / "images").iterdir()) == ids
    for image_id in ids:
        assert read_image(out / "images" / f"{image_id}.png").ndim == 3
    assert _leftovers(out) == []
    return _tree(out)


def test_collect_s3_cut_mid_transfer_rejects_by_name_and_keeps_the_rest(
    proxy: FaultProxy, aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = s3.make_client()
    client.create_bucket(Bucket=COLLECT_BUCKET)
    noise = np.random.default_rng(3)
    objects = {  # small ones fit in one response before the cut, big ones do not
        "small0.png": _png(textured_image(40, 16, 16)),
        "small1.png": _png(textured_image(41, 16, 16)),
        "big0.png": _png(noise.integers(0, 256, (64, 64, 3), dtype=np.uint8)),
        "big1.png": _png(noise.integers(0, 256, (64, 64, 3), dtype=np.uint8)),
    }
    for key, body in objects.items():
        client.put_object(Bucket=COLLECT_BUCKET, Key=key, Body=body)
    assert all(len(b) < CUT_AT - 1000 for k, b in objects.items() if k.startswith("small"))
    assert all(len(b) > 2 * CUT_AT for k, b in objects.items() if k.startswith("big"))
    cfg = CollectConfig.model_validate(
        {"sources": [{"type": "s3", "bucket": COLLECT_BUCKET}], "min_size": 16}
    )
    uri = f"s3://{COLLECT_BUCKET}"

    proxy.cut(CUT_AT)
    out = tmp_path / "clean"
    result = collect(cfg, out, workers=2)
    assert proxy.cuts >= 2
    with (out / "rejected.csv").open(newline="") as fh:
        rejected = {row["origin"]: row["reason"] for row in csv.DictReader(fh)}
    assert sorted(rejected) == [f"{uri}/big0.png", f"{uri}/big1.png"]
    assert all(reason.startswith("download failed (") for reason in rejected.values())
    assert result.n_images == 2 and result.n_rejected == 2
    origins = (out / "manifest.csv").read_text()
    assert f"{uri}/small0.png" in origins and f"{uri}/small1.png" in origins
    _check_clean(out)

    proxy.pass_through()  # a rerun once the network heals collects everything
    assert collect(cfg, out, workers=2).n_images == 4
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws)  # and equals a run that never saw a fault
    collect(cfg, tmp_path / "direct", workers=2)
    assert _check_clean(out) == _check_clean(tmp_path / "direct")


# --------------------------------------------------------------------------- kill -9 collect


@pytest.mark.slow
def test_collect_killed_mid_run_then_rerun_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = tmp_path / "photos"
    for i in range(240):
        write_png(photos / f"{i:03d}.png", textured_image(i, 96, 128))
    params = {"collect": {"sources": [{"type": "folder", "path": str(photos)}], "min_size": 32}}
    runs = {}
    for name in ("killed", "whole"):
        runs[name] = tmp_path / name
        runs[name].mkdir()
        write_params(runs[name] / "params.yaml", params)

    killed = runs["killed"]
    proc = spawn_python("from girml.cli import app; app(['collect'])", cwd=killed)
    images = killed / "data/clean/images"

    def twenty_written() -> bool:
        return images.is_dir() and len(list(images.glob("*.png"))) >= 20

    kill_when(twenty_written, proc, 120, poll_s=0.02)
    assert not (killed / "data/clean/manifest.csv").exists()  # written last, atomically
    written = list(images.glob("*.png"))
    assert 20 <= len(written) < 240
    for png in written:  # a PNG under its final name is always whole
        assert read_image(png).shape == (96, 128, 3)

    for name in ("killed", "whole"):
        monkeypatch.chdir(runs[name])
        result = runner.invoke(girml_app, ["collect"])
        assert result.exit_code == 0, result.output
        assert "collected 240 images" in result.output
    assert _check_clean(killed / "data/clean") == _check_clean(runs["whole"] / "data/clean")
