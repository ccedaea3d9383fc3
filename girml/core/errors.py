"""Expected failures as one line: reachability probes and the mapping used at the CLI boundary.

- :func:`probe_http` checks, before any work starts, that a service (an MLflow tracking server,
  an S3 endpoint, the Prefect API) answers at all: a couple of quick attempts
  (:func:`girml.core.retry.with_retries`), under 15 s in all, then :class:`ServiceUnreachable`.
- :func:`describe_error` turns the exception families that a user can cause (a service down,
  wrong credentials, a folder that cannot be written, a model file that would run code:
  :class:`UnsafeModelError`) into ``(one line, exit code)``, every URL masked; anything else is
  a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys

from girml.core.retry import with_retries
from girml.core.urls import mask_text, mask_url

# Exit codes (sysexits.h) for the families below; 1 for everything else.
EX_BAD_INPUT = 2  # input girml refuses as it is: a bad config, a pickled model (not sysexits)
EX_UNAVAILABLE = 69  # a service did not answer
EX_CANTCREAT = 73  # an output cannot be written
EX_IOERR = 74  # another OS-level I/O error
EX_NOPERM = 77  # credentials refused

PROBE_ATTEMPTS = 2
PROBE_BACKOFF_S = 1.0
PROBE_TIMEOUT_S = (3.0, 3.0)  # (connect, read): 2 attempts + 1 s wait stay under 15 s
# S3 error codes that mean the key, secret or session token is wrong (not a missing object).
CREDENTIAL_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
        "InvalidClientTokenId",
    }
)
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_S3_ENDPOINT_VARS = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


class ServiceUnreachable(RuntimeError):
    """A service did not answer: ``"<what> at <masked url> is unreachable: <reason>"``.

    Attributes:
        what: the service, e.g. ``"MLflow tracking server"``.
        url: its URL, credentials masked.
        reason: a short cause (``"Connection refused"``, ``"HTTP 503"``).
    """

    def __init__(self, what: str, url: str, reason: str) -> None:
        self.what = what
        self.url = mask_url(url)
        self.reason = reason
        super().__init__(f"{what} at {self.url} is unreachable: {reason}")


class UnsafeModelError(Exception):
    """A model file that could run code when loaded (a pickle): refused, nothing in it is run.

    The message is one line that names the source, says what it is and how to convert it once,
    if it is trusted, into a model folder that loads without unpickling
    (``girml convert-model``). Not a ``ValueError``, so that callers which wrap load errors in
    their own types do not hide it: at the command line it is :data:`EX_BAD_INPUT`.

    Attributes:
        source: the folder, file or URI as the user gave it.
        what: what it is, e.g. ``"a pickled PyTorch model (MLflow's pytorch flavour)"``.
    """

    def __init__(self, source: str, what: str) -> None:
        self.source = source
        self.what = what
        super().__init__(
            f"{source} is {what}: loading it could run any code in it, so girml does not load it."
            f" If you trust where it came from, convert it once with `girml convert-model "
            f"{source} -o NEW_FOLDER --i-trust-this-file` and use NEW_FOLDER"
        )


def _short_reason(exc: BaseException) -> str:
    """``"Connection refused"`` out of requests' and botocore's long connection errors."""
    text = str(exc)
    found = _ERRNO_TEXT.search(text)
    if found:
        return found[1].strip()
    import requests

    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return mask_text(first) or type(exc).__name__


def probe_http(url: str, what: str, path: str = "", any_answer: bool = False) -> None:
    """Fail fast when the HTTP(S) service at ``url`` does not answer.

    ``GET url + path`` is tried :data:`PROBE_ATTEMPTS` times (connection errors, timeouts and
    5xx answers are retried once after :data:`PROBE_BACKOFF_S`); any answer below 500, even
    403 or 404, proves the service is there (any answer at all with ``any_answer``).

    Args:
        url: the service's base URL (may carry ``user:password@``, sent but never printed).
        what: the service's name for the message, e.g. ``"MLflow tracking server"``.
        path: appended to ``url`` (``"/health"``).
        any_answer: count a 5xx answer as reachable too (an S3 server may answer an unsigned
            request with one).

    Raises:
        ServiceUnreachable: no answer, or still 5xx, after the attempts.
    """
    import requests

    target = url.rstrip("/") + path

    def get() -> None:
        status = requests.get(target, timeout=PROBE_TIMEOUT_S, allow_redirects=False).status_code
        if status >= 500 and not any_answer:
            raise ConnectionError(f"HTTP {status}")

    try:
        what_for = f"reach {what} at {mask_url(url)}"
        with_retries(get, what_for, PROBE_ATTEMPTS, PROBE_BACKOFF_S, log_level=logging.DEBUG)
    except (requests.RequestException, ConnectionError, TimeoutError) as exc:
        raise ServiceUnreachable(what, url, _short_reason(exc)) from None


def probe_mlflow(tracking_uri: str) -> None:
    """:func:`probe_http` on ``<tracking_uri>/health`` for an ``http(s)://`` tracking server.

    SQLite, file and other stores are local: nothing to probe.
    """
    if tracking_uri.startswith(("http://", "https://")):
        probe_http(tracking_uri, "MLflow tracking server", "/health")


def s3_endpoint() -> str | None:
    """The S3 endpoint that boto3 and MLflow use (``MLFLOW_S3_ENDPOINT_URL``, then
    ``AWS_ENDPOINT_URL_S3``, then ``AWS_ENDPOINT_URL``); None for AWS itself."""
    return next((os.environ[name] for name in _S3_ENDPOINT_VARS if os.environ.get(name)), None)


def probe_s3() -> None:
    """:func:`probe_http` on the configured S3 endpoint; AWS itself (no endpoint set) is not
    probed."""
    endpoint = s3_endpoint()
    if endpoint is not None:
        probe_http(endpoint, "S3 endpoint", any_answer=True)


def _errno_name(code: int | None) -> str:
    return os.strerror(code) if code else "error"


def describe_error(exc: BaseException) -> tuple[str, int] | None:
    """One line and an exit code for a failure a user can cause and fix; None for a bug.

    Families: :class:`ServiceUnreachable`; :class:`UnsafeModelError`; botocore connection
    errors (the endpoint is down) and ``ClientError`` (credential codes: ``"wrong credentials
    for <endpoint>"``); MLflow's ``MlflowException`` (or the error it wraps); ``requests``
    connection errors and timeouts; ``PermissionError`` and other ``OSError`` on files and
    folders. Every URL in the line is masked.

    Args:
        exc: the exception that reached the command line.

    Returns:
        ``(message, exit code)`` or None when ``exc`` is of no known family.
    """
    if isinstance(exc, ServiceUnreachable):
        return str(exc), EX_UNAVAILABLE
    if isinstance(exc, UnsafeModelError):
        return mask_text(str(exc)), EX_BAD_INPUT
    for describe in (_describe_s3, _describe_mlflow, _describe_requests, _describe_os):
        described = describe(exc)
        if described is not None:
            return described
    return None


def _describe_s3(exc: BaseException) -> tuple[str, int] | None:
    """botocore's errors: endpoint down, no or wrong credentials, another failed request."""
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is None:  # never imported: exc cannot be one of its errors
        return None
    if isinstance(exc, botocore.EndpointConnectionError | botocore.ConnectTimeoutError):
        url = exc.kwargs.get("endpoint_url", s3_endpoint() or "S3")
        return f"S3 endpoint at {mask_url(url)} is unreachable: {_short_reason(exc)}", (
            EX_UNAVAILABLE
        )
    if isinstance(exc, botocore.NoCredentialsError):
        return f"no S3 credentials: {exc}", EX_NOPERM
    if isinstance(exc, botocore.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "error"))
        detail = f"{code}: {error.get('Message') or exc}"
        if code in CREDENTIAL_CODES:
            where = mask_url(s3_endpoint() or "AWS S3")
            return mask_text(f"wrong credentials for {where} ({detail})"), EX_NOPERM
        return mask_text(f"S3 request failed ({detail})"), 1
    if isinstance(exc, botocore.BotoCoreError):
        return mask_text(f"S3: {exc}"), 1
    return None


