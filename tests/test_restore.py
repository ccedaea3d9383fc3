"""``restore_files``: odd image modes and sizes, broken inputs, folders and output naming."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from girml.config import ModelConfig
from girml.imageio import read_image, to_tensor, to_uint8
from girml.inference import restore_image
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
    with caplog.at_level(logging.ERROR, logger="girml.restore"):
        report = restore_files([folder, missing], out_dir, model, tile=TILE, overlap=OVERLAP)

    assert [src.name for src, _ in report.restored] == ["good1.png", "good2.png"]
    failed = dict(report.failed)
    assert set(failed) == {folder / "broken.jpg", truncated, missing}
    assert "truncated" in failed[truncated]
    assert not report.ok
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    for path in failed:
        assert str(path) in logged
    assert sorted(p.name for p in out_dir.iterdir()) == ["good1.png", "good2.png"]


def test_folders_are_recursive_and_clashing_names_are_kept_apart(
    tmp_path: Path, model: torch.nn.Module
) -> None:
    folder = tmp_path / "in"
    image = textured_image(4, 24, 32)
    for rel in ["a.jpg", "a.png", "sub/b.PNG", "sub/deeper/c.bmp", ".hidden/x.png", "other/a.tif"]:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / rel)
    (folder / "notes.txt").write_text("not an image", encoding="utf-8")
    loose = tmp_path / "loose"
    loose.mkdir()
    Image.fromarray(image).save(loose / "a.png")

    out_dir = tmp_path / "out"
    report = restore_files([folder, loose / "a.png"], out_dir, model, tile=TILE, overlap=OVERLAP)
    assert report.ok
    written = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    assert written == [
        "a.jpg.png",
        "a.png-1.png",
        "a.png.png",
        "other/a.png",
        "sub/b.png",
        "sub/deeper/c.png",
    ]
    outputs = {src: out for src, out in report.restored}
    assert outputs[folder / "a.png"] == out_dir / "a.png.png"
    assert outputs[loose / "a.png"] == out_dir / "a.png-1.png"


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
