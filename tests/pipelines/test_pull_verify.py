"""Verifying what a pull fetched (pipelines/pull_verify.py): SHA256SUMS files and md5s."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipelines.pull_checks import PullError
from pipelines.pull_verify import SUMS_FILE, check_sums, verify_md5, write_sums


def test_sha256sums_written_checked_and_tampering_caught(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "data" / "model.pth").write_bytes(b"\x00\x01weights")
    sums = write_sums(tmp_path)
    assert sums == {
        "MLmodel": hashlib.sha256(b"flavors: {}\n").hexdigest(),
        "data/model.pth": hashlib.sha256(b"\x00\x01weights").hexdigest(),
    }
    lines = (tmp_path / SUMS_FILE).read_text().splitlines()
    assert lines == [f"{digest}  {rel}" for rel, digest in sums.items()]  # sha256sum -c format
    assert check_sums(tmp_path) == 2

    (tmp_path / "data" / "model.pth").write_bytes(b"\x00\x01weightz")
    (tmp_path / "MLmodel").unlink()
    with pytest.raises(PullError, match=r"data/model.pth: sha256 differs") as info:
        check_sums(tmp_path)
    assert "MLmodel: missing" in str(info.value)
    (tmp_path / SUMS_FILE).write_text("not a checksum line\n")
    with pytest.raises(PullError, match="not a sha256sum line"):
        check_sums(tmp_path)


def test_md5s_are_compared_file_by_file_and_each_bad_one_is_named(tmp_path: Path) -> None:
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / "0.png").write_bytes(b"zero")
    (tmp_path / "noise" / "1.png").write_bytes(b"one")
    expected = {
        "noise/0.png": hashlib.md5(b"zero").hexdigest(),
        "noise/1.png": hashlib.md5(b"one").hexdigest(),
    }
    assert verify_md5(tmp_path, expected) == 2
    assert verify_md5(tmp_path / "noise" / "0.png", {"0.png": expected["noise/0.png"]}) == 1
    (tmp_path / "noise" / "1.png").write_bytes(b"changed")
    bad = {**expected, "noise/2.png": "0" * 32}
    with pytest.raises(PullError, match=r"2 file\(s\) do not match the repository") as info:
        verify_md5(tmp_path, bad)
    assert "noise/1.png: md5" in str(info.value) and "noise/2.png: missing" in str(info.value)
