"""Image files in and out (girml.imageio): the one conversion rule, atomic writes, clear errors."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from girml.imageio import (
    ImageReadError,
    atomic_path,
    decode_image,
    read_image,
    swap_dir,
    to_tensor,
    to_uint8,
    write_png,
    write_text,
)
from tests.factories import textured_image


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- reading


def test_png_round_trip_is_exact(tmp_path: Path) -> None:
    image = textured_image(0, 37, 53)
    write_png(tmp_path / "a.png", image)
    back = read_image(tmp_path / "a.png")
    assert back.dtype == np.uint8 and back.shape == (37, 53, 3)
    np.testing.assert_array_equal(back, image)


def test_16_bit_images_are_scaled_to_8_bits_by_257(tmp_path: Path) -> None:
    values = np.array([[0, 257, 33000, 65535]], dtype=np.uint16)  # 33000 / 257 = 128.4
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")  # really 16 bits on disk
    back = read_image(tmp_path / "deep.png")
    assert back.shape == (1, 4, 3)
    np.testing.assert_array_equal(back[..., 0], [[0, 1, 128, 255]])
    assert (back == back[..., :1]).all()  # gray: the same value in every channel


def test_32_bit_images_above_16_bits_are_scaled_to_8_bits(tmp_path: Path) -> None:
    step = 16843009  # (2**32 - 1) / 255: one 8-bit level of a 32-bit value
    values = np.array([[0, step * 100, step * 127]], dtype=np.int32)
    Image.fromarray(values, mode="I").save(tmp_path / "deep.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "deep.tif")[..., 0], [[0, 100, 127]])


def test_gray_palette_and_alpha_end_as_rgb(tmp_path: Path) -> None:
    rgb = textured_image(1, 16, 24)
    gray = Image.fromarray(rgb).convert("L")
    gray.save(tmp_path / "gray.png")
    np.testing.assert_array_equal(read_image(tmp_path / "gray.png"), np.dstack([gray] * 3))

    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE)
    palette.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(read_image(tmp_path / "palette.png"), palette.convert("RGB"))

    alpha = np.zeros((16, 24), dtype=np.uint8)
    alpha[:, 12:] = 255  # left half transparent, right half opaque
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "alpha.png")
    back = read_image(tmp_path / "alpha.png")
    assert (back[:, :12] == 255).all()  # composited over white
    np.testing.assert_array_equal(back[:, 12:], rgb[:, 12:])


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, displayed rotated 90 degrees clockwise
    Image.fromarray(textured_image(2, 20, 30)).save(tmp_path / "r.jpg", quality=95, exif=exif)
    assert read_image(tmp_path / "r.jpg").shape == (30, 20, 3)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda png: b"", "empty file"),
        (lambda png: b"not an image at all", "not an image"),
        (lambda png: png[: len(png) // 2], "truncated file"),
    ],
    ids=["empty", "text", "truncated"],
)
def test_a_bad_file_is_an_error_that_names_it(
    tmp_path: Path, spoil: Callable[[bytes], bytes], reason: str
) -> None:
    path = tmp_path / "bad.png"
    write_png(path, textured_image(3, 64, 64))
    path.write_bytes(spoil(path.read_bytes()))
    with pytest.raises(ImageReadError, match=reason) as info:
        read_image(path)
    assert info.value.path == str(path) and str(info.value).startswith(f"{path}: ")
    assert isinstance(info.value, ValueError)


def test_a_missing_file_and_a_bomb_are_errors_that_name_them(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="unreadable file") as info:
        read_image(tmp_path / "nope.png")
    assert info.value.path == str(tmp_path / "nope.png")

    write_png(tmp_path / "big.png", textured_image(4, 40, 50))
    with pytest.raises(ImageReadError, match="decompression bomb: 50x40 = 2000 pixels") as info:
        read_image(tmp_path / "big.png", max_pixels=1999)
    assert info.value.path == str(tmp_path / "big.png")
    assert read_image(tmp_path / "big.png", max_pixels=2000).shape == (40, 50, 3)
    with pytest.raises(ImageReadError, match=r"^upload: empty file$"):
        decode_image(b"", name="upload")


# --------------------------------------------------------------------------- writing


def test_write_png_refuses_what_it_cannot_store_and_writes_nothing(tmp_path: Path) -> None:
    image = textured_image(5, 8, 8)
    for bad in (image.astype(np.uint16), image[..., 0], image[..., :2]):
        with pytest.raises(ValueError, match=re.escape(f"got {bad.dtype} {bad.shape}")):
            write_png(tmp_path / "x.png", bad)
    assert _names(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path: Path) -> None:
    target = tmp_path / "out" / "a.png"
    write_png(target, textured_image(6, 8, 8))  # creates the folder
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(before[:10])
        raise RuntimeError("disk full")
    assert target.read_bytes() == before
    assert _names(target.parent) == ["a.png"]  # no temporary file left beside it


def test_written_files_follow_the_umask_and_text_is_utf8(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_text(tmp_path / "t.txt", "gain +1.2 dB, σ = 15\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "t.txt").stat().st_mode) == 0o640  # not mkstemp's 0600
    assert (tmp_path / "t.txt").read_bytes() == "gain +1.2 dB, σ = 15\n".encode()
    assert _names(tmp_path) == ["t.txt"]


def test_swap_dir_replaces_a_folder_and_puts_it_back_on_failure(tmp_path: Path) -> None:
    target, new = tmp_path / "bench", tmp_path / "new"
    new.mkdir()
    (new / "v1").write_text("1")
    swap_dir(new, target)  # no target yet: a plain rename
    assert _names(target) == ["v1"] and not new.exists()

    new.mkdir()
    (new / "v2").write_text("2")
    swap_dir(new, target)
    assert _names(target) == ["v2"] and _names(tmp_path) == ["bench"]  # the old one is gone

    with pytest.raises(OSError):
        swap_dir(tmp_path / "missing", target)
    assert _names(target) == ["v2"] and _names(tmp_path) == ["bench"]  # put back, nothing left


# --------------------------------------------------------------------------- tensors


def test_tensor_round_trip_shapes_range_and_rounding() -> None:
    image = textured_image(7, 5, 6)
    tensor = to_tensor(image)
    assert tensor.shape == (1, 3, 5, 6) and tensor.dtype == torch.float32
    assert tensor.min() >= 0.0 and tensor.max() <= 1.0
    np.testing.assert_array_equal(to_uint8(tensor), image)
    np.testing.assert_array_equal(to_uint8(tensor[0]), image)

    odd = torch.tensor([-0.5, 0.5 / 255, 1.6 / 255, 2.0]).reshape(1, 1, 1, 4).repeat(1, 3, 1, 1)
    assert to_uint8(odd)[0, :, 0].tolist() == [0, 0, 2, 255]  # clipped and rounded
    with pytest.raises(ValueError, match=r"batch of one, got shape \(2, 3, 5, 6\)"):
        to_uint8(tensor.repeat(2, 1, 1, 1))
