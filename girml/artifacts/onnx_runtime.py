"""An exported ONNX model run by onnxruntime as a girml restorer, through girml's own tiling.

``girml export --format onnx`` (:mod:`girml.artifacts.onnx_export`) writes one graph with
dynamic batch, height and width:

- inputs: ``image`` (N,3,H,W) float32 in [0,1], any H and W of at least
  ``girml.size_multiple`` (padded inside by reflection to a multiple of it and cropped back;
  girml pads smaller images itself first); and, each with a default so that ``image`` alone
  restores a photo whole: ``use_photo_stats`` (bool scalar, default false),
  for each pooling layer ``k`` ``photo_mean_k`` and ``photo_max_k`` (1,C,1,1) float32 (the
  photo's statistics, used in place of the input's own when ``use_photo_stats`` is true) and
  ``regions`` (N,4) int64 (each tile's owned rows and columns ``y0, y1, x0, x1``, input pixels;
  default: :data:`WHOLE_REGION`);
- outputs: ``restored`` (N,3,H,W) float32 (not clamped), and for each pooling layer
  ``owned_sum_k``, ``owned_max_k`` (N,C) float32 and ``owned_count_k`` (N,) int64: the
  layer's input summed, maximised and counted over each tile's owned region.

So the pooling layers (NAFNet's channel attention, the prompt weights:
:mod:`girml.core.pooling`) can pool over the whole photo while the photo runs tile by tile.
:class:`OnnxRestorer` is an ``nn.Module`` with one stand-in per pooling layer: inside
:func:`girml.core.pooling.tile_pooling` it feeds the photo's statistics and records the
tiles' sums into the same :class:`~girml.core.pooling.PhotoStats`, so
:func:`girml.core.inference.restore_tiled` (and the self-ensemble, view by view) drives it
exactly as it drives the torch network. onnxruntime is imported only when a model is loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from girml.core.inference import crop_to, pad_to_multiple
from girml.core.pooling import current_tile_batch

ONNX_SUFFIX = ".onnx"
FORMAT = "girml-onnx/1"
IMAGE, RESTORED, REGIONS, USE_PHOTO = "image", "restored", "regions", "use_photo_stats"
# the default owned region, y0, y1, x0, x1: every row and column of the input
WHOLE_REGION = (0, 2**31 - 1, 0, 2**31 - 1)
# metadata_props keys (girml.* : JSON or plain text)
META_FORMAT = "girml.format"
META_SIZE_MULTIPLE = "girml.size_multiple"
META_POOLING = "girml.pooling_layers"  # JSON list of {"name": module path, "channels": C}
META_SOURCE = "girml.source"
META_ARCHITECTURE = "girml.architecture"
META_CONFIG = "girml.model_config"  # JSON of the model: section
META_WEIGHTS = "girml.weights_sha256"


def photo_inputs(k: int) -> tuple[str, str]:
    """The names of pooling layer ``k``'s photo mean and maximum inputs."""
    return f"photo_mean_{k}", f"photo_max_{k}"


def owned_outputs(k: int) -> tuple[str, str, str]:
    """The names of pooling layer ``k``'s owned sum, maximum and pixel count outputs."""
    return f"owned_sum_{k}", f"owned_max_{k}", f"owned_count_{k}"


def is_onnx_file(path: str | os.PathLike) -> bool:
    """True when ``path`` names an ``.onnx`` file (it need not exist)."""
    return Path(path).suffix.lower() == ONNX_SUFFIX


@dataclass(frozen=True)
class OnnxMetadata:
    """What girml reads from an exported file's ``metadata_props``.

    Attributes:
        size_multiple: H and W the graph works on are padded to a multiple of it.
        pooling: (module path, channels) of each pooling layer, in input/output order.
        props: every ``metadata_props`` entry, as written.
    """

    size_multiple: int
    pooling: tuple[tuple[str, int], ...]
    props: dict[str, str]


class PoolingSlot(nn.Module):
    """Stand-in for one pooling layer of the exported network: the key its statistics have in a
    :class:`~girml.core.pooling.PhotoStats`, and what :func:`~girml.core.pooling.pools_globally`
    finds."""

    photo_pooling = True

    def __init__(self, name: str, channels: int) -> None:
        super().__init__()
        self.name = name
        self.channels = channels


