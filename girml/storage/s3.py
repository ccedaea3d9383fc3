"""Thin boto3 adapter: make a client, list objects under a prefix, fetch an object's bytes.

The endpoint comes from the standard ``AWS_ENDPOINT_URL`` environment variable (honoured by
boto3 itself), credentials from the environment or the AWS config files; error messages show
the endpoint with any ``user:password@`` masked. Transient failures
(throttling, 5xx, dropped connections) are retried by botocore's ``standard`` retry mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from girml.core.urls import mask_text

DEFAULT_MAX_ATTEMPTS = 5


class S3Error(RuntimeError):
    """An S3 request failed for good (after botocore's retries).

    Attributes:
        uri: the ``s3://bucket/key`` (or ``s3://bucket/prefix``) concerned.
        reason: a short, human-readable cause.
    """

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(f"{uri}: {reason}")


@dataclass(frozen=True)
class S3Object:
    """One listed object: its key and size in bytes."""

    key: str
    size: int


def make_client(
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    connect_timeout_s: float = 10.0,
    read_timeout_s: float = 60.0,
) -> Any:
    """Create an S3 client with botocore's ``standard`` retries on transient errors.

    The client is thread-safe and may be shared by worker threads.

    Args:
        max_attempts: total attempts per request (first try included), >= 1.
        connect_timeout_s: seconds to wait for a connection, > 0.
        read_timeout_s: seconds to wait for data on an open connection, > 0.

    Returns:
        A ``botocore`` S3 client.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    if connect_timeout_s <= 0 or read_timeout_s <= 0:
        raise ValueError(
            f"timeouts must be > 0, got connect={connect_timeout_s}, read={read_timeout_s}"
        )
    config = Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
    )
    # A fresh session per client: boto3's default session is not thread-safe.
    return boto3.session.Session().client("s3", config=config)


def _reason(exc: Exception) -> str:
    """A short cause, URL credentials masked (botocore's messages show the endpoint URL)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return mask_text(f"{error.get('Code', 'error')}: {error.get('Message') or exc}")
    return mask_text(str(exc)) or type(exc).__name__


def iter_objects(bucket: str, prefix: str = "", *, client: Any = None) -> Iterator[S3Object]:
    """List the objects under ``s3://bucket/prefix``, following pagination.

    "Folder" placeholder keys (ending with ``/``) are skipped.

    Args:
        bucket: bucket name.
        prefix: key prefix; ``""`` lists the whole bucket.
        client: an S3 client from :func:`make_client`; one is made when omitted.

    Yields:
        :class:`S3Object` in the service's (lexicographic key) order.

    Raises:
        S3Error: the listing failed (missing bucket, access denied, unreachable endpoint).
    """
    s3 = client if client is not None else make_client()
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith("/"):
                    yield S3Object(key=obj["Key"], size=int(obj["Size"]))
    except (ClientError, BotoCoreError) as exc:
        raise S3Error(f"s3://{bucket}/{prefix}", f"listing failed ({_reason(exc)})") from None


def get_bytes(bucket: str, key: str, *, client: Any = None) -> bytes:
    """Download one object's content.

    Args:
        bucket: bucket name.
        key: object key.
        client: an S3 client from :func:`make_client`; one is made when omitted.

    Returns:
        The object's bytes.

    Raises:
        S3Error: the object is missing or the download failed after retries.
    """
    s3 = client if client is not None else make_client()
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
        # Read through botocore's StreamingBody, not the raw stream its __enter__ returns: only
        # the former turns a connection cut mid-body into a BotoCoreError and checks the length.
        body = response["Body"]
        try:
            return body.read()
        finally:
            body.close()
    except (ClientError, BotoCoreError) as exc:
        raise S3Error(f"s3://{bucket}/{key}", f"download failed ({_reason(exc)})") from None
