"""Verified downloads: resumable HTTP(S) fetches and the pin file that holds each URL's sha256.

:func:`download` fetches one URL through a ``.part`` file, resuming with Range requests and
retrying transient failures. :func:`fetch_verified` gives a local copy of a :class:`UrlItem`
checked against its sha256: the item's own, else the one pinned in the source's pin file
(``"<sha256>  <url>"`` lines, sha256sum's format). The first download of an unpinned URL is
trusted once and its hash pinned (:func:`record_pin`); every later one is verified against it,
so a file that changed upstream is refused. ``file://`` URLs are hashed in place.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from contextlib import nullcontext
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import requests
from requests.exceptions import ChunkedEncodingError

from girml.config import UrlItem, UrlSource
from girml.core.hashing import file_digest
from girml.core.urls import mask_text, mask_url

logger = logging.getLogger(__name__)

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
# Bytes per write to a .part file; a dropped connection loses at most one chunk.
_CHUNK = 1 << 16
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class PinFileError(ValueError):
    """A pin file has a line that is not ``"<sha256>  <url>"``."""


class DownloadError(RuntimeError):
    """A URL item could not be fetched (permanent error or retries exhausted) or verified."""


class _TransientError(DownloadError):
    pass


def _fetch_once(session: requests.Session, url: str, part: Path, timeout_s: float) -> None:
    """One GET into ``part``, resuming from its current size with an HTTP Range request."""
    have = part.stat().st_size if part.exists() else 0
    # identity encoding: Range offsets must count the stored bytes, not a gzip stream's.
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        with session.get(url, headers=headers, stream=True, timeout=timeout_s) as response:
            if response.status_code == 416 and have:
                return  # nothing left to fetch; the sha256 check decides
            if response.status_code in _TRANSIENT_STATUS:
                raise _TransientError(f"HTTP {response.status_code}")
            if response.status_code >= 400:
                raise DownloadError(f"HTTP {response.status_code}")
            resumed = response.status_code == 206 and response.headers.get(
                "Content-Range", ""
            ).startswith(f"bytes {have}-")
            with part.open("ab" if resumed else "wb") as fh:
                for chunk in response.iter_content(_CHUNK):
                    fh.write(chunk)
    except (requests.ConnectionError, requests.Timeout, ChunkedEncodingError) as exc:
        raise _TransientError(mask_text(str(exc)) or type(exc).__name__) from None
    except requests.RequestException as exc:
        raise DownloadError(mask_text(str(exc)) or type(exc).__name__) from None


def download(
    url: str,
    dest: Path,
    *,
    retries: int,
    timeout_s: float,
    session: requests.Session | None = None,
    backoff_s: float = BACKOFF_BASE_S,
) -> None:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming and retrying.

    Transient failures (connection drops, timeouts, 408/429/5xx) are retried up to ``retries``
    times with exponential backoff (``backoff_s * 2**attempt``, capped); each retry resumes
    the ``.part`` file with an HTTP Range request. The result is not verified here. Logins come
    from ``~/.netrc`` (or ``$NETRC``), which ``requests`` reads for the URL's host; messages
    show the URL masked (:func:`girml.core.urls.mask_url`).

    Args:
        url: ``http://`` or ``https://`` URL.
        dest: final path; ``dest`` with a ``.part`` suffix added holds the partial download.
        retries: extra attempts after the first, >= 0.
        timeout_s: connect/read timeout per request, > 0.
        session: a ``requests`` session to reuse; a fresh one when omitted.
        backoff_s: base delay before the first retry, >= 0.

    Raises:
        DownloadError: a permanent HTTP error, or still failing after the retries.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if backoff_s < 0:
        raise ValueError(f"backoff_s must be >= 0, got {backoff_s}")
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with nullcontext(session) if session is not None else requests.Session() as http:
        for attempt in range(retries + 1):
            try:
                _fetch_once(http, url, part, timeout_s)
                break
            except _TransientError as exc:
                if attempt == retries:
                    raise DownloadError(f"gave up after {retries + 1} attempts ({exc})") from None
                delay = min(backoff_s * 2**attempt, BACKOFF_MAX_S)
                logger.warning(
                    "%s: %s; retry %d/%d in %.1fs", mask_url(url), exc, attempt + 1, retries, delay
                )
                time.sleep(delay)
    os.replace(part, dest)


def cache_name(url: str, sha256: str) -> str:
    """The cache file name of ``url``'s content: ``<first 16 hex of sha256>-<URL file name>``."""
    base = PurePosixPath(unquote(urlparse(url).path)).name or "download"
    return f"{sha256.lower()[:16]}-{base}"


