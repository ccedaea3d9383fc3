"""``girml export --format onnx``: a girml model as one ONNX graph for any image size.

The graph (its inputs and outputs: :mod:`girml.artifacts.onnx_runtime`) restores an image
whole from ``image`` alone, and also takes the photo's pooled statistics and gives each tile's
owned sums, so that girml's tiled restore pools over the whole photo through onnxruntime as it
does through torch (:mod:`girml.core.pooling`). :func:`export_onnx` traces the network with
``torch.export`` (the ``dynamo=True`` exporter: the TorchScript exporter cannot trace
:class:`~girml.models.nafnet.LayerNorm2d`'s channel count as a constant under dynamic shapes,
and is deprecated), records the source model in ``metadata_props``, checks the graph with
``onnx.checker`` and compares onnxruntime with torch, whole and tiled, before the file takes
its place.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import girml
from girml.artifacts.loading import URI_PATTERN
from girml.artifacts.onnx_runtime import (
    FORMAT,
    IMAGE,
    META_ARCHITECTURE,
    META_CONFIG,
    META_FORMAT,
    META_POOLING,
    META_SIZE_MULTIPLE,
    META_SOURCE,
    META_WEIGHTS,
    REGIONS,
    RESTORED,
    USE_PHOTO,
    WHOLE_REGION,
    is_onnx_file,
    load_onnx_model,
    owned_outputs,
    photo_inputs,
)
from girml.artifacts.release import WEIGHTS_FILE as RELEASE_WEIGHTS
from girml.artifacts.release import is_release_dir, load_release
from girml.artifacts.store import WEIGHTS_FILE, load_model_dir, read_model_config
from girml.core.hashing import file_digest
from girml.core.imageio import atomic_path
from girml.core.inference import restore_tiled
from girml.core.pooling import traced_pooling
from girml.models import ARCHS
from girml.models.blocks import RestorationNet

OPSET = 18
# onnxruntime against torch, on the unclamped float outputs
TOLERANCE = 1e-4
# log at INFO a line per graph pass (onnx_ir: hundreds): kept to errors during an export
_EXPORTER_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote.

    Attributes:
        out: the ``.onnx`` file.
        architecture: the ``model.type`` exported.
        pooling_layers: layers that pool over the photo (inputs/outputs per layer).
        weights_sha256: sha256 of the source's weights file.
        max_abs_diff: largest difference onnxruntime vs torch in the checks (whole and tiled).
        bytes: size of the file.
    """

    out: Path
    architecture: str
    pooling_layers: int
    weights_sha256: str
    max_abs_diff: float
    bytes: int


@dataclass(frozen=True)
class _Source:
    model: nn.Module
    config: dict[str, Any]  # the model: section
    weights_sha256: str


def _load_source(source: str, name: str) -> _Source:
    """The network, its ``model:`` section and its weights' sha256, from a model folder, a
    release folder, an MLflow model folder or a registry URI (downloaded to a temporary
    folder)."""
    if is_onnx_file(source):
        raise ValueError(f"{name} is an ONNX model already: export its girml model instead")
    if URI_PATTERN.match(source) or (Path(source) / "MLmodel").is_file():
        from girml.tracking.logged_models import download_model

        with tempfile.TemporaryDirectory(prefix="girml-export-") as tmp:
            folder = download_model(source, Path(tmp))
            try:
                return _from_folder(folder)
            except (FileNotFoundError, ValueError) as exc:
                raise ValueError(f"cannot load model {name}: {exc}") from None
    return _from_folder(Path(source))


def _from_folder(folder: Path) -> _Source:
    if is_release_dir(folder):
        model, weights = load_release(folder), folder / RELEASE_WEIGHTS
    else:
        model, weights = load_model_dir(folder), folder / WEIGHTS_FILE
    section = read_model_config(folder)["model"]
    return _Source(model, dict(section), file_digest(weights))


