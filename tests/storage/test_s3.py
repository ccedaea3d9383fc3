"""girml.storage.s3: listing and fetching objects against a real S3-compatible endpoint (moto)."""

from __future__ import annotations

import pytest

from girml.storage import s3

OBJECTS = {
    "photos/b.png": b"bb",
    "photos/a.png": b"a",
    "photos/sub/": b"",  # a "folder" placeholder
    "photos/sub/c.png": b"ccc",
    "other/d.png": b"dddd",
}


@pytest.fixture
def bucket(s3_env: str) -> str:
    """A bucket holding :data:`OBJECTS` on the local endpoint (one per test, by name)."""
    client = s3.make_client(max_attempts=1)
    name = "girml-storage-test"
    client.create_bucket(Bucket=name)
    for key, body in OBJECTS.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    return name


def test_listing_follows_the_prefix_skips_folders_and_gives_sizes(bucket: str) -> None:
    listed = list(s3.iter_objects(bucket, "photos/"))
    assert listed == [
        s3.S3Object("photos/a.png", 1),
        s3.S3Object("photos/b.png", 2),
        s3.S3Object("photos/sub/c.png", 3),
    ]
    assert [o.key for o in s3.iter_objects(bucket)] == [
        "other/d.png",
        "photos/a.png",
        "photos/b.png",
        "photos/sub/c.png",
    ]
    assert list(s3.iter_objects(bucket, "nothing/")) == []


def test_get_bytes_returns_the_content(bucket: str) -> None:
    client = s3.make_client()
    for key in ("photos/a.png", "other/d.png"):
        assert s3.get_bytes(bucket, key, client=client) == OBJECTS[key]


def test_failures_name_the_uri_and_the_cause(bucket: str) -> None:
    with pytest.raises(s3.S3Error, match="NoSuchKey") as missing:
        s3.get_bytes(bucket, "photos/missing.png")
    assert missing.value.uri == f"s3://{bucket}/photos/missing.png"
    assert missing.value.reason.startswith("download failed (NoSuchKey")
    with pytest.raises(s3.S3Error, match=r"s3://no-such-bucket/x: listing failed \(NoSuchBucket"):
        list(s3.iter_objects("no-such-bucket", "x"))


def test_unreachable_endpoint_is_reported_without_its_credentials(
    monkeypatch: pytest.MonkeyPatch, free_tcp_port: int
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://key:s3cr3t@127.0.0.1:{free_tcp_port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = s3.make_client(max_attempts=1, connect_timeout_s=2.0)
    with pytest.raises(s3.S3Error, match="listing failed") as info:
        list(s3.iter_objects("bucket", client=client))
    assert "s3cr3t" not in str(info.value)


def test_make_client_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_attempts must be >= 1, got 0"):
        s3.make_client(max_attempts=0)
    with pytest.raises(ValueError, match=r"got connect=0, read=60\.0"):
        s3.make_client(connect_timeout_s=0)