def _describe_mlflow(exc: BaseException) -> tuple[str, int] | None:
    """``MlflowException``: the error it wraps when that is known, else its first line."""
    mlflow_exceptions = sys.modules.get("mlflow.exceptions")
    if mlflow_exceptions is None or not isinstance(exc, mlflow_exceptions.MlflowException):
        return None
    cause = exc.__cause__ or exc.__context__  # MLflow wraps S3 and HTTP errors
    described = describe_error(cause) if isinstance(cause, Exception) else None
    if described is not None:
        return described
    lines = str(exc.message).strip().splitlines() or [type(exc).__name__]
    head = lines[0]
    if head.endswith(":"):  # a list follows (failed downloads: "##### File f #####", error)
        items = [line.strip(" #") for line in lines[1:] if line.strip(" #")]
        head = " ".join([head, ": ".join(items[:2])]) if items else head.rstrip(":")
    return mask_text(f"MLflow: {head}"), 1


def _describe_requests(exc: BaseException) -> tuple[str, int] | None:
    """``requests`` connection errors and timeouts: the server did not answer."""
    requests = sys.modules.get("requests")
    if requests is None or not isinstance(exc, requests.ConnectionError | requests.Timeout):
        return None
    url = getattr(exc.request, "url", None) or "a server"
    return f"cannot reach {mask_url(url)}: {_short_reason(exc)}", EX_UNAVAILABLE


def _describe_os(exc: BaseException) -> tuple[str, int] | None:
    """``OSError`` on a file or folder (cannot create or access it), or another I/O error."""
    if isinstance(exc, PermissionError | IsADirectoryError | NotADirectoryError | FileExistsError):
        path = exc.filename or "a file"
        reason = "permission denied" if isinstance(exc, PermissionError) else exc.strerror
        return mask_text(f"cannot access {path}: {reason}"), EX_CANTCREAT
    if isinstance(exc, OSError) and exc.filename is not None:
        code = EX_CANTCREAT if exc.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT) else EX_IOERR
        reason = exc.strerror or _errno_name(exc.errno)
        return mask_text(f"{exc.filename}: {reason}"), code
    if isinstance(exc, OSError):  # e.g. a connection reset
        return mask_text(str(exc).strip() or type(exc).__name__), EX_IOERR
    return None
