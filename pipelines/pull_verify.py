"""Verifying what a pull fetched, and saying what it produced: ``SHA256SUMS`` files
(``sha256sum -c`` format) written and checked, files compared with the md5 that a DVC
repository records, and the :class:`Pulled` record."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from girml.core.hashing import file_digest
from pipelines.pull_checks import PullError

SUMS_FILE = "SHA256SUMS"


@dataclass(frozen=True)
class Pulled:
    """What a pull produced.

    Attributes:
        source: where it came from (``models:/name/3``, ``runs:/<id>/reports``, a DVC target).
        path: the local file or folder.
        files: number of files verified.
        attempts: download attempts used (1 when the first one succeeded).
    """

    source: str
    path: Path
    files: int
    attempts: int


def _files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).as_posix() != SUMS_FILE
    )


def write_sums(folder: Path) -> dict[str, str]:
    """Write ``folder/SHA256SUMS`` (``sha256sum -c`` format) for every other file, recursively.

    Returns:
        ``{relative posix path: sha256 hex}``, sorted by path.
    """
    sums = {rel: file_digest(folder / rel) for rel in _files(folder)}
    text = "".join(f"{digest}  {rel}\n" for rel, digest in sums.items())
    (folder / SUMS_FILE).write_text(text, encoding="utf-8")
    return sums


def check_sums(folder: Path) -> int:
    """Check every entry of ``folder/SHA256SUMS``; returns how many files were checked.

    Raises:
        FileNotFoundError: there is no ``SHA256SUMS``.
        PullError: a listed file is missing or its sha256 differs, or a line is malformed; the
            message names every bad file.
    """
    lines = (folder / SUMS_FILE).read_text(encoding="utf-8").splitlines()
    bad: list[str] = []
    for number, line in enumerate(lines, 1):
        digest, sep, rel = line.partition("  ")
        path = PurePosixPath(rel.removeprefix("*"))
        if not sep or len(digest) != 64 or path.is_absolute() or ".." in path.parts:
            raise PullError(f"{folder / SUMS_FILE}:{number}: not a sha256sum line: {line!r}")
        local = folder / path
        if not local.is_file():
            bad.append(f"{rel}: missing")
        elif file_digest(local) != digest.lower():
            bad.append(f"{rel}: sha256 differs from {SUMS_FILE}")
    if bad:
        raise PullError(f"checksum mismatch in {folder}:\n  " + "\n  ".join(bad))
    return len(lines)


def verify_md5(local: Path, expected: dict[str, str]) -> int:
    """Compare files under ``local`` (a folder, or one file) with ``{relative path: md5}``.

    Returns:
        The number of files checked.

    Raises:
        PullError: a file is missing or differs; the message names each one.
    """
    bad = []
    for rel, md5 in sorted(expected.items()):
        path = local if local.is_file() else local / rel
        if not path.is_file():
            bad.append(f"{rel}: missing")
        elif file_digest(path, "md5") != md5:
            bad.append(f"{rel}: md5 {file_digest(path, 'md5')}, the repository records {md5}")
    if bad:
        raise PullError(
            f"{local}: {len(bad)} file(s) do not match the repository (a corrupt remote or "
            "cache object):\n  " + "\n  ".join(bad)
        )
    return len(expected)
