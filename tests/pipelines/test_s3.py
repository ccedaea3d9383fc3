"""S3 pieces: ``girml remote``'s bucket and endpoint checks, and the retry loop's classification.

The transfers over S3 (``girml pull`` of models, reports and DVC data) are in
``tests/pipelines/test_pull.py``. The only stand-in is a callable that fails on purpose, to
inject errors into the retry loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from typer.testing import CliRunner

from girml.retry import is_transient, with_retries
from pipelines.cli import app
from pipelines.dvc_run import DvcError
from pipelines.pull import IncompleteDownload, PullError
from pipelines.remote import check_endpoint_url, s3_url

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("restore_environ")


def test_s3_url_and_endpoint_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert s3_url("bucket-1/dvc/store/") == "s3://bucket-1/dvc/store"
    assert s3_url("s3://bucket-1") == "s3://bucket-1"
    for bad in ("B", "Bucket", "b_ucket", "bucket/../x", "bucket//x"):
        with pytest.raises(ValueError, match="got"):
            s3_url(bad)
    assert check_endpoint_url("http://127.0.0.1:9000/") == "http://127.0.0.1:9000"
    with pytest.raises(ValueError, match="must not carry credentials"):
        check_endpoint_url("http://user:pass@minio:9000")
    with pytest.raises(ValueError, match="http"):
        check_endpoint_url("ftp://minio")

    monkeypatch.chdir(tmp_path)  # refused before DVC runs: nothing is written
    args = ["remote", "s3", "bucket", "--endpoint-url", "http://key:secret@minio:9000"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "secret" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_with_retries_retries_transient_failures_only() -> None:
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


def test_is_transient_classification() -> None:
    assert is_transient(IncompleteDownload("short file"))
    assert is_transient(ConnectionResetError())
    assert is_transient(_client_error(503, "SlowDown"))
    assert not is_transient(_client_error(404, "NoSuchKey"))
    assert not is_transient(_client_error(403, "AccessDenied"))
    assert is_transient(MlflowException("failures while downloading"))  # INTERNAL_ERROR
    assert not is_transient(MlflowException("gone", error_code=RESOURCE_DOES_NOT_EXIST))
    assert is_transient(DvcError(["pull"], 1, "ERROR: Could not connect to the endpoint URL"))
    assert not is_transient(DvcError(["pull"], 1, "ERROR: 'x' does not exist as an output"))
    assert not is_transient(ValueError("bad"))
