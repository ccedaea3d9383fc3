"""No credential leaks: a canary password planted in URLs never reaches an output.

The canary goes (a) into the S3 endpoint (``AWS_ENDPOINT_URL`` with ``user:password@``, a real
moto server or a closed port) and into MLflow's endpoints for ``girml pull``, and (b) into
``~/.netrc`` for a ``urls`` source served by a local HTTP server that demands basic auth.
Every command runs as the real ``girml`` in a fresh interpreter; its stdout, stderr and every
file it leaves are searched for the canary. Credentials in params are refused, naming the key.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from girml.config import CollectConfig, ConfigError, parse_section
from girml.core.urls import MaskingFilter, mask_text, mask_url, text_credentials, url_credentials
from pipelines.cli import app
from pipelines.overrides import parse_override
from pipelines.redaction import redact
from tests.conftest import free_port
from tests.factories import serving, textured_image

ROOT = Path(__file__).resolve().parents[2]
CANARY = "CANARY-pw-5f3e1b7d"
USER = "alice"
runner = CliRunner()


# --------------------------------------------------------------------------- mask helpers


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (f"http://{USER}:{CANARY}@host:8080/x.zip", "http://***@host:8080/x.zip"),
        (f"https://{CANARY}@host/x", "https://***@host/x"),  # a token as the user name
        (
            f"https://b.s3.amazonaws.com/k.png?X-Amz-Credential=AKIA&X-Amz-Signature={CANARY}"
            "&X-Amz-Expires=60",
            "https://b.s3.amazonaws.com/k.png?X-Amz-Credential=***&X-Amz-Signature=***"
            "&X-Amz-Expires=60",
        ),
        (
            f"http://h/x?token={CANARY}&password={CANARY}&sig={CANARY}&page=2",
            "http://h/x?token=***&password=***&sig=***&page=2",
        ),
        (f"postgresql://{USER}:{CANARY}@db/mlflow", "postgresql://***@db/mlflow"),
        # token fragments (OAuth's implicit flow) and more secret parameter names
        (
            f"https://app.example.org/cb#access_token={CANARY}&token_type=bearer&expires_in=60",
            "https://app.example.org/cb#access_token=***&token_type=***&expires_in=60",
        ),
        (f"https://h/cb?state=1#id_token={CANARY}", "https://h/cb?state=1#id_token=***"),
        (
            f"https://b.s3.amazonaws.com/k?X-Amz-Security-Token={CANARY}&X-Amz-Date=20250101",
            "https://b.s3.amazonaws.com/k?X-Amz-Security-Token=***&X-Amz-Date=20250101",
        ),
        (
            f"https://h/x?passphrase={CANARY}&private_key={CANARY}&jwt={CANARY}",
            "https://h/x?passphrase=***&private_key=***&jwt=***",
        ),
    ],
)
def test_mask_url_masks_userinfo_and_secret_query_values(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert CANARY not in mask_url(url)
    assert url_credentials(url)
    assert mask_url(masked) == masked  # idempotent


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/data/DIV2K.zip",
        "http://127.0.0.1:9000/bucket?list-type=2&prefix=a%2Fb&encoding-type=url",
        "s3://bucket/prefix/key.png",
        "sqlite:////tmp/mlflow.db",
        "file:///tmp/a@b.png",  # an @ in a path is not userinfo
        "http://[::1]:5000/x?page=1",
        "models:/gir-restorer@champion",
        "not a url at all",
        "http://127.0.0.1:5000/#/experiments/1/runs/0a1b",  # MLflow's UI links
        "https://github.com/org/repo/blob/main/README.md#when-things-go-wrong",
    ],
)
def test_urls_without_secrets_are_unchanged(url: str) -> None:
    assert mask_url(url) == url
    assert mask_text(f"see {url} here") == f"see {url} here"
    assert url_credentials(url) == []


def test_mask_text_masks_every_url_in_a_message() -> None:
    text = (
        f'Could not connect to the endpoint URL: "http://{USER}:{CANARY}@127.0.0.1:9/b?x=1"\n'
        f"also https://u:{CANARY}@mlflow.example.org/api and "
        f"HTTPConnectionPool(host='h', port=80): Max retries exceeded with url: "
        f"/x.zip?token={CANARY} (ok: https://example.org/a.png)"
    )
    out = mask_text(text)
    assert CANARY not in out
    assert '"http://***@127.0.0.1:9/b?x=1"' in out
    assert "https://***@mlflow.example.org/api" in out
    assert "/x.zip?token=***" in out and "https://example.org/a.png" in out
    assert text_credentials(text) == ["user:password@", "user:password@"]  # full URLs only
    redirect = f"302 Found: Location: /callback#access_token={CANARY}&state=xyz"
    assert mask_text(redirect) == "302 Found: Location: /callback#access_token=***&state=xyz"
    assert url_credentials(f"https://h/cb#access_token={CANARY}") == [
        "fragment parameter 'access_token'"
    ]


def test_masking_filter_masks_log_records_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter())
    log = logging.getLogger("girml.test_secrets")
    log.addHandler(handler)
    try:
        log.warning("%s: retry %d", f"http://{USER}:{CANARY}@h/x", 1)
        try:
            raise RuntimeError(f"cannot reach https://{USER}:{CANARY}@h/")
        except RuntimeError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert CANARY not in out
    assert "http://***@h/x: retry 1" in out and "https://***@h/" in out


def test_flow_redact_uses_the_same_masking() -> None:
    assert redact(f"s3 http://{USER}:{CANARY}@h/?X-Amz-Signature={CANARY}", {}) == (
        "s3 http://***@h/?X-Amz-Signature=***"
    )


# --------------------------------------------------------------------------- refusals


def _url_source(*urls: str) -> dict[str, Any]:
    return {"type": "urls", "items": [{"url": u, "sha256": "0" * 64} for u in urls]}


def test_params_refuse_credentials_in_urls_naming_the_key() -> None:
    raw = {
        "sources": [
            _url_source("https://example.org/a.png", f"http://{USER}:{CANARY}@host/x.zip"),
            _url_source(f"https://host/b.png?X-Amz-Signature={CANARY}"),
        ]
    }
    with pytest.raises(ConfigError) as info:
        parse_section(raw, "collect", CollectConfig, source="params.yaml")
    message = str(info.value)
    assert CANARY not in message
    assert "collect.sources[0].items[1].url" in message and "user:password@" in message
    assert "collect.sources[1].items[0].url" in message and "X-Amz-Signature" in message
    assert "~/.netrc" in message and "http://***@host/x.zip" in message
    plain_raw = {"sources": [_url_source("https://example.org/a.png")]}
    plain = parse_section(plain_raw, "collect", CollectConfig)
    assert plain.sources[0].items[0].url == "https://example.org/a.png"


def test_collect_cli_refuses_credentials_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    params = {"collect": {"sources": [_url_source(f"http://{USER}:{CANARY}@127.0.0.1:9/x.png")]}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    result = runner.invoke(app, ["collect"])
    assert result.exit_code == 2
    assert "collect.sources[0].items[0].url" in result.output
    assert CANARY not in result.output
    assert not (tmp_path / "data").exists()


def test_overrides_with_credentials_are_refused_before_the_flow_starts(
    tmp_path: Path,
) -> None:
    text = f"collect.sources=[{{type: urls, items: [{{url: 'http://u:{CANARY}@h/x.png'}}]}}]"
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    assert CANARY not in str(info.value) and "user:password@" in str(info.value)
    # `girml flow -S ...` refuses it before Prefect records the flow run's parameters.
    result = runner.invoke(app, ["flow", "-S", text, "--project-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert CANARY not in result.output and "credentials" in result.output


# --------------------------------------------------------------------------- canary runs


def _girml(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``girml ARGS`` in a fresh interpreter with exactly ``env`` (plus PATH and PYTHONPATH)."""
    code = "from pipelines.cli import app; app(prog_name='girml')"
    full_env = {
        **env,
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "HOME": env.get("HOME", str(cwd)),
        "OMP_NUM_THREADS": "1",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _assert_no_canary(folder: Path, *outputs: str, skip: tuple[Path, ...] = ()) -> int:
    """No ``CANARY`` in ``outputs`` nor in any file under ``folder``; returns files searched."""
    for text in outputs:
        assert CANARY not in text, text
    searched = 0
    for path in folder.rglob("*"):
        if path.is_file() and path not in skip:
            assert CANARY.encode() not in path.read_bytes(), path
            searched += 1
    return searched


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(textured_image(seed, 48, 48)).save(buffer, format="PNG")
    return buffer.getvalue()


class _AuthServer(ThreadingHTTPServer):
    """Serves ``files`` only to basic auth ``alice:CANARY``; ``flaky`` paths answer 503 once."""

    def __init__(self, files: dict[str, bytes], flaky: set[str]) -> None:
        super().__init__(("127.0.0.1", 0), _AuthHandler)
        self.files = files
        self.flaky = set(flaky)
        self.authorized = 0


class _AuthHandler(BaseHTTPRequestHandler):
    server: _AuthServer

    def do_GET(self) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{CANARY}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="girml"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.authorized += 1
        path = self.path.partition("?")[0]
        if path in self.server.flaky:
            self.server.flaky.discard(path)
            self.send_error(503)
            return
        data = self.server.files.get(path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def auth_server() -> Iterator[_AuthServer]:
    with serving(_AuthServer({}, set())) as server:
        yield server


def test_urls_source_logs_in_from_netrc_and_leaks_nothing(
    auth_server: _AuthServer, tmp_path: Path
) -> None:
    good, flaky = _png(1), _png(2)
    auth_server.files.update({"/good.png": good, "/flaky.png": flaky})
    auth_server.flaky.add("/flaky.png")
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {CANARY}\n", encoding="utf-8")
    netrc.chmod(0o600)  # Python's netrc refuses a password file others can read
    project = tmp_path / "project"
    project.mkdir()
    base = f"http://127.0.0.1:{auth_server.server_port}"
    items = [
        {"url": f"{base}/good.png", "sha256": hashlib.sha256(good).hexdigest()},
        {"url": f"{base}/flaky.png", "sha256": hashlib.sha256(flaky).hexdigest()},
        {"url": f"{base}/missing.png", "sha256": "0" * 64},
    ]
    params = {
        "collect": {
            "sources": [{"type": "urls", "items": items, "retries": 2, "timeout_s": 10}],
            "min_size": 32,
        }
    }
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")

    done = _girml(["collect"], project, {"HOME": str(home)})

    assert done.returncode == 0, done.stderr
    assert "collected 2 images (1 rejected" in done.stdout  # netrc's login was used
    assert "retry 1/2" in done.stderr  # the 503 was retried and logged
    clean = project / "data" / "clean"
    rejected = (clean / "rejected.csv").read_text(encoding="utf-8")
    assert "/missing.png,download failed: HTTP 404" in rejected
    assert f"{base}/good.png" in (clean / "manifest.csv").read_text(encoding="utf-8")
    assert _assert_no_canary(project, done.stdout, done.stderr) >= 5

    # Without the netrc entry the server refuses, and the item is rejected (not a crash); with
    # every item rejected, collect fails naming why instead of passing with 0 images.
    netrc.write_text("", encoding="utf-8")
    (project / ".cache").rename(project / ".cache-before")
    again = _girml(["collect"], project, {"HOME": str(home)})
    assert again.returncode == 1, again.stderr
    assert "error: no image collected: every source failed" in again.stderr
    assert "Traceback" not in again.stderr
    assert "download failed: HTTP 401" in (clean / "rejected.csv").read_text(encoding="utf-8")


@pytest.mark.slow
def test_s3_endpoint_with_userinfo_is_masked_in_collect_output_and_errors(
    s3_env: str, tmp_path: Path
) -> None:
    from girml.storage import s3

    bucket = "girml-test-secrets"
    client = s3.make_client()
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="photos/one.png", Body=_png(3))
    port = s3_env.rsplit(":", 1)[1]
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "HOME": str(tmp_path / "home"),
    }
    params = {"collect": {"sources": [{"type": "s3", "bucket": bucket}], "min_size": 32}}
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")

    # The endpoint answers: the collect works and no output holds the canary.
    live = f"http://{USER}:{CANARY}@127.0.0.1:{port}"
    done = _girml(["collect"], project, {**env, "AWS_ENDPOINT_URL": live})
    assert done.returncode == 0, done.stderr
    assert "collected 1 images" in done.stdout
    _assert_no_canary(project, done.stdout, done.stderr)

    # The endpoint is down: the error names it, masked.
    dead = f"http://{USER}:{CANARY}@127.0.0.1:{free_port()}"
    failed = _girml(["collect"], project, {**env, "AWS_ENDPOINT_URL": dead})
    assert failed.returncode == 1
    assert "error: " in failed.stderr and "http://***@127.0.0.1:" in failed.stderr
    _assert_no_canary(project, failed.stdout, failed.stderr)


