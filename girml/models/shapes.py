"""Bounds before allocation: a model's size and its weights' shapes, checked before either exists.

A model folder's ``config.yaml`` decides how much memory :func:`girml.models.build_model`
allocates, and its weights file how large each tensor is. Both are checked first, so a
hand-edited or downloaded folder cannot make girml allocate gigabytes before it fails:

- the ``model`` section's bounds (:mod:`girml.config_model`), by validation;
- :func:`planned_shapes`: the network built on PyTorch's ``meta`` device (shapes, no memory),
  at most :data:`MAX_PARAMETERS` parameters;
- :func:`weight_shapes`: the shapes a weights file declares, read without reading its tensors:
  a ``.safetensors`` header only (:func:`safetensors_shapes`), or a ``weights.pt`` mapped into
  memory with torch's weights-only unpickler (:func:`read_torch_weights`), which refuses any
  pickled object that is not a tensor (:class:`~girml.core.errors.UnsafeModelError`);
- :func:`check_shapes`: the file's tensors against the planned ones, naming the first that
  differs.
"""

from __future__ import annotations

import json
import math
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from girml.config import ConfigError, ModelConfig
from girml.core.errors import UnsafeModelError
from girml.models import build_model

# 1.2 GB of float32; NAFNet-width64 with the paper's 4 levels and 12 middle blocks has 129 M
MAX_PARAMETERS = 300_000_000
# the limit of the safetensors library itself (safetensors/src/tensor.rs: MAX_HEADER_SIZE)
MAX_HEADER_BYTES = 100_000_000
# bytes per element of the safetensors dtypes
_ITEM_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")

Shapes = dict[str, tuple[int, ...]]


def planned_shapes(model_cfg: ModelConfig, source: str | Path) -> Shapes:
    """The ``state_dict`` shapes that ``build_model(model_cfg)`` would allocate; nothing is.

    Args:
        model_cfg: a validated (so bounded) model config.
        source: what to name in the error, e.g. the ``config.yaml`` it came from.

    Raises:
        ConfigError: more than :data:`MAX_PARAMETERS` parameters (one line naming ``source``).
        KeyError: an unknown architecture (the message lists the registered ones).
    """
    with torch.device("meta"):
        model = build_model(model_cfg)
    shapes = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    count = sum(math.prod(shape) for shape in shapes.values())
    if count > MAX_PARAMETERS:
        raise ConfigError(
            f"{source}: model: {count:,} parameters ({4 * count / 1e9:.1f} GB of float32), more "
            f"than the {MAX_PARAMETERS:,} girml builds; lower model.width, model.enc_blocks or "
            "model.middle_blocks"
        )
    return shapes


def safetensors_shapes(path: Path) -> Shapes:
    """The tensor shapes that a ``.safetensors`` file's header declares; its tensors are not read.

    The format: an 8-byte little-endian header length, a JSON header
    ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``, then the
    data. Every tensor's byte range must lie within the file and hold exactly ``prod(shape)``
    elements of its dtype, so the shapes cannot claim more memory than the file has bytes.

    Raises:
        ValueError: an unreadable or inconsistent header (one line naming the file).
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            prefix = fh.read(8)
            length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if not 0 < length <= min(MAX_HEADER_BYTES, size - 8):
                raise ValueError(f"header length {length} does not fit a {size}-byte file")
            header = json.loads(fh.read(length))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: not a safetensors file ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: not a safetensors file (its header is no JSON object)")
    data_bytes = size - 8 - length
    shapes: Shapes = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        shapes[name] = _declared_shape(path, name, info, data_bytes)
    return shapes


def _declared_shape(path: Path, name: str, info: object, data_bytes: int) -> tuple[int, ...]:
    """One header entry's shape, once its dtype, shape and byte range agree with the file."""
    dtype = info.get("dtype") if isinstance(info, dict) else None
    shape = info.get("shape") if isinstance(info, dict) else None
    offsets = info.get("data_offsets") if isinstance(info, dict) else None
    valid = (
        dtype in _ITEM_BYTES
        and isinstance(shape, list)
        and all(type(dim) is int and dim >= 0 for dim in shape)
        and isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(offset) is int for offset in offsets)
    )
    if not valid:
        raise ValueError(f"{path}: tensor {name!r} has a malformed header entry: {info!r:.200}")
    begin, end = offsets
    needed = math.prod(shape) * _ITEM_BYTES[dtype]
    if not 0 <= begin <= end <= data_bytes or end - begin != needed:
        raise ValueError(
            f"{path}: tensor {name!r} declares shape {shape} of {dtype} ({needed:,} bytes) at "
            f"bytes {begin}-{end} of {data_bytes:,}: the header does not fit the file"
        )
    return tuple(shape)


def read_torch_weights(path: Path) -> dict[str, torch.Tensor]:
    """A ``weights.pt`` state dict, memory-mapped (no tensor is read yet), never unpickling code.

    ``torch.load(weights_only=True)`` admits tensors and plain containers only; a file whose
    pickle names any other Python object (a pickled module, a ``__reduce__`` payload) is refused
    before anything in it runs.

    Raises:
        UnsafeModelError: the file holds pickled Python objects (names the folder).
        ValueError: the file is corrupt or holds no ``{name: tensor}`` mapping (names the file).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:  # the weights-only unpickler refused an object
        found = _GLOBAL.search(str(exc))
        named = f" (the first it would call: {found[1]})" if found else ""
        raise UnsafeModelError(
            str(path.parent),
            f"a model folder whose {path.name} holds pickled Python objects{named}, not only "
            "tensors",
        ) from None
    except (RuntimeError, OSError, EOFError, TypeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: corrupt ({reason})") from None
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise ValueError(f"{path}: corrupt (not a mapping of names to tensors)")
    return state


def weight_shapes(path: Path) -> Shapes:
    """The shapes a weights file declares: :func:`safetensors_shapes` for ``.safetensors``,
    else :func:`read_torch_weights` (mapped, not read)."""
    if path.suffix == ".safetensors":
        return safetensors_shapes(path)
    return {name: tuple(tensor.shape) for name, tensor in read_torch_weights(path).items()}


def check_shapes(
    found: Mapping[str, Sequence[int]], planned: Shapes, weights: Path, config_path: Path
) -> None:
    """Refuse weights whose tensors are not exactly those the config builds.

    Raises:
        ValueError: one line naming ``weights``, ``config_path`` and the first tensor that is
            missing, extra or of another shape.
    """
    reason = None
    missing = sorted(set(planned) - set(found))
    extra = sorted(set(found) - set(planned))
    if missing:
        reason = f"no tensor {_some(missing)}"
    elif extra:
        reason = f"tensor {_some(extra)} not in the model the config builds"
    else:
        for name, shape in planned.items():
            if tuple(found[name]) != shape:
                reason = (
                    f"tensor {name!r} is {list(found[name])} in the file, {list(shape)} in the "
                    "model the config builds"
                )
                break
    if reason is not None:
        raise ValueError(f"{weights}: corrupt or does not match {config_path} ({reason})")


def _some(names: list[str]) -> str:
    """``'a'`` or ``'a' (and 3 more)``."""
    return repr(names[0]) + (f" (and {len(names) - 1} more)" if len(names) > 1 else "")