def architecture_of(model: nn.Module, name: str) -> str:
    """The registered ``model.type`` of ``model``, which the exporter handles.

    Raises:
        ValueError: not a registered restoration architecture (a wrapper, another network);
            the message names ``name``, its class and the architectures that export.
    """
    for arch in ARCHS:
        if type(model) is ARCHS.get(arch) and isinstance(model, RestorationNet):
            return arch
    raise ValueError(
        f"cannot export {name} to ONNX: {type(model).__name__} is not a girml restoration "
        f"architecture (exported: {', '.join(ARCHS.names())})"
    )


class _ExportGraph(nn.Module):
    """The traced function: the network plus the photo-statistics inputs and owned-sum outputs
    (:mod:`girml.artifacts.onnx_runtime`), its pooling layers reached through
    :func:`girml.core.pooling.traced_pooling`."""

    def __init__(self, net: RestorationNet, layers: list[nn.Module]) -> None:
        super().__init__()
        self.net = net
        self.multiple = int(net.size_multiple)
        self._index = {id(layer): k for k, layer in enumerate(layers)}

    def forward(
        self,
        image: torch.Tensor,
        regions: torch.Tensor,
        use_photo: torch.Tensor,
        photo: list[torch.Tensor],
    ) -> tuple[torch.Tensor, ...]:
        height, width = image.shape[-2], image.shape[-1]
        pad_h = (self.multiple - height % self.multiple) % self.multiple
        pad_w = (self.multiple - width % self.multiple) % self.multiple
        x = F.pad(image, [0, pad_w, 0, pad_h], mode="reflect") if self.multiple > 1 else image
        owned: dict[int, tuple[torch.Tensor, ...]] = {}

        def pool(
            layer: nn.Module, feat: torch.Tensor, with_max: bool
        ) -> tuple[torch.Tensor, torch.Tensor | None]:
            k = self._index[id(layer)]
            owned[k] = _owned_stats(feat, regions, x.shape[-2])
            mean = torch.where(use_photo, photo[2 * k], feat.mean(dim=(2, 3), keepdim=True))
            if not with_max:
                return mean, None
            peak = feat.amax(dim=(2, 3), keepdim=True)
            return mean, torch.where(use_photo, photo[2 * k + 1], peak)

        with traced_pooling(pool):
            out = x + self.net.residual(x)
        return (out[:, :, :height, :width], *(t for k in sorted(owned) for t in owned[k]))


