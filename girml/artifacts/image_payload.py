"""What a registered ``gir-restorer`` version takes and answers, checked without MLflow.

:mod:`.restorer_model`, the code MLflow runs to serve a version, hands every input to
:func:`parse_input` and answers encoded inputs with :func:`encode_png_base64`. Two kinds of input:

- **arrays**: (N, 3, H, W) numbers in [0, 1] (numpy, a CPU tensor, nested lists, the JSON
  ``{"inputs": [...]}`` of ``mlflow models serve``); the answer is the restored float32 array,
  as before encoded images were accepted.
- **encoded images**: PNG or JPEG (any format :func:`girml.core.imageio.decode_image` reads), one or
  several, as raw ``bytes`` or as base64 text (a ``data:image/...;base64,`` URL too): a
  ``bytes`` or ``str``, a list or 1-D array of them, or a dict or pandas DataFrame whose one
  column is :data:`IMAGE_COLUMN` (``dataframe_split``, ``dataframe_records``,
  ``{"inputs": {"image": [...]}}`` or ``{"inputs": [...]}`` over HTTP); the answer is one
  base64 PNG per image, in order, restored whole.

Anything else is refused with :class:`InputError`: one short line that says what is wrong and
how to fix it, and never quotes the data (a wrong layout gives the shape, a wrong range the
extreme values, a bad image its position: ``image 2``, counting from 0).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from girml.core.imageio import DEFAULT_MAX_PIXELS, ImageReadError, decode_image

# the column (or dict key) that holds encoded images, in and out
IMAGE_COLUMN = "image"
# how far array values may stray outside [0, 1]: half an 8-bit step (resampling overshoot), far
# below the 0-255 scale that this check is for
RANGE_SLACK = 0.5 / 255
# a reason quoted from the image decoder is cut to this many characters
_REASON_CHARS = 80
_NAME_CHARS = 20
_ARRAY_FORM = "(N, 3, H, W) float32 in [0, 1]"
_ENCODED = (bytes, bytearray, memoryview, str)


class InputError(ValueError):
    """An input the registered model refuses: one short line that never quotes the data."""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_input(
    model_input: Any, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray | list[np.ndarray]:
    """Check the registered model's input and turn it into pixels.

    Args:
        model_input: an array batch or encoded images (see the module docstring).
        max_pixels: an encoded image with more pixels is refused from its header, undecoded.

    Returns:
        For an array: the batch as a float32 (N, 3, H, W) array, values as given (cast only).
        For encoded images: one (H, W, 3) uint8 array per image, in order.

    Raises:
        InputError: not one of the accepted forms, a wrong layout, dtype or range, or an image
            that is not valid base64 or does not decode.
    """
    items = _encoded_items(model_input)
    if items is None:
        return _array_batch(model_input)
    if not items:
        raise InputError("no images in the input")
    return [_decode(item, index, max_pixels) for index, item in enumerate(items)]


def _encoded_items(model_input: Any) -> list[Any] | None:
    """The encoded images in ``model_input`` (not yet decoded), or None for an array input."""
    if isinstance(model_input, _ENCODED):
        return [model_input]
    columns = getattr(model_input, "columns", None)
    if columns is not None and not isinstance(model_input, np.ndarray):  # a pandas DataFrame
        _check_keys([str(name) for name in columns], "columns")
        return list(model_input[IMAGE_COLUMN])
    if isinstance(model_input, Mapping):
        _check_keys([str(name) for name in model_input], "keys")
        value = model_input[IMAGE_COLUMN]
        if isinstance(value, _ENCODED):
            return [value]
        if isinstance(value, np.ndarray):
            return _one_axis(value)
        if isinstance(value, list | tuple):
            return list(value)
        raise InputError(f"{IMAGE_COLUMN!r} must hold a list of images, got {type(value).__name__}")
    if isinstance(model_input, np.ndarray) and model_input.dtype.kind in "US":
        return _one_axis(model_input)
    if isinstance(model_input, np.ndarray) and model_input.dtype.kind == "O":
        flat = model_input.ravel()
        if flat.size and all(isinstance(item, _ENCODED) for item in flat):
            return _one_axis(model_input)
    encoded = isinstance(model_input, Sequence) and model_input
    if encoded and all(isinstance(item, _ENCODED) for item in model_input):
        return list(model_input)
    return None


def _check_keys(names: list[str], what: str) -> None:
    if names != [IMAGE_COLUMN]:
        got = ", ".join(repr(_clip(name, _NAME_CHARS)) for name in names[:3])
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        raise InputError(
            f"encoded images go in one column {IMAGE_COLUMN!r} (PNG/JPEG as base64), "
            f"got {what} {got or 'none'}{more}"
        )


def _one_axis(values: np.ndarray) -> list[Any]:
    if values.ndim != 1:
        raise InputError(f"encoded images must be a flat list, got shape {values.shape}")
    return list(values)


def _decode(item: Any, index: int, max_pixels: int) -> np.ndarray:
    """One encoded image (bytes, or base64 text) -> (H, W, 3) uint8."""
    if isinstance(item, str):
        data = _from_base64(item, index)
    elif isinstance(item, bytes | bytearray | memoryview):
        data = bytes(item)
    else:
        raise InputError(
            f"image {index}: expected PNG/JPEG bytes or base64 text, got {type(item).__name__}"
        )
    try:
        return decode_image(data, name=f"image {index}", max_pixels=max_pixels)
    except ImageReadError as exc:
        raise InputError(f"image {index}: {_clip(exc.reason, _REASON_CHARS)}") from None


def _from_base64(text: str, index: int) -> bytes:
    text = text.strip()
    if text.startswith("data:"):  # a data URL: data:image/png;base64,<data>
        header, comma, text = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise InputError(f"image {index}: a data URL must be base64 (data:image/...;base64,)")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except ValueError:  # binascii.Error, or text that is not ASCII
        raise InputError(f"image {index}: not valid base64 (encode the file's bytes)") from None


def _array_batch(model_input: Any) -> np.ndarray:
    """Check an array input: numbers, (N, 3, H, W), finite, in [0, 1]; cast to float32."""
    try:
        batch = np.asarray(model_input)
    except (ValueError, TypeError, RuntimeError):  # ragged lists, a tensor that needs grad
        raise InputError(f"an array input must be a rectangular array, {_ARRAY_FORM}") from None
    if batch.dtype.kind not in "fiu":
        raise InputError(
            f"an array input must hold numbers, {_ARRAY_FORM}, got dtype {batch.dtype}; "
            f"send encoded images in a column {IMAGE_COLUMN!r}"
        )
    _check_layout(batch.shape)
    if batch.dtype.kind == "f" and not np.isfinite(batch).all():
        raise InputError("array values must be finite numbers in [0, 1], got NaN or infinity")
    low, high = float(batch.min()), float(batch.max())
    if low < -RANGE_SLACK or high > 1 + RANGE_SLACK:
        hint = " (8-bit values? divide by 255)" if 1.5 < high <= 255 else ""
        raise InputError(f"array values must be in [0, 1], got {low:.4g} to {high:.4g}{hint}")
    return batch.astype(np.float32, copy=False)


def _check_layout(shape: tuple[int, ...]) -> None:
    if len(shape) == 4 and shape[1] == 3 and min(shape) > 0:
        return
    fix = ""
    if len(shape) == 3 and shape[2] == 3:
        fix = " (channels last: use x.transpose(2, 0, 1)[None])"
    elif len(shape) == 4 and shape[3] == 3:
        fix = " (channels last: use x.transpose(0, 3, 1, 2))"
    elif len(shape) == 3 and shape[0] == 3:
        fix = " (add a batch axis: x[None])"
    elif len(shape) == 4 and shape[1] == 3:
        fix = " (an empty batch or image)"
    raise InputError(f"an array input must be {_ARRAY_FORM}, got shape {shape}{fix}")


def encode_png_base64(pixels: np.ndarray) -> str:
    """(H, W, 3) uint8 -> the PNG file's bytes as base64 text (the encoded-input answer)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
