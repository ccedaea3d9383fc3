"""girml.core.hashing: the file digest helper."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from girml.core.hashing import file_digest


def test_digest_matches_hashlib_on_the_bytes(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4099  # ~1 MB, more than one read buffer
    path = tmp_path / "blob.bin"
    path.write_bytes(payload)
    assert file_digest(path) == hashlib.sha256(payload).hexdigest()
    assert file_digest(str(path), "md5") == hashlib.md5(payload).hexdigest()
    assert file_digest(path) == file_digest(path)


def test_one_changed_byte_changes_the_digest(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"weights" * 100)
    b.write_bytes(b"weights" * 99 + b"weightS")
    assert file_digest(a) != file_digest(b)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_digest(empty) == hashlib.sha256(b"").hexdigest()


def test_bad_arguments_raise(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.bin"):
        file_digest(tmp_path / "missing.bin")
    (tmp_path / "x").write_bytes(b"x")
    with pytest.raises(ValueError, match="sha999"):
        file_digest(tmp_path / "x", "sha999")
