"""``girml restore`` on hostile inputs: every file is reported with its reason, the batch goes on.

Linked folders, link loops, names at the file system's limit, a 40 GB sparse file, a cap on
pixels, memory running out, a full disk, a device this torch does not have.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from girml.artifacts.store import save_model_dir
from girml.cli import app
from girml.config import RESTORE_MAX_PIXELS, ModelConfig
from girml.errors import EX_CANTCREAT
from girml.imageio import write_png
from girml.models import build_model
from girml.restore import restore_files
from tests.factories import textured_image

TILE, OVERLAP = 64, 16
LONG = "p" * 242 + ".jpg"  # 246 characters: the input fits, its old temporary name did not


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)).eval()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    cfg = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
    return save_model_dir(build_model(cfg), cfg, tmp_path / "model")


def _photo(path: Path, seed: int, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(textured_image(seed, 24, 32)).save(path, format=fmt)
    return path


def _restore(inputs: list[Path], out: Path, model: torch.nn.Module, **kwargs):
    return restore_files(inputs, out, model, tile=TILE, overlap=OVERLAP, **kwargs)


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        fh.truncate(size)  # no disk used: a size on paper
    return path


def test_linked_folders_are_restored_and_a_loop_is_a_failure(
    tmp_path: Path, model: torch.nn.Module
) -> None:
    """Before: a linked sub-folder of photos was skipped, "restored 1 image(s), 0 failed"."""
    folder, album = tmp_path / "in", tmp_path / "album"
    _photo(folder / "a.png", 1)
    for i in range(3):
        _photo(album / f"b{i}.png", 2 + i)
    (folder / "album").symlink_to(album)
    (album / "loop").symlink_to(album)
    report = _restore([folder], tmp_path / "out", model)
    written = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")
    )
    assert written == ["a.png", "album", "album/b0.png", "album/b1.png", "album/b2.png"]
    loop = folder / "album" / "loop"
    assert report.failed == [(loop, f"symbolic link loop: leads back to {album.resolve()}")]


def test_names_at_the_limit_and_beyond_fail_alone(tmp_path: Path, model: torch.nn.Module) -> None:
    """Before: one 246-character name stopped the batch (exit 74, 0 of 6 written)."""
    folder = tmp_path / "in"
    for i in range(4):
        _photo(folder / f"ok{i}.png", 10 + i)
    _photo(folder / LONG, 20, "PNG")
    # two inputs that share a stem are named after their full names: 250 + 8 characters
    twins = [_photo(folder / ("t" * 250 + ext), 21, "PNG") for ext in (".jpg", ".png")]
    report = _restore([folder], tmp_path / "out", model)
    assert sorted(src.name for src, _ in report.restored) == sorted(
        [f"ok{i}.png" for i in range(4)] + [LONG]
    )
    assert (tmp_path / "out" / ("p" * 242 + ".png")).is_file()
    assert [src for src, _ in report.failed] == twins
    for src, reason in report.failed:
        out = tmp_path / "out" / f"{src.name}.png"
        assert reason == f"cannot write {out}: {os.strerror(errno.ENAMETOOLONG)}"
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_size_caps_and_memory_fail_one_file(
    tmp_path: Path, model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a 40 GB sparse .jpg was read whole: a MemoryError traceback, no later photo."""
    folder = tmp_path / "in"
    folder.mkdir()
    huge = _sparse(folder / "a-huge.jpg", 40 << 30)
    big = _photo(folder / "b-big.png", 30)  # 24 x 32 = 768 pixels
    small = folder / "c-small.png"
    Image.fromarray(textured_image(31, 20, 20)).save(small)
    report = _restore([folder], tmp_path / "out", model, max_pixels=700)
    assert [src for src, _ in report.restored] == [small]
    assert report.failed == [
        (
            huge,
            f"file too large: {40 << 30} bytes exceeds max_file_bytes=1000000000 "
            "(raise it with --max-file-bytes)",
        ),
        (
            big,
            "decompression bomb: 32x24 = 768 pixels exceeds max_pixels=700 "
            "(raise it with --max-pixels)",
        ),
    ]
    assert RESTORE_MAX_PIXELS >= 12000 * 12000  # restore is tiled: a 144 MP photo is fine

    import girml.restore

    real = girml.restore.restore_image

    def starved(net, image, **kwargs):
        if image.shape[-1] == 32:
            raise MemoryError
        return real(net, image, **kwargs)

    monkeypatch.setattr(girml.restore, "restore_image", starved)
    square = folder / "square.png"
    Image.fromarray(textured_image(32, 24, 24)).save(square)
    report = _restore([big, square], tmp_path / "out2", model)
    assert report.failed == [(big, "out of memory restoring 32x24 (try a smaller --tile)")]
    assert [src.name for src, _ in report.restored] == ["square.png"]


