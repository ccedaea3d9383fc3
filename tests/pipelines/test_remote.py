"""``girml remote s3`` (pipelines/remote.py): the bucket and endpoint checks, refused before DVC
runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
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
