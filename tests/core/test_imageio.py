"""Image files in and out (girml.core.imageio): the one conversion rule, atomic writes, clear
errors."""

from __future__ import annotations

import base64
import errno
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from girml.core.imageio import (
    ImageReadError,
    ImageTooLarge,
    atomic_path,
    decode_image,
    png_data_uri,
    read_image,
    swap_dir,
    to_tensor,
    to_uint8,
    write_png,
    write_text,
)
from tests.factories import textured_image, write_png16


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


def test_16_bit_colour_pngs_round_like_grey(tmp_path: Path) -> None:
    """Before: Pillow's 8-bit view of 16-bit RGB kept the high byte (v >> 8), not round(v / 257)."""
    k = np.arange(256, dtype=np.int64)
    # just below and just above each rounding boundary, and both ends
    values = np.concatenate([257 * k + 128, np.minimum(257 * k + 129, 65535), [0, 65535]])
    rgb = np.resize(values, (6, 130, 3)).astype(np.uint16)
    expected = np.round(rgb / 257).astype(np.uint8)
    assert (expected != (rgb >> 8)).mean() > 0.4  # truncation would miss many of them
    assert np.array_equal(read_image(write_png16(tmp_path / "rgb.png", rgb)), expected)

    opaque = np.full((*rgb.shape[:2], 1), 65535, np.uint16)
    rgba = write_png16(tmp_path / "rgba.png", np.concatenate([rgb, opaque], axis=2))
    assert np.array_equal(read_image(rgba), expected)
    grey = np.concatenate([rgb[..., :1], opaque], axis=2)  # 16-bit grey + alpha
    la = read_image(write_png16(tmp_path / "la.png", grey))
    assert np.array_equal(la, np.repeat(expected[..., :1], 3, axis=2))


def test_16_bit_rgb_transparency_and_orientation(tmp_path: Path) -> None:
    rgb = np.full((4, 6, 3), 2700, np.uint16)  # round(2700 / 257) = 11
    rgb[0, 0] = 2699  # the same 8-bit value, another 16-bit one: stays opaque
    rgb[1, 1] = (2700, 2700, 2701)  # rounds to 11 too
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: displayed rotated 90 degrees clockwise
    tags = {b"tRNS": np.array([2700, 2700, 2700], ">u2").tobytes(), b"eXIf": exif.tobytes()[6:]}
    image = read_image(write_png16(tmp_path / "keyed.png", rgb, tags))
    assert image.shape == (6, 4, 3)  # upright
    upright = np.rot90(rgb, k=-1)
    white = (upright == 2700).all(axis=2)  # exactly the key colour: transparent over white
    assert white.sum() == 4 * 6 - 2
    assert (image[white] == 255).all() and (image[~white] == 11).all()


def test_the_byte_cap_is_checked_before_reading(tmp_path: Path) -> None:
    """Before: a 40 GB sparse .jpg was read whole (read_bytes), ending in a MemoryError."""
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as fh:
        fh.truncate(40 << 30)  # sparse: no disk used, nothing to read
    with pytest.raises(ImageTooLarge) as info:
        read_image(huge)
    assert (
        info.value.reason == f"file too large: {40 << 30} bytes exceeds max_file_bytes=1000000000"
    )
    assert info.value.limit == "max_file_bytes" and info.value.path == str(huge)

    small = tmp_path / "small.png"
    write_png(small, textured_image(8, 30, 30))
    size = small.stat().st_size
    with pytest.raises(ImageTooLarge, match=f"{size} bytes exceeds max_file_bytes={size - 1}"):
        read_image(small, max_bytes=size - 1)
    assert read_image(small, max_bytes=size).shape == (30, 30, 3)


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ImageReadError, match="not a regular file"):
        read_image(tmp_path / "pipe.png")


def test_max_pixels_is_the_only_pixel_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: Pillow's own cap (89 MP, an error above 179 MP) refused what max_pixels allowed."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 2000 pixels are 20x Pillow's cap
    write_png(tmp_path / "a.png", textured_image(9, 40, 50))
    assert read_image(tmp_path / "a.png", max_pixels=2000).shape == (40, 50, 3)
    assert Image.MAX_IMAGE_PIXELS == 100  # put back
    with pytest.raises(ImageTooLarge, match="exceeds max_pixels=1999") as info:
        read_image(tmp_path / "a.png", max_pixels=1999)
    assert info.value.limit == "max_pixels"


# --------------------------------------------------------------------------- writing


def test_temporary_names_are_short_and_errors_name_the_target(tmp_path: Path) -> None:
    """Before: the temporary name was the target's plus 13 characters: a 246-character name
    that fits the file system could not be written."""
    longest = tmp_path / ("n" * 251 + ".png")  # 255 bytes: the usual limit
    write_png(longest, textured_image(10, 8, 8))
    assert _names(tmp_path) == [longest.name]
    with pytest.raises(OSError) as info:
        write_png(tmp_path / ("n" * 252 + ".png"), textured_image(10, 8, 8))
    assert info.value.errno == errno.ENAMETOOLONG
    with pytest.raises(OSError) as info, atomic_path(tmp_path / "full.png"):
        raise OSError(errno.ENOSPC, "No space left on device")  # a write names no file
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "full.png")
    assert _names(tmp_path) == [longest.name]


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


def test_png_data_uri_round_trips() -> None:
    uri = png_data_uri(b"\x89PNG\x00\xff")
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == b"\x89PNG\x00\xff"
