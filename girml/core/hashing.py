"""File digests: the one helper that hashes a file's bytes (checksums, pins, model provenance)."""

from __future__ import annotations

import hashlib
import os


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of the bytes of the file at ``path``.

    Args:
        path: the file.
        algorithm: a :mod:`hashlib` name (``"sha256"``, ``"md5"``, ...).

    Returns:
        The lowercase hex digest, streamed by :func:`hashlib.file_digest` (no whole-file read).
    """
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()
