"""``restore_files``: odd image modes and sizes, broken inputs, folders mirrored into the output,
the progress bar."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from girml.config import ModelConfig
from girml.core.imageio import read_image, to_tensor, to_uint8
from girml.core.inference import restore_image
from girml.models import build_model
from girml.restore import restore_files
from tests.factories import textured_image

TILE, OVERLAP = 64, 16


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model(ModelConfig(width=4, enc_blocks=[1], middle_blocks=0))
    with torch.no_grad():  # move it away from identity so restoring visibly changes pixels
        for param in net.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return net.eval()


def write_odd_images(folder: Path) -> dict[str, tuple[int, int]]:
    """Files in awkward modes and sizes; returns name -> displayed (height, width)."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = textured_image(0, 37, 53)
    Image.fromarray(rgb).convert("L").save(folder / "gray.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png")
    alpha = np.linspace(0, 255, 37 * 53).reshape(37, 53).astype(np.uint8)
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(folder / "alpha.png")
    deep = (rgb[..., 0].astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep16.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: stored sideways, displayed rotated 90 degrees clockwise
    Image.fromarray(rgb).save(folder / "rotated.jpg", quality=95, exif=exif)
    Image.fromarray(textured_image(1, 211, 300)).save(folder / "wide.png")
    return {
        "gray": (37, 53),
        "palette": (37, 53),
        "alpha": (37, 53),
        "deep16": (37, 53),
        "rotated": (53, 37),
        "wide": (211, 300),
    }


def test_odd_modes_and_sizes_restore_to_same_size_rgb(
    tmp_path: Path, model: torch.nn.Module
) -> None:
    sizes = write_odd_images(tmp_path / "in")
    assert Image.open(tmp_path / "in" / "deep16.png").mode.startswith("I")
    inputs = sorted((tmp_path / "in").iterdir())
    report = restore_files(inputs, tmp_path / "out", model, tile=TILE, overlap=OVERLAP)

    assert report.ok and len(report.restored) == len(sizes)
    for src, out in report.restored:
        assert out == tmp_path / "out" / f"{src.stem}.png"
        with Image.open(out) as img:
            assert img.mode == "RGB"
            assert (img.height, img.width) == sizes[src.stem]
        # the file pipeline adds nothing to restore_image on the decoded picture
        expected = to_uint8(restore_image(model, to_tensor(read_image(src)), TILE, OVERLAP))
        assert np.array_equal(read_image(out), expected)
        assert not np.array_equal(read_image(out), read_image(src))  # the model did something


def test_identity_model_keeps_pixels_and_orientation(tmp_path: Path) -> None:
    write_odd_images(tmp_path / "in")
    identity = torch.nn.Identity()
    report = restore_files([tmp_path / "in"], tmp_path / "out", identity, tile=TILE, device="cpu")
    assert report.ok
    for src, out in report.restored:
        assert np.array_equal(read_image(out), read_image(src)), src.name


def test_broken_file_is_reported_and_the_rest_restored(
    tmp_path: Path, model: torch.nn.Module, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(textured_image(2, 40, 40)).save(folder / "good1.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    good = folder / "good2.png"
    Image.fromarray(textured_image(3, 40, 40)).save(good)
    truncated = folder / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])
    missing = tmp_path / "missing.png"

    out_dir = tmp_path / "out"
    with caplog.at_level(logging.DEBUG, logger="girml.restore"):
        report = restore_files([folder, missing], out_dir, model, tile=TILE, overlap=OVERLAP)

    assert [src.name for src, _ in report.restored] == ["good1.png", "good2.png"]
    failed = dict(report.failed)
    assert set(failed) == {folder / "broken.jpg", truncated, missing}
    assert "truncated" in failed[truncated]
    assert failed[missing] == "no such file or folder"
    assert not report.ok
    # the caller names each failure once (girml restore: at the end); the log only at DEBUG
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG]
    debug = "\n".join(r.getMessage() for r in caplog.records)
    for path in failed:
        assert str(path) in debug
    assert sorted(p.name for p in out_dir.iterdir()) == ["good1.png", "good2.png"]
    # the missing input was refused before any image was read; each restored one was timed
    assert report.results[0].input == missing and report.results[0].seconds == 0
    assert all(r.seconds > 0 for r in report.results[1:])
    assert report.seconds >= sum(r.seconds for r in report.results)