class OnnxRestorer(nn.Module):
    """An exported girml model run by an onnxruntime session: (N,3,H,W) -> (N,3,H,W).

    Holds no parameters. Under :func:`girml.core.pooling.tile_pooling` its pooling layers use
    and record the photo's statistics as the torch network's do; outside it each input pools
    over itself. Inputs on another device are run on the CPU and returned on their device.

    Args:
        session: an ``onnxruntime.InferenceSession`` of a :data:`FORMAT` graph.
        path: the file it was loaded from (named in errors).
        metadata: the file's :class:`OnnxMetadata`.
    """

    def __init__(self, session: Any, path: Path, metadata: OnnxMetadata) -> None:
        super().__init__()
        self.session = session
        self.path = path
        self.metadata = metadata
        self.size_multiple = metadata.size_multiple
        self.slots = nn.ModuleList(PoolingSlot(name, c) for name, c in metadata.pooling)
        # fed when the photo's statistics are not used (every input is fed: no default relied on)
        self._unused = {
            name: np.zeros((1, c, 1, 1), dtype=np.float32)
            for k, (_, c) in enumerate(metadata.pooling)
            for name in photo_inputs(k)
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore a batch.

        Args:
            x: (N,3,H,W) float tensor in [0,1], any H and W.

        Returns:
            (N,3,H,W) float32 tensor on ``x``'s device (not clamped).
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B,3,H,W) tensor, got shape {tuple(x.shape)}")
        padded, size = pad_to_multiple(x.detach().float().cpu(), self.size_multiple)
        feeds = {IMAGE: np.ascontiguousarray(padded.numpy()), USE_PHOTO: np.array(False)}
        feeds.update(self._unused)
        wanted = [RESTORED]
        batch = current_tile_batch()
        if batch is not None and batch.use is not None:
            feeds[USE_PHOTO] = np.array(True)
            for k, slot in enumerate(self.slots):
                like = torch.empty(1, slot.channels, 1, 1)
                mean, peak = batch.use.pooled(slot, like)
                stats = (np.ascontiguousarray(t.numpy()) for t in (mean, peak))
                feeds.update(zip(photo_inputs(k), stats, strict=True))
        regions = [WHOLE_REGION] * x.shape[0]  # one row per image: the graph pairs them
        if batch is not None and batch.record is not None:
            if batch.tile != padded.shape[-2] or len(batch.regions) != x.shape[0]:
                raise ValueError(
                    f"{len(batch.regions)} owned regions of {batch.tile}-px tiles for a batch "
                    f"of shape {tuple(padded.shape)}"
                )
            regions = list(batch.regions)
            wanted += [name for k in range(len(self.slots)) for name in owned_outputs(k)]
        feeds[REGIONS] = np.asarray(regions, dtype=np.int64).reshape(-1, 4)
        results = self._run(wanted, feeds)
        if batch is not None and batch.record is not None:
            for k, slot in enumerate(self.slots):
                total, peak, count = results[1 + 3 * k : 4 + 3 * k]
                batch.record.add_sums(
                    slot,
                    torch.from_numpy(total).sum(dim=0, dtype=torch.float64),
                    int(count.sum()),
                    torch.from_numpy(peak).amax(dim=0),
                )
        return crop_to(torch.from_numpy(results[0]), size).to(x.device)

    def _run(self, wanted: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """``session.run``; its failures name the file, and running out of memory is a
        ``MemoryError`` (which ``girml restore`` reports per image, suggesting a smaller tile).
        """
        try:
            return self.session.run(wanted, feeds)
        except Exception as exc:  # onnxruntime's own exception types
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "bad_alloc" in reason or "allocate" in reason.lower():
                raise MemoryError(
                    f"{self.path}: onnxruntime ran out of memory ({reason})"
                ) from None
            raise RuntimeError(f"{self.path}: onnxruntime failed ({reason})") from None


def _session(path: Path, threads: int | None) -> Any:
    """An onnxruntime CPU session of ``path``; ``threads`` intra-op threads (None: torch's
    count), none spinning while idle (tile workers share the cores)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: no per-node warnings on stderr
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def read_metadata(path: Path, props: dict[str, str]) -> OnnxMetadata:
    """Parse a file's girml ``metadata_props``.

    Raises:
        ValueError: not a girml export, or its entries do not parse (the message names
            ``path``).
    """
    if props.get(META_FORMAT) != FORMAT:
        raise ValueError(
            f"{path}: not an ONNX model written by `girml export --format onnx` "
            f"({META_FORMAT} is {props.get(META_FORMAT)!r}, expected {FORMAT!r})"
        )
    try:
        multiple = int(props[META_SIZE_MULTIPLE])
        layers = tuple(
            (str(e["name"]), int(e["channels"])) for e in json.loads(props[META_POOLING])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{path}: unreadable girml metadata ({type(exc).__name__}: {exc})"
        ) from None
    if multiple < 1:
        raise ValueError(f"{path}: {META_SIZE_MULTIPLE} must be >= 1, got {multiple}")
    return OnnxMetadata(multiple, layers, dict(props))


def load_onnx_model(path: str | os.PathLike, threads: int | None = None) -> OnnxRestorer:
    """Load an exported ``.onnx`` file as an :class:`OnnxRestorer` (onnxruntime, CPU).

    Args:
        path: the file written by ``girml export --format onnx``.
        threads: onnxruntime's intra-op threads; None: torch's thread count.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: the file is not a valid ONNX model, not one girml exported, or its inputs
            and outputs do not match its metadata (the message names the file).
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"ONNX model {file} not found")
    try:
        session = _session(file, threads)
    except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail...)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{file}: not a loadable ONNX model ({reason})") from None
    metadata = read_metadata(file, session.get_modelmeta().custom_metadata_map)
    _check_signature(file, session, metadata)
    return OnnxRestorer(session, file, metadata).eval()


def _check_signature(path: Path, session: Any, metadata: OnnxMetadata) -> None:
    """Raise ValueError naming ``path`` unless the graph has the inputs and outputs that its
    metadata's pooling layers imply."""
    # inputs with a default are listed apart, as overridable initializers
    inputs = {i.name for i in [*session.get_inputs(), *session.get_overridable_initializers()]}
    outputs = {o.name for o in session.get_outputs()}
    layers = range(len(metadata.pooling))
    need_in = {IMAGE, REGIONS, USE_PHOTO, *(n for k in layers for n in photo_inputs(k))}
    need_out = {RESTORED, *(n for k in layers for n in owned_outputs(k))}
    missing = sorted((need_in - inputs) | (need_out - outputs))
    if missing:
        raise ValueError(f"{path}: the graph lacks {', '.join(missing)} that its metadata implies")
