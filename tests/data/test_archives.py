"""girml.data.archives: zip and tar members filtered by name, streamed under a cap, reused."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from girml.data.archives import EXTRACT_INFO, archive_kind, copy_capped, extract_images

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)  # extraction does not decode: any bytes will do


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_archive_kind_from_the_suffix() -> None:
    assert archive_kind("DIV2K.ZIP") == "zip"
    for name in ("a.tar", "a.tar.gz", "a.tgz", "a.tar.bz2", "a.tar.xz"):
        assert archive_kind(name) == "tar", name
    assert archive_kind("photo.png") is None and archive_kind("a.gz") is None


def test_capped_copy_counts_the_bytes_read_not_the_declared_size(tmp_path: Path) -> None:
    dest = tmp_path / "member.png"
    assert not copy_capped(io.BytesIO(bytes(200_000)), dest, 100_000)
    assert not dest.exists()
    assert copy_capped(io.BytesIO(bytes(100_000)), dest, 100_000)
    assert dest.stat().st_size == 100_000


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_only_image_members_are_extracted_and_unsafe_paths_reported(
    kind: str, tmp_path: Path
) -> None:
    members = {
        "set/one.png": PNG,
        "two.JPG": PNG[:100],
        "README.txt": b"not an image: skipped in silence",
        "../escape.png": PNG,
        "big.png": PNG * 3,
    }
    write = _zip if kind == "zip" else _tar
    archive = write(tmp_path / f"a.{kind}", members)
    target = tmp_path / "out" / "a"
    rejected = extract_images(archive, kind, target, max_member_bytes=len(PNG))
    assert rejected == [
        ("../escape.png", "unsafe member path (goes up with '..'): not extracted"),
        ("big.png", f"larger than collect.max_member_bytes={len(PNG)} ({3 * len(PNG)} bytes)"),
    ]
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert files == [EXTRACT_INFO, "set/one.png", "two.JPG"]
    assert (target / "set" / "one.png").read_bytes() == PNG
    assert not (tmp_path / "out" / "escape.png").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a"]  # no staging folder left


def test_an_extraction_is_reused_with_the_same_cap_only(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {"one.png": PNG, "big.png": PNG * 2})
    target = tmp_path / "a"
    first = extract_images(archive, "zip", target, max_member_bytes=len(PNG))
    info = json.loads((target / EXTRACT_INFO).read_text())
    assert info["max_member_bytes"] == len(PNG) and len(info["rejected"]) == 1
    archive.unlink()  # reusing must not read the archive again
    assert extract_images(archive, "zip", target, max_member_bytes=len(PNG)) == first
    with pytest.raises(FileNotFoundError):
        extract_images(archive, "zip", target, max_member_bytes=10 * len(PNG))
    _zip(archive, {"one.png": PNG, "big.png": PNG * 2})
    assert extract_images(archive, "zip", target, max_member_bytes=10 * len(PNG)) == []
    assert sorted(p.name for p in target.glob("*.png")) == ["big.png", "one.png"]
