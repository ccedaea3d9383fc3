"""Where ``collect`` finds images: builtin package files, folders, S3 and verified URLs.

Each source type (a ``type:`` in ``params.yaml: collect.sources``) maps, through :data:`SOURCES`,
to a function listing :class:`SourceItem` (an image still to load) and :class:`Rejection` (an
item that already failed, e.g. a download whose sha256 did not match). Listing is cheap;
loading (reading, downloading, decoding) happens later in worker threads through
``SourceItem.load``. A source that cannot be listed at all raises :class:`SourceError`.
Downloads and their sha256 pins are :mod:`girml.data.downloads`.
"""

from __future__ import annotations

import csv
import functools
import logging
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import requests

from girml.config import (
    BuiltinSource,
    ConfigError,
    FolderSource,
    S3Source,
    Source,
    SplitFractions,
    UrlSource,
)
from girml.core.files import WalkProblem, is_image_name, walk_files
from girml.core.imageio import (
    DEFAULT_MAX_FILE_BYTES,
    ImageReadError,
    ImageTooLarge,
    decode_image,
    read_image,
)
from girml.core.registry import Registry
from girml.core.urls import mask_url
from girml.data.archives import DEFAULT_MAX_MEMBER_BYTES, EXTRACT_INFO, archive_kind, extract_images
from girml.data.downloads import (
    DownloadError,
    PinFileError,
    cache_name,
    fetch_verified,
    read_pins,
)
from girml.storage import s3

logger = logging.getLogger(__name__)

UNKNOWN_CATEGORY = "unknown"


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
        name: its path inside the source, POSIX: relative to a folder or an S3 prefix, an
            archive member's path, a downloaded file's name (what a test set's layout is
            matched on, :mod:`girml.data.layouts`).
    """

    source: str
    origin: str
    category: str
    load: Callable[..., np.ndarray]
    split: SplitFractions | None = None
    name: str = ""


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
        load = functools.partial(read_image, image.path())
        yield SourceItem("builtin", name, image.category, load, name=name)


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
        origin, rel_name = printable_name(str(found)), printable_name(rel)
        yield SourceItem("folder", origin, printable_name(category), load, name=rel_name)


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
        rel = obj.key[len(cfg.prefix) :].lstrip("/")
        yield SourceItem("s3", f"s3://{cfg.bucket}/{obj.key}", category, load, name=rel)


# --------------------------------------------------------------------------- urls


@SOURCES.register("urls")
def _urls(cfg: UrlSource, *, max_member_bytes: int) -> Iterator[Entry]:
    cache_dir = Path(cfg.cache_dir)
    try:
        pins = read_pins(Path(cfg.pin_file))  # updated as items are pinned
    except PinFileError as exc:
        raise SourceError(str(exc)) from None
    with requests.Session() as session:
        for item in cfg.items:
            origin = mask_url(item.url)  # what the manifest and rejected.csv store
            try:
                local, sha256 = fetch_verified(item, cache_dir, cfg, session, pins)
            except DownloadError as exc:
                yield Rejection("urls", origin, str(exc))
                continue
            kind = archive_kind(PurePosixPath(urlparse(item.url).path).name)
            if kind is None:
                load = functools.partial(read_image, local)
                base = PurePosixPath(unquote(urlparse(item.url).path)).name
                yield SourceItem("urls", origin, item.category, load, name=printable_name(base))
                continue
            extracted = cache_dir / f"{cache_name(item.url, sha256)}.d"
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
                yield SourceItem("urls", f"{origin}#{name}", item.category, load, name=name)
