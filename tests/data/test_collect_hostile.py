"""``collect`` on hostile inputs: each one a row in ``rejected.csv``, and the rest collected.

Linked category folders and link loops, a 40 GB sparse file, files over
``collect.max_file_bytes``, archive members whose paths would leave the extraction folder.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

from PIL import Image

from girml.config import CollectConfig
from girml.data.collect import collect
from tests.factories import textured_image


def _cfg(*sources: dict[str, Any], **kwargs: Any) -> CollectConfig:
    return CollectConfig.model_validate({"sources": list(sources), "min_size": 16, **kwargs})


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _photo(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(textured_image(seed, 24, 32)).save(path)
    return path


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(textured_image(seed, 24, 24)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_linked_category_folders_are_collected_and_loops_rejected(tmp_path: Path) -> None:
    """Before: os.walk skipped a linked category folder with no line in rejected.csv."""
    root, elsewhere = tmp_path / "photos", tmp_path / "elsewhere"
    _photo(root / "street" / "a.png", 1)
    for i in range(2):
        _photo(elsewhere / "cats" / f"c{i}.png", 2 + i)
    (root / "cats").symlink_to(elsewhere / "cats")  # linked in: category "cats"
    (elsewhere / "cats" / "photos").symlink_to(root)  # and from there back to the root
    (root / "gone.png").symlink_to(tmp_path / "nowhere.png")
    out = tmp_path / "out"
    result = collect(_cfg({"type": "folder", "path": str(root)}), out, workers=1)

    kept = {row["origin"]: row["category"] for row in _rows(out / "manifest.csv")}
    assert kept == {
        str(root / "street" / "a.png"): "street",
        str(root / "cats" / "c0.png"): "cats",
        str(root / "cats" / "c1.png"): "cats",
    }
    rejected = {row["origin"]: row["reason"] for row in _rows(out / "rejected.csv")}
    assert rejected == {
        str(root / "cats" / "photos"): f"symbolic link loop: leads back to {root.resolve()}",
        str(root / "gone.png"): f"broken symbolic link to {tmp_path / 'nowhere.png'}",
    }
    assert result.n_images == 3 and result.n_rejected == 2


def test_files_over_the_byte_cap_are_rejected_unread(tmp_path: Path) -> None:
    """Before: a 40 GB sparse .jpg was read whole (MemoryError); now its size rejects it."""
    root = tmp_path / "photos"
    kept = _photo(root / "a.png", 10)
    with (root / "huge.jpg").open("wb") as fh:
        fh.truncate(40 << 30)  # sparse: a size on paper
    big = root / "big.png"
    Image.fromarray(textured_image(11, 48, 64)).save(big)
    cap = big.stat().st_size - 1
    assert kept.stat().st_size <= cap
    out = tmp_path / "out"
    source = {"type": "folder", "path": str(root)}
    collect(_cfg(source), out, workers=2)
    rejected = {row["origin"]: row["reason"] for row in _rows(out / "rejected.csv")}
    too_large = f"file too large: {40 << 30} bytes exceeds max_file_bytes=1000000000"
    assert rejected == {str(root / "huge.jpg"): too_large}

    collect(_cfg(source, max_file_bytes=cap), out, workers=2)
    rejected = {row["origin"]: row["reason"] for row in _rows(out / "rejected.csv")}
    assert rejected[str(big)] == f"file too large: {cap + 1} bytes exceeds max_file_bytes={cap}"
    assert [row["origin"] for row in _rows(out / "manifest.csv")] == [str(kept)]


def test_archive_members_that_would_leave_the_folder_are_rejected(tmp_path: Path) -> None:
    """Before: ``../`` and absolute members were dropped with no line in rejected.csv."""
    archive = tmp_path / "set.tar"
    with tarfile.open(archive, "w") as tf:
        for i, name in enumerate(["ok/fine.png", "/abs/evil.png", "../up.png", "a/../../b.sh"]):
            data = _png(20 + i)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    item = {"url": archive.as_uri(), "sha256": digest}
    source = {"type": "urls", "items": [item], "cache_dir": str(tmp_path / "cache")}
    out = tmp_path / "out"
    for _ in range(2):  # the second run reuses the extraction and reports the same
        collect(_cfg(source), out, workers=1)
        origin = archive.as_uri()
        assert [row["origin"] for row in _rows(out / "manifest.csv")] == [f"{origin}#ok/fine.png"]
        rejected = {row["origin"]: row["reason"] for row in _rows(out / "rejected.csv")}
        up = "unsafe member path (goes up with '..'): not extracted"
        assert rejected == {
            f"{origin}#/abs/evil.png": "unsafe member path (absolute): not extracted",
            f"{origin}#../up.png": up,
            f"{origin}#a/../../b.sh": up,
        }
    assert not (tmp_path / "up.png").exists() and not os.path.exists("/abs/evil.png")