def _owned_stats(
    feat: torch.Tensor, regions: torch.Tensor, side: torch.SymInt | int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sum (N,C), maximum (N,C) and pixel count (N,) of (N,C,h,w) ``feat`` over each tile's
    owned region, as :meth:`girml.core.pooling.PhotoStats.add` takes them.

    Args:
        feat: a pooling layer's input; the network's input is ``side`` rows high, so the layer
            works at a scale of ``side // h``.
        regions: (N,4) or (1,4) int64 ``y0, y1, x0, x1`` in input pixels.
        side: the height of the network's (padded) input.
    """
    scale = side // feat.shape[-2]
    rows = torch.arange(feat.shape[-2], device=feat.device)
    cols = torch.arange(feat.shape[-1], device=feat.device)
    # the layer's rows y0 // scale .. ceil(y1 / scale), as PhotoStats.add slices them
    in_rows = (rows >= regions[:, 0:1] // scale) & (rows < (regions[:, 1:2] + scale - 1) // scale)
    in_cols = (cols >= regions[:, 2:3] // scale) & (cols < (regions[:, 3:4] + scale - 1) // scale)
    mask = in_rows[:, None, :, None] & in_cols[:, None, None, :]
    total = feat.masked_fill(~mask, 0.0).sum(dim=(2, 3))
    peak = feat.masked_fill(~mask, float("-inf")).amax(dim=(2, 3))
    return total, peak, in_rows.sum(dim=1) * in_cols.sum(dim=1)


def _pooling_layers(net: RestorationNet) -> list[tuple[str, nn.Module, int]]:
    """(module path, module, channels) of each layer that pools over the photo, found by
    running ``net`` once on a small input; each must pool exactly once."""
    calls: list[tuple[nn.Module, int]] = []

    def pool(layer: nn.Module, x: torch.Tensor, with_max: bool) -> tuple[Any, Any]:
        calls.append((layer, x.shape[1]))
        mean = x.mean(dim=(2, 3), keepdim=True)
        return mean, (x.amax(dim=(2, 3), keepdim=True) if with_max else None)

    side = 2 * int(net.size_multiple)
    with torch.no_grad(), traced_pooling(pool):
        net(torch.rand(1, 3, side, side))
    names = {id(module): name for name, module in net.named_modules()}
    declared = [m for m in net.modules() if getattr(m, "photo_pooling", False)]
    if sorted(map(id, declared)) != sorted(id(layer) for layer, _ in calls):
        raise ValueError(
            f"cannot export {type(net).__name__}: its {len(declared)} pooling layers made "
            f"{len(calls)} pooling calls (each must pool once)"
        )
    return [(names[id(layer)], layer, channels) for layer, channels in calls]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's progress lines, warnings and log records kept off the user's terminal."""
    loggers = [logging.getLogger(n) for n in _EXPORTER_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _trace(graph: _ExportGraph, channels: list[int], name: str) -> Any:
    """The ONNX ``ModelProto`` of ``graph``, batch, height and width dynamic (the tiles'
    regions share the batch axis).

    Raises:
        ValueError: torch's exporter failed (its first line, naming ``name``).
    """
    from torch.export import Dim

    side = 2 * graph.multiple + 3  # not a multiple: the padding is traced too
    photo = [torch.zeros(1, c, 1, 1) for c in channels for _ in range(2)]
    example = (
        torch.rand(2, 3, side, side + 2),
        torch.tensor([WHOLE_REGION] * 2),
        torch.tensor(False),
        photo,
    )
    names_in = [
        IMAGE,
        REGIONS,
        USE_PHOTO,
        *(n for k in range(len(channels)) for n in photo_inputs(k)),
    ]
    names_out = [RESTORED, *(n for k in range(len(channels)) for n in owned_outputs(k))]
    dynamic = {
        "image": {0: Dim.DYNAMIC, 2: Dim.DYNAMIC, 3: Dim.DYNAMIC},
        "regions": {0: Dim.DYNAMIC},
        "use_photo": None,
        "photo": [None] * len(photo),
    }
    try:
        with _quiet():
            program = torch.onnx.export(
                graph.eval(),
                example,
                dynamo=True,
                opset_version=OPSET,
                input_names=names_in,
                output_names=names_out,
                dynamic_shapes=dynamic,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:  # torch.export and onnxscript raise many kinds
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"exporting {name}: torch's ONNX exporter failed ({reason})") from None
    return program.model_proto


def _finish(proto: Any, props: dict[str, str], channels: list[int]) -> None:
    """Name the dynamic axes, give the tiling inputs their defaults (initializers of the same
    names: ``image`` alone then restores whole) and write ``props`` and the producer into
    ``proto``, in place."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    image = next(i for i in graph.input if i.name == IMAGE)
    symbols = [dim.dim_param for dim in image.type.tensor_type.shape.dim]
    axes = dict(zip(symbols[:1] + symbols[2:], ("batch", "height", "width"), strict=True))
    for value in [*graph.input, *graph.output, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in axes:
                dim.dim_param = axes[dim.dim_param]
    defaults = {
        REGIONS: torch.tensor([WHOLE_REGION]),
        USE_PHOTO: torch.tensor(False),
        **{
            name: torch.zeros(1, c, 1, 1)
            for k, c in enumerate(channels)
            for name in photo_inputs(k)
        },
    }
    graph.initializer.extend(numpy_helper.from_array(t.numpy(), n) for n, t in defaults.items())
    proto.producer_name = "girml"
    proto.producer_version = f"{girml.__version__} (torch {torch.__version__})"
    proto.doc_string = (
        "girml restoration model: image (N,3,H,W) float32 in [0,1] -> restored (same shape, "
        "not clamped), any H and W from size_multiple up. The other inputs and outputs serve "
        "girml's tiled restore (girml restore --model this.onnx); with their defaults, image "
        "alone restores whole."
    )
    del proto.metadata_props[:]
    helper.set_model_props(proto, props)


def _max_diff(net: nn.Module, onnx_net: nn.Module, multiple: int) -> float:
    """Largest |onnxruntime - torch| over a random image restored whole (a side that is not a
    multiple of ``multiple``, a batch of two) and tiled (several tiles, photo statistics)."""
    generator = torch.Generator().manual_seed(0)
    whole = torch.rand(2, 3, 3 * multiple + 3, 2 * multiple + 5, generator=generator)
    tile, overlap = multiple * -(-32 // multiple), multiple * -(-8 // multiple)
    photo = torch.rand(1, 3, 2 * tile + 5, tile + 7, generator=generator)
    with torch.inference_mode():
        diffs = [(net(whole) - onnx_net(whole)).abs().max()]
        tiled = [restore_tiled(m, photo, tile, overlap, workers=1) for m in (net, onnx_net)]
    diffs.append((tiled[0] - tiled[1]).abs().max())
    return float(max(diffs))


def export_onnx(source: str, out: str | Path, name: str | None = None) -> OnnxExport:
    """Export a girml model as an ONNX file that restores images of any size.

    The file is written atomically: it takes its place only after ``onnx.checker`` passed and
    onnxruntime agreed with torch within :data:`TOLERANCE` on random images, restored whole
    and tiled (:func:`_max_diff`). Its ``metadata_props`` record the format, the source, the
    architecture, the ``model:`` config (JSON), the weights' sha256, ``size_multiple`` and
    the pooling layers (:mod:`girml.artifacts.onnx_runtime`).

    Args:
        source: a model folder, a release folder, an MLflow model folder or a ``models:/`` or
            ``runs:/`` URI (as :func:`girml.artifacts.loading.load_model` takes).
        out: the ``.onnx`` file to write (its folder is created; an existing file is replaced).
        name: what errors and the metadata call the source (default ``source``; the metadata
            adds ``source`` when it differs, e.g. the version an alias was pinned to).

    Raises:
        FileNotFoundError: the source is missing (the message names it).
        ValueError: the source cannot be loaded, is not an exportable architecture, ``out``
            does not end in ``.onnx``, or the exported graph fails its checks (nothing is
            written then).
        girml.core.errors.UnsafeModelError: a pickled source model.
    """
    import onnx

    out = Path(out)
    name = source if name is None else name
    if not is_onnx_file(out):
        raise ValueError(f"--out {out}: an ONNX file must end in .onnx")
    loaded = _load_source(source, name)
    net = loaded.model.eval()
    arch = architecture_of(net, name)
    layers = _pooling_layers(net)
    channels = [c for *_, c in layers]
    props = {
        META_FORMAT: FORMAT,
        META_SOURCE: name if name == source else f"{name} ({source})",
        META_ARCHITECTURE: arch,
        META_CONFIG: json.dumps(loaded.config, sort_keys=True),
        META_WEIGHTS: loaded.weights_sha256,
        META_SIZE_MULTIPLE: str(int(net.size_multiple)),
        META_POOLING: json.dumps([{"name": n, "channels": c} for n, _, c in layers]),
    }
    proto = _trace(_ExportGraph(net, [layer for _, layer, _ in layers]), channels, name)
    _finish(proto, props, channels)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ValueError(f"exporting {name}: the ONNX graph fails onnx.checker ({exc})") from None
    with atomic_path(out) as tmp:
        onnx.save_model(proto, str(tmp))
        diff = _max_diff(net, load_onnx_model(tmp), int(net.size_multiple))
        if not diff <= TOLERANCE:
            raise ValueError(
                f"exporting {name}: onnxruntime differs from torch by {diff:.3g} > {TOLERANCE} "
                f"on a random image; {out} not written"
            )
        size = tmp.stat().st_size
    return OnnxExport(out, arch, len(layers), loaded.weights_sha256, diff, size)
