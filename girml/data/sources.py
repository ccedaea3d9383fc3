"""Where ``collect`` finds images: builtin package files, folders, S3 and verified URLs.

Each source type (a ``type:`` in ``params.yaml: collect.sources``) maps, through :data:`SOURCES`,
to a function listing :class:`SourceItem` (an image still to load) and :class:`Rejection` (an
item that already failed, e.g. a download whose sha256 did not match). Listing is cheap;
loading (reading, downloading, decoding) happens later in worker threads through
``SourceItem.load``. A source that cannot be listed at all raises :class:`SourceError`.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import logging
import os
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import numpy as np
import requests
from requests.exceptions import ChunkedEncodingError

from girml.config import (
    BuiltinSource,
    ConfigError,
    FolderSource,
    S3Source,
    Source,
    SplitFractions,
    UrlItem,
    UrlSource,
)
from girml.core.files import WalkProblem, is_image_name, walk_files
from girml.core.hashing import file_digest
from girml.core.imageio import (
    DEFAULT_MAX_FILE_BYTES,
    ImageReadError,
    ImageTooLarge,
    decode_image,
    read_image,
)
from girml.core.registry import Registry
from girml.core.urls import mask_text, mask_url
from girml.data.archives import DEFAULT_MAX_MEMBER_BYTES, EXTRACT_INFO, archive_kind, extract_images
from girml.storage import s3

logger = logging.getLogger(__name__)

UNKNOWN_CATEGORY = "unknown"
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
# Bytes per write to a .part file; a dropped connection loses at most one chunk.
_CHUNK = 1 << 16
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class SourceError(ValueError):
    """A whole source could not be listed (missing folder or label file, S3 listing failed)."""


@dataclass(frozen=True)
class SourceItem:
    """One image to collect.

    Attributes:
        source: the source type (``builtin``, ``folder``, ``s3``, ``urls``, ``packages``).
        origin: where it came from: builtin name, file path, ``s3://`` URI or ``URL[#member]``.
        category: content category for the manifest.
        load: ``load(max_pixels, max_bytes)`` returns the pixels, (H, W, 3) uint8 in
            [0, 255], or raises :class:`girml.core.imageio.ImageReadError` with the reason; a file
            over ``max_bytes`` is refused before it is read (``max_bytes`` has a default).
        split: the source's own split fractions, or None for ``collect.split``.
    """

    source: str
    origin: str
    category: str
    load: Callable[..., np.ndarray]
    split: SplitFractions | None = None


@dataclass(frozen=True)
class Rejection:
    """An item refused before or during loading, with the reason shown in ``rejected.csv``."""

    source: str
    origin: str
    reason: str


Entry = SourceItem | Rejection
# ``fn(cfg, max_member_bytes=...)``; the cap matters only to sources that read archives.
SourceFn = Callable[..., Iterator[Entry]]

SOURCES: Registry[SourceFn] = Registry("collect source")


@dataclass(frozen=True)
class BuiltinImage:
    """A colour photo shipped inside an installed package."""

    package: str
    file: str
    category: str

    def path(self) -> Path:
        """Location in the installed package (found without importing the package)."""
        spec = find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise SourceError(f"builtin images need the {self.package!r} package installed")
        return Path(next(iter(spec.submodule_search_locations))) / self.file


# Only files present in the installed wheels: skimage.data functions for other images
# download with pooch, which collect must never do.
BUILTIN_IMAGES: dict[str, BuiltinImage] = {
    "astronaut": BuiltinImage("skimage", "data/astronaut.png", "people"),
    "chelsea": BuiltinImage("skimage", "data/chelsea.png", "animal"),
    "coffee": BuiltinImage("skimage", "data/coffee.png", "food"),
    "rocket": BuiltinImage("skimage", "data/rocket.jpg", "scene"),
    "motorcycle_left": BuiltinImage("skimage", "data/motorcycle_left.png", "object"),
    "motorcycle_right": BuiltinImage("skimage", "data/motorcycle_right.png", "object"),
    "hubble_deep_field": BuiltinImage("skimage", "data/hubble_deep_field.jpg", "scientific"),
    "immunohistochemistry": BuiltinImage("skimage", "data/ihc.png", "scientific"),
    "retina": BuiltinImage("skimage", "data/retina.jpg", "scientific"),
    "camera": BuiltinImage("skimage", "data/camera.png", "people"),
    "coins": BuiltinImage("skimage", "data/coins.png", "object"),
    "brick": BuiltinImage("skimage", "data/brick.png", "texture"),
    "grass": BuiltinImage("skimage", "data/grass.png", "texture"),
    "gravel": BuiltinImage("skimage", "data/gravel.png", "texture"),
    "page": BuiltinImage("skimage", "data/page.png", "document"),
    "text": BuiltinImage("skimage", "data/text.png", "document"),
    "moon": BuiltinImage("skimage", "data/moon.png", "scientific"),
    "china": BuiltinImage("sklearn", "datasets/images/china.jpg", "scene"),
    "flower": BuiltinImage("sklearn", "datasets/images/flower.jpg", "nature"),
}


def list_source(
    source: Source,
    *,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
) -> list[Entry]:
    """List one configured source's entries, sorted by origin.

    Args:
        source: a validated source config from ``CollectConfig.sources``.
        max_member_bytes: largest decompressed archive member read; larger image members
            become :class:`Rejection` entries (``collect.max_member_bytes``).

    Returns:
        :class:`SourceItem` and :class:`Rejection` entries, sorted by ``origin``.

    Raises:
        SourceError: the source cannot be listed at all.
        ConfigError: the source names builtin images that do not exist.
    """
    entries = list(SOURCES.get(source.type)(source, max_member_bytes=max_member_bytes))
    return sorted(entries, key=lambda e: e.origin)


def printable_name(name: str) -> str:
    """``name`` as valid UTF-8 text, for the manifest, ``rejected.csv`` and messages.

    A file name whose bytes are not UTF-8 reaches Python with lone surrogates in place of the
    bad bytes (PEP 383); written as is, it aborts any UTF-8 writer. Those bytes become
    ``\\xNN`` escapes here (``caf\\xe9.png``); valid names come back unchanged.
    """
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that no undecodable byte produced
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def _posix_parent_name(relpath: str) -> str | None:
    """Immediate parent folder of a relative POSIX path, or None for a top-level name."""
    parent = PurePosixPath(relpath).parent
    return parent.name if parent.name else None


# --------------------------------------------------------------------------- builtin


@SOURCES.register("builtin")
def _builtin(cfg: BuiltinSource, *, max_member_bytes: int) -> Iterator[Entry]:
    names = list(BUILTIN_IMAGES) if cfg.include is None else list(cfg.include)
    unknown = [n for n in names if n not in BUILTIN_IMAGES]
    if unknown:
        raise ConfigError(
            f"unknown builtin image(s) {unknown}; available: {', '.join(sorted(BUILTIN_IMAGES))}"
        )
    for name in dict.fromkeys(names):
        image = BUILTIN_IMAGES[name]
        yield SourceItem(
            "builtin", name, image.category, functools.partial(read_image, image.path())
        )


# --------------------------------------------------------------------------- folder


def _read_labels(label_file: Path) -> dict[str, str]:
    """``path,category`` CSV -> {relative POSIX path: category}."""
    try:
        text = label_file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SourceError(f"{label_file}: cannot read label file ({exc.strerror or exc})") from None
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or not {"path", "category"} <= set(reader.fieldnames):
        raise SourceError(
            f"{label_file}: label file needs columns path,category, got {reader.fieldnames}"
        )
    labels: dict[str, str] = {}
    for row in reader:
        rel = PurePosixPath((row["path"] or "").strip().replace("\\", "/")).as_posix()
        category = (row["category"] or "").strip()
        if rel not in ("", ".") and category:
            labels[rel] = category
    return labels


@SOURCES.register("folder")
def _folder(cfg: FolderSource, *, max_member_bytes: int) -> Iterator[Entry]:
    root = Path(cfg.path)
    if not root.is_dir():
        raise SourceError(f"folder source {root} is not a directory")
    labels = _read_labels(Path(cfg.label_file)) if cfg.category_from == "label_file" else {}
    # linked folders are followed; a loop, an unreadable folder or a broken link is a rejection
    for found in walk_files(root):
        if isinstance(found, WalkProblem):
            yield Rejection("folder", printable_name(str(found.path)), found.reason)
            continue
        rel = found.relative_to(root).as_posix()
        if cfg.category_from == "folder":
            category = _posix_parent_name(rel) or cfg.category
        elif cfg.category_from == "label_file":
            category = labels.get(rel, cfg.category)
        else:
            category = cfg.category
        load = functools.partial(read_image, found)
        # names that are not UTF-8 are read as they are but recorded escaped
        yield SourceItem("folder", printable_name(str(found)), printable_name(category), load)


# --------------------------------------------------------------------------- s3


def _load_s3(
    client: Any,
    bucket: str,
    key: str,
    size: int,
    max_pixels: int,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> np.ndarray:
    uri = f"s3://{bucket}/{key}"
    if size > max_bytes:  # the listed size: refused before the download
        reason = f"file too large: {size} bytes exceeds max_file_bytes={max_bytes}"
        raise ImageTooLarge(uri, reason, "max_file_bytes")
    try:
        data = s3.get_bytes(bucket, key, client=client)
    except s3.S3Error as exc:
        raise ImageReadError(uri, exc.reason) from None
    return decode_image(data, name=uri, max_pixels=max_pixels)


@SOURCES.register("s3")
def _s3(cfg: S3Source, *, max_member_bytes: int) -> Iterator[Entry]:
    client = s3.make_client()
    try:
        objects = list(s3.iter_objects(cfg.bucket, cfg.prefix, client=client))
    except s3.S3Error as exc:
        raise SourceError(str(exc)) from None
    for obj in objects:
        if not is_image_name(obj.key):
            continue
        category = cfg.category
        if cfg.category_from == "folder" and "/" in obj.key[len(cfg.prefix) :].strip("/"):
            category = _posix_parent_name(obj.key) or cfg.category
        load = functools.partial(_load_s3, client, cfg.bucket, obj.key, obj.size)
        yield SourceItem("s3", f"s3://{cfg.bucket}/{obj.key}", category, load)


# --------------------------------------------------------------------------- urls


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


def _cache_name(url: str, sha256: str) -> str:
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
            raise SourceError(f"{pin_file}:{number}: expected '<sha256>  <url>', got {line!r}")
        pins[url.strip()] = digest.lower()
    return pins


def _record_pin(pin_file: Path, pins: dict[str, str], url: str, sha256: str) -> None:
    """Add ``url``'s hash to ``pins`` (the file's content) and rewrite ``pin_file`` whole, so
    a kill leaves the old one."""
    pins[url] = sha256
    lines = [f"{digest}  {pinned}" for pinned, digest in sorted(pins.items())]
    tmp = pin_file.with_name(pin_file.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, pin_file)
    logger.warning("%s: pinned at sha256 %s in %s (commit it)", mask_url(url), sha256, pin_file)


def _fetch_verified(
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
            _record_pin(pin_file, pins, item.url, got)
        elif got != expected:
            raise DownloadError(f"sha256 mismatch: expected {expected}{where}, got {got}")
        return local, got
    if expected is not None:
        dest = cache_dir / _cache_name(item.url, expected)
        if dest.is_file():
            if file_digest(dest) == expected:
                return dest, expected
            dest.unlink()
    else:  # first download of an unpinned item: named by its URL until its hash is known
        dest = cache_dir / _cache_name(item.url, hashlib.sha256(item.url.encode()).hexdigest())
        dest = dest.with_name("unpinned-" + dest.name)
    try:
        download(item.url, dest, retries=cfg.retries, timeout_s=cfg.timeout_s, session=session)
    except DownloadError as exc:
        raise DownloadError(f"download failed: {exc}") from None
    got = file_digest(dest)
    if expected is None:
        final = cache_dir / _cache_name(item.url, got)
        os.replace(dest, final)
        _record_pin(pin_file, pins, item.url, got)
        return final, got
    if got != expected:
        dest.unlink()
        raise DownloadError(f"sha256 mismatch: expected {expected}{where}, got {got}")
    return dest, got


@SOURCES.register("urls")
def _urls(cfg: UrlSource, *, max_member_bytes: int) -> Iterator[Entry]:
    cache_dir = Path(cfg.cache_dir)
    pins = read_pins(Path(cfg.pin_file))  # updated as items are pinned
    with requests.Session() as session:
        for item in cfg.items:
            origin = mask_url(item.url)  # what the manifest and rejected.csv store
            try:
                local, sha256 = _fetch_verified(item, cache_dir, cfg, session, pins)
            except DownloadError as exc:
                yield Rejection("urls", origin, str(exc))
                continue
            kind = archive_kind(PurePosixPath(urlparse(item.url).path).name)
            if kind is None:
                yield SourceItem(
                    "urls", origin, item.category, functools.partial(read_image, local)
                )
                continue
            extracted = cache_dir / f"{_cache_name(item.url, sha256)}.d"
            try:
                left_out = extract_images(local, kind, extracted, max_member_bytes)
            except (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError) as exc:
                yield Rejection("urls", origin, f"unreadable archive ({exc})")
                continue
            for name, reason in left_out:
                yield Rejection("urls", f"{origin}#{printable_name(name)}", reason)
            members = (p for p in extracted.rglob("*") if p.is_file() and p.name != EXTRACT_INFO)
            for member in sorted(members):
                name = printable_name(member.relative_to(extracted).as_posix())
                load = functools.partial(read_image, member)
                yield SourceItem("urls", f"{origin}#{name}", item.category, load)
