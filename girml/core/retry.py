"""The one retry helper: which failures are transient, and a loop with exponential backoff.

Used by ``girml pull`` (whole downloads, DVC commands) and by the reachability probes of
:mod:`girml.core.errors`. Per-request retries inside boto3 and MLflow are those libraries' own
(botocore's ``standard`` mode, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``); URL downloads that resume
a ``.part`` file keep their loop in :mod:`girml.data.downloads`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from girml.core.urls import mask_text

log = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF_S = 1.0
_MLFLOW_TRANSIENT = frozenset(
    {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}
)
T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth another attempt: a connection problem, an overloaded or failing
    endpoint, or an incomplete download; not a missing object, a bad name or denied access.

    An exception with a boolean ``transient`` attribute decides for itself (e.g.
    ``pipelines.dvc_run.DvcError``, ``girml.tracking.artifacts.IncompleteDownload``).
    """
    import requests
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from mlflow.exceptions import MlflowException

    own = getattr(exc, "transient", None)
    if isinstance(own, bool):
        return own
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return status >= 500 or status in (408, 429)
    if isinstance(exc, MlflowException):
        cause = exc.__cause__ or exc.__context__  # MLflow wraps S3 errors as INTERNAL_ERROR
        if isinstance(cause, Exception):
            return is_transient(cause)
        return exc.error_code in _MLFLOW_TRANSIENT
    transient = (
        BotoConnectionError,
        HTTPClientError,
        requests.ConnectionError,
        requests.Timeout,
        ConnectionError,
        TimeoutError,
    )
    return isinstance(exc, transient)


def with_retries(
    action: Callable[[], T],
    what: str,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff_s: float = DEFAULT_BACKOFF_S,
    log_level: int = logging.WARNING,
) -> tuple[T, int]:
    """Call ``action`` until it succeeds, retrying transient failures with exponential backoff.

    The waits are ``backoff_s``, ``2 * backoff_s``, ``4 * backoff_s``... Each retry is logged
    at ``log_level`` (a warning by default; the error text redacted).

    Args:
        action: the whole operation; it must be safe to repeat.
        what: what is being done, for the log (e.g. ``"download models:/gir-restorer/3"``).
        attempts: total attempts, >= 1.
        backoff_s: first wait in seconds, >= 0.
        log_level: level of the retry messages (``logging.DEBUG`` for quick probes).

    Returns:
        ``(action's result, attempts used)``.

    Raises:
        The last error, when it is not transient (:func:`is_transient`) or attempts ran out.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    if backoff_s < 0:
        raise ValueError(f"backoff_s must be >= 0, got {backoff_s}")
    attempt = 1
    while True:
        try:
            return action(), attempt
        except Exception as exc:
            if attempt >= attempts or not is_transient(exc):
                raise
            delay = backoff_s * 2 ** (attempt - 1)
            first_line = (str(exc).strip() or repr(exc)).splitlines()[0]
            log.log(
                log_level,
                "%s: attempt %d/%d failed (%s: %s); retrying in %.1f s",
                what,
                attempt,
                attempts,
                type(exc).__name__,
                mask_text(first_line),
                delay,
            )
            time.sleep(delay)
            attempt += 1
