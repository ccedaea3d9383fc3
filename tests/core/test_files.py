"""``girml.core.files``: image names, and the folder walk that follows links and reports loops."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from girml.core.files import WalkProblem, is_image_name, walk_files


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def _walk(root: Path) -> tuple[list[str], dict[str, str]]:
    """Files found (relative to ``root``, sorted) and problems (relative path -> reason)."""
    found = list(walk_files(root))
    files = sorted(p.relative_to(root).as_posix() for p in found if isinstance(p, Path))
    problems = {
        p.path.relative_to(root).as_posix(): p.reason for p in found if isinstance(p, WalkProblem)
    }
    return files, problems


def test_image_names() -> None:
    assert is_image_name("a.JPG") and is_image_name("sub/b.tiff")
    assert not is_image_name(".hidden.png") and not is_image_name("notes.txt")
    assert not is_image_name("sub/.b.png")


def test_linked_folders_are_followed_and_loops_reported(tmp_path: Path) -> None:
    """Before: a linked folder of photos was skipped in silence (os.walk, Path.rglob)."""
    root, album = tmp_path / "root", tmp_path / "album"
    _touch(root / "a.png")
    _touch(root / "notes.txt")
    _touch(root / ".hidden" / "h.png")
    _touch(album / "b.jpg")
    _touch(album / "deeper" / "c.png")
    (root / "album").symlink_to(album)  # a linked folder: walked
    (root / "again").symlink_to(album)  # linked twice: walked twice, no loop
    (album / "deeper" / "up").symlink_to(album)  # leads back to a folder it is inside
    (root / "self").symlink_to(root)
    (root / "ring.png").symlink_to(root / "ring.png")  # a link to itself
    (root / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (root / "gone.txt").symlink_to(tmp_path / "nowhere.txt")  # not an image name: not reported

    files, problems = _walk(root)
    assert files == [
        "a.png",
        "again/b.jpg",
        "again/deeper/c.png",
        "album/b.jpg",
        "album/deeper/c.png",
    ]
    real_album, real_root = os.path.realpath(album), os.path.realpath(root)
    assert problems == {
        "album/deeper/up": f"symbolic link loop: leads back to {real_album}",
        "again/deeper/up": f"symbolic link loop: leads back to {real_album}",
        "self": f"symbolic link loop: leads back to {real_root}",
        "ring.png": "symbolic link loop (the link leads back to itself)",
        "gone.png": f"broken symbolic link to {tmp_path / 'nowhere.png'}",
    }


def test_a_fifo_is_reported_not_opened(tmp_path: Path) -> None:
    _touch(tmp_path / "a.png")
    os.mkfifo(tmp_path / "pipe.png")  # opening it would wait for a writer forever
    assert _walk(tmp_path) == (["a.png"], {"pipe.png": "not a regular file"})


def test_an_unreadable_folder_is_reported(tmp_path: Path) -> None:
    _touch(tmp_path / "locked" / "a.png")
    (tmp_path / "locked").chmod(0)
    try:
        if os.access(tmp_path / "locked", os.R_OK):
            pytest.skip("permissions do not apply (running as root)")
        files, problems = _walk(tmp_path)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert files == [] and problems["locked"].startswith("unreadable folder (")