def read_pins(pin_file: Path) -> dict[str, str]:
    """``url -> sha256`` from a pin file of ``"<sha256>  <url>"`` lines (none if absent)."""
    if not pin_file.is_file():
        return {}
    pins = {}
    for number, line in enumerate(pin_file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, url = line.partition("  ")
        if len(digest) != 64 or not url:
            raise PinFileError(f"{pin_file}:{number}: expected '<sha256>  <url>', got {line!r}")
        pins[url.strip()] = digest.lower()
    return pins


def record_pin(pin_file: Path, pins: dict[str, str], url: str, sha256: str) -> None:
    """Add ``url``'s hash to ``pins`` (the file's content) and rewrite ``pin_file`` whole, so
    a kill leaves the old one."""
    pins[url] = sha256
    lines = [f"{digest}  {pinned}" for pinned, digest in sorted(pins.items())]
    tmp = pin_file.with_name(pin_file.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, pin_file)
    logger.warning("%s: pinned at sha256 %s in %s (commit it)", mask_url(url), sha256, pin_file)


def fetch_verified(
    item: UrlItem,
    cache_dir: Path,
    cfg: UrlSource,
    session: requests.Session,
    pins: dict[str, str],
) -> tuple[Path, str]:
    """A local, sha256-verified copy of ``item`` and its sha256; DownloadError otherwise.

    The expected hash is ``item.sha256``, else the one in ``pins`` (``cfg.pin_file``'s content,
    read once per source); with neither, the download is trusted once and its hash pinned.
    """
    pin_file = Path(cfg.pin_file)
    expected = (item.sha256 or pins.get(item.url) or "").lower() or None
    where = "" if item.sha256 or expected is None else f" (pinned in {pin_file})"
    parsed = urlparse(item.url)
    if parsed.scheme == "file":
        local = Path(url2pathname(unquote(parsed.path)))
        if not local.is_file():
            raise DownloadError(f"no such file {local}")
        got = file_digest(local)
        if expected is None:
            record_pin(pin_file, pins, item.url, got)
        elif got != expected:
            raise DownloadError(f"sha256 mismatch: expected {expected}{where}, got {got}")
        return local, got
    if expected is not None:
        dest = cache_dir / cache_name(item.url, expected)
        if dest.is_file():
            if file_digest(dest) == expected:
                return dest, expected
            dest.unlink()
    else:  # first download of an unpinned item: named by its URL until its hash is known
        dest = cache_dir / cache_name(item.url, hashlib.sha256(item.url.encode()).hexdigest())
        dest = dest.with_name("unpinned-" + dest.name)
    try:
        download(item.url, dest, retries=cfg.retries, timeout_s=cfg.timeout_s, session=session)
    except DownloadError as exc:
        raise DownloadError(f"download failed: {exc}") from None
    got = file_digest(dest)
    if expected is None:
        final = cache_dir / cache_name(item.url, got)
        os.replace(dest, final)
        record_pin(pin_file, pins, item.url, got)
        return final, got
    if got != expected:
        dest.unlink()
        raise DownloadError(f"sha256 mismatch: expected {expected}{where}, got {got}")
    return dest, got
