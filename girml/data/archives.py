"""Archives among ``collect``'s downloads: zip and tar files, extracted member by member.

Members are filtered by name before anything is read: only image names are opened, each is
streamed to disk in chunks under a size cap, so memory stays small whatever the archive holds.
Members that are left out for a reason (too big, a path that would escape the folder) are
returned with that reason, for ``rejected.csv``; names that are simply not images are not.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from girml.core.files import is_image_name

logger = logging.getLogger(__name__)

# Bytes per write when streaming a member to disk.
_CHUNK = 1 << 16
_ZIP_SUFFIXES = (".zip",)
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
# Kept in an extracted archive's folder: the size cap used and the members it left out.
EXTRACT_INFO = ".extract.json"
# Bumped when what an extraction reports changes, so older extractions are redone.
_EXTRACT_FORMAT = 2
# Default cap on one archive member's decompressed size (``collect.max_member_bytes``).
DEFAULT_MAX_MEMBER_BYTES = 200_000_000


def archive_kind(name: str) -> str | None:
    """``"zip"`` or ``"tar"`` from a file name's suffix, None for other files."""
    lowered = name.lower()
    if lowered.endswith(_ZIP_SUFFIXES):
        return "zip"
    if lowered.endswith(_TAR_SUFFIXES):
        return "tar"
    return None


def _unsafe_member(name: str) -> str | None:
    """Why extracting member ``name`` would write outside the folder; None when it would not."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute():
        return "unsafe member path (absolute): not extracted"
    if ".." in path.parts:
        return "unsafe member path (goes up with '..'): not extracted"
    return None


@dataclass(frozen=True)
class _Member:
    """One regular archive member: its name, declared size and a way to stream its bytes."""

    name: str
    size: int
    open: Callable[[], IO[bytes]]


def _archive_members(archive: Path, kind: str) -> Iterator[_Member]:
    """Each regular member of an open zip or tar archive, nothing read yet.

    Listing reads only the zip central directory or the tar headers; a member's bytes are read
    only if the caller calls its ``open``, and then streamed.
    """
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield _Member(info.filename, info.file_size, functools.partial(zf.open, info))
        return
    with tarfile.open(archive, mode="r:*") as tf:
        for member in tf:
            if member.isfile():
                opener = functools.partial(_tar_stream, tf, member)
                yield _Member(member.name, member.size, opener)


def _tar_stream(tf: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    stream = tf.extractfile(member)
    if stream is None:  # isfile() members always have one
        raise tarfile.TarError(f"cannot read member {member.name!r}")
    return stream


def copy_capped(src: IO[bytes], dest: Path, max_bytes: int) -> bool:
    """Stream ``src`` into ``dest`` in chunks; False (and no ``dest``) past ``max_bytes``.

    The cap counts the bytes actually read, so a member whose declared size lies is still
    stopped once it passes ``max_bytes``; memory stays at one chunk whatever the size.
    """
    written = 0
    with dest.open("wb") as out:
        for chunk in iter(functools.partial(src.read, _CHUNK), b""):
            written += len(chunk)
            if written > max_bytes:
                break
            out.write(chunk)
    if written > max_bytes:
        dest.unlink()
        return False
    return True


def _read_extract_info(target: Path, max_member_bytes: int) -> list[tuple[str, str]] | None:
    """Rejected members recorded by an earlier extraction with the same cap, else None."""
    try:
        info = json.loads((target / EXTRACT_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("format") != _EXTRACT_FORMAT:
        return None
    if info.get("max_member_bytes") != max_member_bytes:
        return None
    return [(str(name), str(reason)) for name, reason in info.get("rejected", [])]


def extract_images(
    archive: Path, kind: str, target: Path, max_member_bytes: int
) -> list[tuple[str, str]]:
    """Extract the image members of a verified archive once, into the folder ``target``.

    Members are filtered by name before anything is read: only image names (see
    :func:`girml.core.files.is_image_name`) are opened, and each is streamed to disk, so memory
    stays small whatever the archive holds. An image member over ``max_member_bytes``
    (declared, or actually read) is left out and reported, and so is any member with an
    absolute or ``..`` path (whatever its name: it marks a hostile archive). The folder appears
    atomically (staged, then renamed) with a hidden ``.extract.json`` recording the cap and the
    left-out members, so later runs with the same cap reuse it; a different cap extracts again.

    Returns:
        ``(member name, reason)`` for each member left out for its size or its path.
    """
    cached = _read_extract_info(target, max_member_bytes) if target.is_dir() else None
    if cached is not None:
        return cached
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    rejected: list[tuple[str, str]] = []
    too_big = f"larger than collect.max_member_bytes={max_member_bytes}"
    try:
        for member in _archive_members(archive, kind):
            unsafe = _unsafe_member(member.name)
            if unsafe is not None:
                logger.warning("%s: member %r: %s", archive, member.name, unsafe)
                rejected.append((member.name, unsafe))
                continue
            if not is_image_name(member.name):
                continue
            if member.size > max_member_bytes:
                rejected.append((member.name, f"{too_big} ({member.size} bytes)"))
                continue
            out = staging / member.name
            out.parent.mkdir(parents=True, exist_ok=True)
            with member.open() as stream:
                if not copy_capped(stream, out, max_member_bytes):
                    rejected.append((member.name, f"{too_big} (declared {member.size} bytes)"))
        info = {
            "format": _EXTRACT_FORMAT,
            "max_member_bytes": max_member_bytes,
            "rejected": rejected,
        }
        (staging / EXTRACT_INFO).write_text(json.dumps(info), encoding="utf-8")
        if target.is_dir():  # extracted by an older version or with another cap
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return rejected