def test_a_full_disk_stops_the_batch_naming_the_output(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: "[Errno 28] No space left on device", with no path."""
    for i in range(2):
        write_png(tmp_path / "in" / f"a{i}.png", textured_image(40 + i, 24, 32))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", full)
    out = tmp_path / "out"
    args = ["restore", str(tmp_path / "in"), "-o", str(out), "--model", str(model_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EX_CANTCREAT, result.output
    assert result.output.splitlines()[-1] == f"error: {out / 'a0.png'}: No space left on device"
    assert list(out.iterdir()) == []  # no temporary file left


@pytest.mark.parametrize(
    ("device", "says"),
    [
        ("cuda", "--device 'cuda' is not available: this torch has no CUDA ("),
        ("cuda:1", "--device 'cuda:1' is not available: this torch has no CUDA ("),
        ("nosuch", "--device 'nosuch' is not a device (available here: cpu"),
    ],
)
def test_a_device_this_torch_lacks_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, device: str, says: str
) -> None:
    """Before: 47-57 lines of traceback."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    _photo(tmp_path / "a.png", 50)
    args = ["restore", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model", "none"]
    result = CliRunner().invoke(app, [*args, "--device", device])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and len(result.output.splitlines()) == 1
    assert result.output.startswith(f"error: {says}") and "available here: cpu" in result.output
    assert not (tmp_path / "out").exists()


def test_the_cli_restores_the_rest_names_each_failure_and_exits_1(
    tmp_path: Path, model_dir: Path
) -> None:
    """The hostile folder end to end: linked album, loop, long name, huge file, pixel cap."""
    folder, album = tmp_path / "in", tmp_path / "album"
    _photo(folder / "a.png", 60)
    _photo(folder / LONG, 61, "PNG")
    _photo(album / "b.png", 62)
    (folder / "album").symlink_to(album)
    (folder / "self").symlink_to(folder)
    _sparse(folder / "huge.jpg", 40 << 30)
    Image.fromarray(textured_image(64, 24, 64)).save(folder / "wide.png")  # 1536 pixels
    out = tmp_path / "out"
    args = ["restore", str(folder), "-o", str(out), "--model", str(model_dir)]
    result = CliRunner().invoke(app, [*args, "--max-pixels", "1000", "--max-file-bytes", "10000"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {folder / 'self'}: symbolic link loop: leads back to {folder.resolve()}",
        f"error: {folder / 'huge.jpg'}: file too large: {40 << 30} bytes exceeds "
        "max_file_bytes=10000 (raise it with --max-file-bytes)",
        f"error: {folder / 'wide.png'}: decompression bomb: 64x24 = 1536 pixels exceeds "
        "max_pixels=1000 (raise it with --max-pixels)",
    ]
    assert f"restored 3 image(s) into {out}, 3 failed" in result.output
    assert sorted(p.name for p in out.rglob("*.png")) == sorted(
        ["a.png", "b.png", "p" * 242 + ".png"]
    )
