"""What the registered model takes (girml/artifacts/image_payload.py): arrays pass unchanged,
encoded images in every form MLflow hands over decode to their pixels, and every refusal is one
short line that names the problem and never quotes the data."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from girml.artifacts.image_payload import (
    IMAGE_COLUMN,
    InputError,
    encode_png_base64,
    parse_input,
)

RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 256, (12, 20, 3), dtype=np.uint8)  # H=12, W=20
# a value no message may contain: refusals must not quote the data
MARK = 0.123456789


def png_bytes(pixels: np.ndarray = PIXELS) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def refusal(model_input: object, **kwargs: object) -> str:
    """The message of the InputError that ``parse_input`` raises; checked short and one line."""
    with pytest.raises(InputError) as caught:
        parse_input(model_input, **kwargs)
    message = str(caught.value)
    assert len(message) < 200 and "\n" not in message
    assert "0.1234" not in message and "iVBOR" not in message  # neither MARK nor a PNG's base64
    return message


def batch(shape: tuple[int, ...] = (2, 3, 5, 4), dtype: type = np.float32) -> np.ndarray:
    out = RNG.random(shape).astype(dtype)
    if out.size:
        out.flat[0] = MARK
    return out


# --- arrays ---


def test_a_float32_batch_passes_unchanged() -> None:
    x = batch()
    out = parse_input(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize(
    "form",
    [
        lambda x: x.astype(np.float64),  # JSON numbers arrive as float64
        lambda x: x.tolist(),  # nested lists
        lambda x: torch.from_numpy(x),  # a CPU tensor
    ],
)
def test_other_array_forms_give_the_same_float32_batch(form) -> None:
    x = batch()
    np.testing.assert_array_equal(parse_input(form(x)), x)


def test_integer_zeros_and_ones_are_values_in_range() -> None:
    """JSON whole numbers (0, 1) parse as integers."""
    out = parse_input(np.ones((1, 3, 2, 2), dtype=np.int64))
    assert out.dtype == np.float32 and out.min() == 1


def test_half_an_8_bit_step_outside_the_range_is_tolerated() -> None:
    x = batch()
    x.flat[1], x.flat[2] = -0.4 / 255, 1 + 0.4 / 255
    assert parse_input(x).shape == x.shape
    x.flat[2] = 1 + 0.6 / 255
    assert refusal(x).startswith("array values must be in [0, 1]")


@pytest.mark.parametrize(
    ("shape", "hint"),
    [
        ((5, 4, 3), r"\(5, 4, 3\) \(channels last: use x\.transpose\(2, 0, 1\)\[None\]\)"),
        ((1, 5, 4, 3), r"channels last: use x\.transpose\(0, 3, 1, 2\)"),
        ((3, 5, 4), r"add a batch axis"),
        ((0, 3, 5, 4), r"empty"),
        ((1, 1, 5, 4), r"got shape \(1, 1, 5, 4\)$"),
        ((7,), r"got shape \(7,\)$"),
    ],
)
def test_a_wrong_layout_names_the_shape_and_the_fix(shape: tuple[int, ...], hint: str) -> None:
    message = refusal(batch(shape))
    assert message.startswith("an array input must be (N, 3, H, W) float32 in [0, 1]")
    assert re.search(hint, message), message


def test_8_bit_values_are_refused_with_the_fix() -> None:
    x = np.round(batch() * 255)
    x.flat[0] = 255
    message = refusal(x)
    assert message.startswith("array values must be in [0, 1], got 0 to 255")
    assert "divide by 255" in message
    assert "divide" in refusal(x.astype(np.uint8))


def test_negative_values_are_refused() -> None:
    x = batch()
    x.flat[3] = -0.5
    assert refusal(x).startswith("array values must be in [0, 1], got -0.5 to 0.")


def test_nan_is_refused() -> None:
    x = batch()
    x.flat[3] = np.nan
    assert "NaN or infinity" in refusal(x)


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        (np.zeros((1, 3, 2, 2), dtype=bool), "bool"),
        (np.zeros((1, 3, 2, 2), dtype=complex), "complex128"),
        (np.array([[MARK, "a"]], dtype=object), "object"),
    ],
)
def test_a_wrong_dtype_is_named(value: np.ndarray, dtype: str) -> None:
    assert f"got dtype {dtype}" in refusal(value)


def test_ragged_lists_are_refused() -> None:
    assert "rectangular" in refusal([[[[MARK, 0.5]], [[0.5]]]])


# --- encoded images ---


def test_png_bytes_decode_to_their_pixels() -> None:
    out = parse_input(png_bytes())
    assert isinstance(out, list) and len(out) == 1
    np.testing.assert_array_equal(out[0], PIXELS)


@pytest.mark.parametrize(
    "form",
    [
        lambda s: s,  # one base64 string
        lambda s: [s, s],
        lambda s: np.array([s, s]),  # {"inputs": [...]} over HTTP
        lambda s: {IMAGE_COLUMN: [s, s]},
        lambda s: {IMAGE_COLUMN: np.array([s])},  # {"inputs": {"image": [...]}}, "instances"
        lambda s: pd.DataFrame({IMAGE_COLUMN: [s, s]}),  # dataframe_split / dataframe_records
        lambda s: f"data:image/png;base64,{s}",
        lambda s: "\n".join(s[i : i + 76] for i in range(0, len(s), 76)) + "\n",  # `base64`
    ],
)
def test_every_encoded_form_decodes(form) -> None:
    out = parse_input(form(b64(png_bytes())))
    assert isinstance(out, list) and len(out) in (1, 2)
    for pixels in out:
        np.testing.assert_array_equal(pixels, PIXELS)


def test_a_list_of_bytes_and_a_jpeg_decode() -> None:
    smooth = np.broadcast_to(np.arange(20, dtype=np.uint8)[None, :, None] * 12, (12, 20, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(smooth)).save(buffer, format="JPEG", quality=95)
    out = parse_input([png_bytes(), buffer.getvalue()])
    assert [p.shape for p in out] == [(12, 20, 3), (12, 20, 3)]
    assert np.abs(out[1].astype(int) - smooth).mean() < 3  # lossy, but the same picture


def test_the_answer_is_a_base64_png_of_the_pixels() -> None:
    text = encode_png_base64(PIXELS)
    with Image.open(io.BytesIO(base64.b64decode(text))) as img:
        assert img.format == "PNG" and img.size == (20, 12)
        np.testing.assert_array_equal(np.asarray(img), PIXELS)


def test_not_base64_is_refused_by_position() -> None:
    good = b64(png_bytes())
    assert refusal([good, "not base64 at all!"]) == (
        "image 1: not valid base64 (encode the file's bytes)"
    )
    assert "not valid base64" in refusal("é" * 8)


def test_what_does_not_decode_is_refused_without_the_data() -> None:
    data = png_bytes()
    assert refusal(b64(b"GIF89a" + b"\x00" * 300)).startswith("image 0: ")
    assert refusal(data[:60]).startswith("image 0: ")  # truncated
    assert refusal(b64(b"x" * 500)) == "image 0: not an image (unrecognized format)"


def test_too_many_pixels_are_refused_from_the_header() -> None:
    message = refusal(png_bytes(), max_pixels=100)
    assert message.startswith("image 0: decompression bomb: 20x12 = 240 pixels")


@pytest.mark.parametrize(
    ("model_input", "got"),
    [
        (pd.DataFrame({"img": ["x"]}), "got columns 'img'"),
        (pd.DataFrame({IMAGE_COLUMN: ["x"], "b": ["y"]}), "got columns 'image', 'b'"),
        ({"a": 1, "b": 2, "c": 3, "d": 4}, "got keys 'a', 'b', 'c' and 1 more"),
    ],
)
def test_encoded_images_go_in_one_image_column(model_input: object, got: str) -> None:
    message = refusal(model_input)
    assert message.startswith("encoded images go in one column 'image'") and got in message


def test_other_refusals() -> None:
    assert refusal(pd.DataFrame({IMAGE_COLUMN: []})) == "no images in the input"
    assert "must hold a list" in refusal({IMAGE_COLUMN: 3})
    assert "got int" in refusal({IMAGE_COLUMN: [3]})
    assert "flat list" in refusal(np.array([["a", "b"]]))
