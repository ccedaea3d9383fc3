"""girml.core.retry: which failures are transient, and the retry loop's backoff and log.

The classification of the pull command's own errors (DVC, incomplete downloads, S3) is tested
with them in ``tests/pipelines/test_s3.py``; these are the helper's own rules.
"""

from __future__ import annotations

import logging

import pytest
import requests
from botocore.exceptions import ClientError
from mlflow.exceptions import MlflowException

from girml.core import retry
from girml.core.retry import is_transient, with_retries


class _Flaky(Exception):
    """An error that says for itself whether it is transient."""

    def __init__(self, transient: bool) -> None:
        super().__init__("flaky")
        self.transient = transient


def _client_error(status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": "X"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


def test_transient_rules() -> None:
    assert is_transient(_Flaky(True)) and not is_transient(_Flaky(False))
    assert is_transient(_client_error(500)) and is_transient(_client_error(429))
    assert is_transient(_client_error(408)) and not is_transient(_client_error(400))
    assert is_transient(requests.Timeout()) and is_transient(TimeoutError())
    wrapped = MlflowException("wrapped")
    wrapped.__cause__ = _client_error(404)
    assert not is_transient(wrapped)  # MLflow's INTERNAL_ERROR around a missing object
    wrapped.__cause__ = ConnectionError()
    assert is_transient(wrapped)
    assert not is_transient(KeyError("x")) and not is_transient(PermissionError())


def test_backoff_doubles_and_each_retry_is_logged_masked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", waits.append)
    failures = iter([ConnectionError("GET https://h/x?token=abc\nmore"), TimeoutError(), None])

    def action() -> str:
        error = next(failures)
        if error is not None:
            raise error
        return "done"

    with caplog.at_level(logging.INFO, logger="girml.core.retry"):
        assert with_retries(
            action, "download x", attempts=4, backoff_s=0.5, log_level=logging.INFO
        ) == (
            "done",
            3,
        )
    assert waits == [0.5, 1.0]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == (
        "download x: attempt 1/4 failed (ConnectionError: GET https://h/x?token=***); "
        "retrying in 0.5 s"
    )
    assert messages[1].startswith("download x: attempt 2/4 failed (TimeoutError: TimeoutError()")
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_permanent_errors_and_bad_arguments_are_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retry.time, "sleep", lambda _s: pytest.fail("must not wait"))
    calls: list[int] = []

    def denied() -> None:
        calls.append(1)
        raise _Flaky(False)

    with pytest.raises(_Flaky):
        with_retries(denied, "x", attempts=5)
    assert calls == [1]
    assert with_retries(lambda: 7, "x", attempts=1) == (7, 1)
    with pytest.raises(ValueError, match="attempts must be >= 1, got 0"):
        with_retries(denied, "x", attempts=0)
    with pytest.raises(ValueError, match=r"backoff_s must be >= 0, got -0\.5"):
        with_retries(denied, "x", backoff_s=-0.5)
