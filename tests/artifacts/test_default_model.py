"""The model ``girml restore`` picks without ``--model`` (girml/artifacts/default_model.py):
the order champion, latest, release without a registry, and when the tracking server fails.

Real parts: a TCP server that accepts connections and never answers (a hung tracking server),
a closed port (a server that is down), a model folder on disk, the ``girml restore`` command.
The tracking URI carries a canary password, which must never reach the screen or the log.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from girml.artifacts.default_model import choose_default_model
from girml.artifacts.store import save_model_dir
from girml.config import DegradationsConfig, ModelConfig
from girml.core.imageio import write_png
from girml.models import build_model
from pipelines.cli import app
from tests.artifacts.common import TINY, export, tiny_model
from tests.factories import textured_image

CANARY = "CANARY-pw-7a6b5c4d"

pytestmark = pytest.mark.usefixtures("restore_environ")  # configure() exports variables


@pytest.fixture
def hung_server() -> Iterator[int]:
    """A port whose server accepts every connection (the kernel's backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with a trained model in ``models/latest`` and no release."""
    cfg = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
    save_model_dir(build_model(cfg), cfg, tmp_path / "models" / "latest")
    return tmp_path


def test_a_hung_tracking_server_costs_seconds_and_one_masked_reason(
    project: Path, hung_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{CANARY}@127.0.0.1:{hung_server}")
    start = time.monotonic()
    choice = choose_default_model(project / "models" / "latest", project)
    elapsed = time.monotonic() - start
    # probed like train (2 tries of 3 s), not MLflow's 60 s timeout x 3 tries (189 s before)
    assert elapsed < 20
    assert choice.kind == "latest"
    assert choice.reason == (
        f"MLflow tracking server at http://***@127.0.0.1:{hung_server} is unreachable: "
        "no answer in time, so no champion"
    )
    assert CANARY not in choice.describe()


def test_no_model_at_all_names_the_store_masked(
    tmp_path: Path, free_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{CANARY}@127.0.0.1:{free_tcp_port}")
    with pytest.raises(FileNotFoundError) as info:
        choose_default_model(tmp_path / "models" / "latest", tmp_path)
    message = str(info.value)
    assert CANARY not in message
    assert f"tracking store http://***@127.0.0.1:{free_tcp_port}" in message
    assert "Connection refused" in message and "pass --model" in message


def test_restore_with_the_tracking_server_down_shows_no_password(
    project: Path,
    free_tcp_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(project)
    write_png(project / "in" / "a.png", textured_image(0, 32, 32))
    uri = f"http://alice:{CANARY}@127.0.0.1:{free_tcp_port}"
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(
        app, ["restore", "in", "-o", "out"], env={"MLFLOW_TRACKING_URI": uri}
    )
    out, err = capfd.readouterr()
    logged = caplog.text + "\n".join(record.getMessage() for record in caplog.records)
    for text in (result.output, out, err, logged):
        assert CANARY not in text
    assert result.exit_code == 0, result.output
    assert (
        f"model: models/latest (latest: MLflow tracking server at http://***@127.0.0.1:"
        f"{free_tcp_port} is unreachable: Connection refused, so no champion) on cpu"
    ) in result.output
    assert (project / "out" / "a.png").is_file()


def test_restore_default_order_without_a_registry(offline: Path, spec: DegradationsConfig) -> None:
    with pytest.raises(FileNotFoundError, match="dvc repro train"):
        choose_default_model()
    export(offline, spec, tiny_model(9), Path("models/release"))
    choice = choose_default_model()
    assert (choice.uri, choice.kind) == ("models/release", "release")
    assert choice.describe() == (
        "models/release (release: no MLflow store, so no champion; no models/latest)"
    )
    save_model_dir(tiny_model(10), TINY, Path("models/latest"))
    assert choose_default_model().uri == "models/latest"
    assert choose_default_model().kind == "latest"
    assert not (offline / "mlflow.db").exists(), "looking must not create a store"

    (offline / "mlflow.db").write_bytes(b"this is not a database")  # a broken store
    Path("models/latest/weights.pt").unlink()
    choice = choose_default_model()
    assert choice.kind == "release" and "MLflow registry unreadable" in choice.reason


def test_the_default_model_without_a_registry_creates_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    local = tmp_path / "latest"
    save_model_dir(tiny_model(0), TINY, local)
    assert choose_default_model(local, project_root=tmp_path).uri == str(local)
    assert not (tmp_path / "mlflow.db").exists()
