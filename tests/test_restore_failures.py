"""``girml restore`` on hostile inputs: every file is reported once with its reason, the batch
goes on, and the ``--json`` summary says what became of each.

Linked folders, link loops, names at the file system's limit, a 40 GB sparse file, a cap on
pixels, memory running out, a full disk, a device this torch does not have, missing inputs and
two inputs for one output; a real terminal for the progress bar.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from girml.artifacts.store import save_model_dir
from girml.cli import app
from girml.config import RESTORE_MAX_PIXELS, ModelConfig
from girml.core.errors import EX_CANTCREAT
from girml.core.imageio import write_png
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


def test_bad_inputs_are_found_before_the_model_loads_and_named_once(
    tmp_path: Path, model_dir: Path
) -> None:
    """Before: a missing file was found after the model loaded, and its error printed twice."""
    good = _photo(tmp_path / "good.png", 70)
    missing = tmp_path / "missing.png"
    out = tmp_path / "out"
    args = ["restore", str(missing), str(good), "-o", str(out), "--model", str(model_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.output.count(str(missing)) == 1
    assert f"error: {missing}: no such file or folder" in result.output.splitlines()
    assert f"restored 1 image(s) into {out}, 1 failed" in result.output
    assert [p.name for p in out.iterdir()] == ["good.png"]

    # nothing usable: the model is never loaded (this folder holds no weights, so loading it
    # would fail with exit code 2), and the input's error is the one line after the model's
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    args = ["restore", str(missing), "-o", str(tmp_path / "out2"), "--model", str(empty)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"model: {empty} (folder) on cpu"
    assert lines[1:] == [
        f"error: {missing}: no such file or folder",
        f"restored 0 image(s) into {tmp_path / 'out2'}, 1 failed",
    ]


def test_two_inputs_for_one_output_stop_before_any_work(tmp_path: Path, model_dir: Path) -> None:
    first, second = _photo(tmp_path / "a" / "x.png", 71), _photo(tmp_path / "b" / "x.jpg", 72)
    out = tmp_path / "out"
    args = ["restore", str(first), str(second), "-o", str(out), "--model", str(model_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1] == (
        f"error: {first} and {second} would both be restored to {out / 'x.png'}; restore them "
        "into different -o folders, or pass the folders that hold them"
    )
    assert not out.exists()
    # their folders instead: mirrored under a sub-folder each
    args = ["restore", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out)]
    result = CliRunner().invoke(app, [*args, "--model", str(model_dir)])
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "a/x.png",
        "b/x.png",
    ]


def test_the_json_summary_names_each_image_its_model_time_and_status(
    tmp_path: Path, model_dir: Path
) -> None:
    folder = tmp_path / "in"
    _photo(folder / "a.png", 80)
    _photo(folder / "sub" / "b.png", 81)
    (folder / "broken.png").write_bytes(b"not a png")
    _sparse(folder / "huge.jpg", 1 << 20)
    summary = tmp_path / "reports" / "restore.json"
    out = tmp_path / "out"
    args = ["restore", str(folder), "-o", str(out), "--model", str(model_dir)]
    result = CliRunner().invoke(app, [*args, "--json", str(summary), "--max-file-bytes", "9999"])
    assert result.exit_code == 1, result.output
    assert result.output.count("huge.jpg") == 1 and result.output.count("broken.png") == 1

    doc = json.loads(summary.read_text())
    model = {"uri": str(model_dir), "version": None, "folder": str(model_dir.resolve())}
    assert doc["model"] == {
        **model,
        "requested": str(model_dir),
        "alias": None,
        "description": f"{model_dir} (model folder)",
    }
    assert doc["device"] == "cpu" and doc["out_dir"] == str(out)
    by_input = {image["input"]: image for image in doc["images"]}
    assert list(by_input) == [str(folder / n) for n in ("huge.jpg", "a.png", "broken.png")] + [
        str(folder / "sub" / "b.png")
    ]
    for image in doc["images"]:
        assert image["model"] == model
    ok = by_input[str(folder / "sub" / "b.png")]
    assert ok["status"] == "ok" and ok["error"] is None and ok["seconds"] > 0
    assert ok["output"] == str(out / "sub" / "b.png") and Path(ok["output"]).is_file()
    huge = by_input[str(folder / "huge.jpg")]
    assert huge["status"] == "error" and huge["output"] is None and huge["seconds"] == 0
    assert huge["error"].startswith(f"file too large: {1 << 20} bytes exceeds max_file_bytes=9999")
    assert by_input[str(folder / "broken.png")]["status"] == "error"
    totals = doc["totals"]
    assert (totals["images"], totals["ok"], totals["failed"]) == (4, 2, 2)
    assert totals["seconds"] >= ok["seconds"] and doc["stopped"] is None
    assert [p.name for p in summary.parent.iterdir()] == ["restore.json"]  # no temporary left

    result = CliRunner().invoke(app, [*args, "--json", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"error: --json {tmp_path} is a folder; name the JSON file to write"
    ]


def test_a_full_disk_still_writes_the_json_summary(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        write_png(tmp_path / "in" / f"a{i}.png", textured_image(90 + i, 24, 32))
    summary = tmp_path / "summary.json"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", full)
    out = tmp_path / "out"
    args = ["restore", str(tmp_path / "in"), "-o", str(out), "--model", str(model_dir)]
    result = CliRunner().invoke(app, [*args, "--json", str(summary)])
    assert result.exit_code == EX_CANTCREAT, result.output
    doc = json.loads(summary.read_text())
    assert doc["stopped"] == f"{out / 'a0.png'}: No space left on device"
    assert [(image["status"], image["error"]) for image in doc["images"]] == [
        ("error", f"cannot write {out / 'a0.png'}: No space left on device"),
        ("error", f"not attempted: the batch stopped at {out / 'a0.png'}"),
        ("error", f"not attempted: the batch stopped at {out / 'a0.png'}"),
    ]
    assert doc["totals"]["failed"] == 3


def test_a_terminal_gets_a_progress_bar(tmp_path: Path, model_dir: Path) -> None:
    """Before: one log line per image. A real process whose stderr is a terminal (a pty)."""
    for i in range(3):
        _photo(tmp_path / "in" / f"a{i}.png", 100 + i)
    out = tmp_path / "out"
    args = ["restore", str(tmp_path / "in"), "-o", str(out), "--model", str(model_dir)]
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with open(os.devnull, "wb") as quiet:
        proc = subprocess.Popen(
            [sys.executable, "-m", "girml", *args], stdout=quiet, stderr=secondary
        )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.wait(timeout=120) == 0
    screen = b"".join(chunks).decode()
    assert "restore: 100%" in screen and "3/3" in screen
    assert "INFO" not in screen  # no log line per image
    assert sorted(p.name for p in out.iterdir()) == ["a0.png", "a1.png", "a2.png"]