@pytest.mark.slow
def test_pull_masks_credentials_in_tracking_and_s3_endpoints(
    tmp_path: Path, mlflow_schema: Path
) -> None:
    from mlflow import MlflowClient

    # A tracking server URI with user:password@ that does not answer.
    env = {
        "HOME": str(tmp_path / "home"),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
        "MLFLOW_TRACKING_URI": f"http://{USER}:{CANARY}@127.0.0.1:{free_port()}",
    }
    out = tmp_path / "work"
    out.mkdir()
    server = _girml(["pull", "reports", "0" * 32, "-o", "r", "--attempts", "1"], out, env)
    assert server.returncode != 0
    assert "127.0.0.1" in server.stderr
    _assert_no_canary(out, server.stdout, server.stderr)

    # A run whose artifacts live on S3, with an endpoint (user:password@) that does not answer.
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(mlflow_schema, db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("gir", artifact_location="s3://girml-secrets/mlf")
    run_id = client.create_run(experiment).info.run_id
    dead = f"http://{USER}:{CANARY}@127.0.0.1:{free_port()}"
    s3_env = {
        "HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": uri,
        "AWS_ENDPOINT_URL": dead,
        "MLFLOW_S3_ENDPOINT_URL": dead,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }
    s3 = _girml(["pull", "reports", run_id, "-o", "r", "--attempts", "1"], out, s3_env)
    assert s3.returncode != 0
    assert "http://***@127.0.0.1:" in s3.stderr
    _assert_no_canary(out, s3.stdout, s3.stderr)
    assert CANARY.encode() not in db.read_bytes()
