"""Masking secrets in what the flow logs and publishes (pipelines/redaction.py)."""

from __future__ import annotations

from pipelines.redaction import redact
from tests.pipelines.project import SECRET


def test_redact_masks_userinfo_and_secret_values() -> None:
    env = {"AWS_SECRET_ACCESS_KEY": SECRET, "MY_TOKEN": "tok-123456", "SHORT_KEY": "abc"}
    text = f"s3://u:p@host/x key={SECRET} https://me@example.org tok-123456 abc"
    out = redact(text, env)
    assert SECRET not in out and "u:p@" not in out and "me@" not in out and "tok-123456" not in out
    assert "s3://***@host/x" in out and out.endswith("abc")
    assert redact("nothing here", {}) == "nothing here"