def test_folders_are_mirrored_and_clashing_names_are_refused_before_any_work(
    tmp_path: Path, model: torch.nn.Module
) -> None:
    """Before: in/d.jpg and loose/d.png came out as d.jpg.png and d.png.png, and two a.png from
    two folders as a.png.png and a.png-1.png."""
    folder = tmp_path / "in"
    image = textured_image(4, 24, 32)
    tree = ["a.jpg", "a.png", "d.jpg", "sub/b.PNG", "sub/deeper/c.bmp", ".hidden/x.png"]
    for rel in [*tree, "other/a.tif"]:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / rel)
    (folder / "notes.txt").write_text("not an image", encoding="utf-8")
    loose = tmp_path / "loose"
    loose.mkdir()
    for name in ("a.png", "d.png", "f.png"):
        Image.fromarray(image).save(loose / name)

    out_dir = tmp_path / "out"
    with pytest.raises(ValueError) as info:
        restore_files([folder, loose / "d.png"], out_dir, model, tile=TILE, overlap=OVERLAP)
    assert str(info.value).startswith(
        f"{folder / 'd.jpg'} and {loose / 'd.png'} would both be restored to {out_dir / 'd.png'}"
    )
    assert not out_dir.exists()

    # one folder: its tree at the top; a file named directly: at the top too
    report = restore_files([folder, loose / "f.png"], out_dir, model, tile=TILE, overlap=OVERLAP)
    assert report.ok
    written = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    assert written == [
        "a.jpg.png",  # a.jpg and a.png share a folder and a stem: named after their full names
        "a.png.png",
        "d.png",
        "f.png",
        "other/a.png",
        "sub/b.png",
        "sub/deeper/c.png",
    ]
    # several folders: each under a sub-folder named after it, so nothing clashes
    both = tmp_path / "both"
    report = restore_files([folder, loose], both, model, tile=TILE, overlap=OVERLAP)
    outputs = {src: out.relative_to(both).as_posix() for src, out in report.restored}
    assert outputs[folder / "a.png"] == "in/a.png.png"
    assert outputs[folder / "d.jpg"] == "in/d.png"
    assert outputs[folder / "sub" / "b.PNG"] == "in/sub/b.png"
    assert outputs[loose / "a.png"] == "loose/a.png"
    assert outputs[loose / "d.png"] == "loose/d.png"
    assert len(outputs) == 9


def test_a_progress_bar_over_the_images_only_when_asked(
    tmp_path: Path, model: torch.nn.Module, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    for i in range(3):
        Image.fromarray(textured_image(10 + i, 24, 32)).save(tmp_path / "in" / f"{i}.png")
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    restore_files([tmp_path / "in"], tmp_path / "out", model, tile=TILE, overlap=OVERLAP)
    assert capsys.readouterr().err == ""
    restore_files(
        [tmp_path / "in"], tmp_path / "out", model, tile=TILE, overlap=OVERLAP, progress=True
    )
    err = capsys.readouterr().err
    assert "restore: 100%" in err and "4/4" in err and "failed=1" in err


def test_refuses_to_overwrite_inputs_and_checks_tiling(
    tmp_path: Path, model: torch.nn.Module
) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(textured_image(5, 100, 100)).save(src)
    before = src.read_bytes()
    with pytest.raises(ValueError, match="would overwrite an input"):
        restore_files([tmp_path], tmp_path, model, tile=TILE, overlap=OVERLAP)
    assert src.read_bytes() == before
    with pytest.raises(ValueError, match="tile must be > overlap"):
        restore_files([src], tmp_path / "out", model, tile=16, overlap=16)
    with pytest.raises(ValueError, match=r"multiple of model\.size_multiple=2, got 63"):
        restore_files([src], tmp_path / "out", model, tile=63, overlap=16)
    assert not (tmp_path / "out").exists()
