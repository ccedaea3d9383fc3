"""The release folder: safetensors weights, ``config.yaml``, ``MODEL_CARD.md``; written and loaded.

``models/release/`` is the one folder of weights committed to git, so that a fresh clone restores
photos with no training. Its format:

- ``model.safetensors``: the ``state_dict`` tensors (float32, or float16 when that changes no
  benchmark suite's mean PSNR-Y by more than :data:`~girml.artifacts.fp16.FP16_TOLERANCE_DB`).
- ``config.yaml``: ``format`` (:data:`FORMAT`), ``model`` (the
  :class:`~girml.config.ModelConfig`), ``weights`` (file, dtype, bytes, sha256), ``provenance``
  (:class:`~girml.artifacts.provenance.Provenance`), ``metrics`` (suite means and harm) and
  ``fp16_check``.
- ``MODEL_CARD.md``: provenance, metrics against identity and the best classical method, harm,
  known limits (:mod:`girml.artifacts.card`) and, with ``--real-photos``, the scores of
  ``benchmarks/real_photos.py`` on these very weights
  (:class:`~girml.artifacts.real_photos.RealPhotos`).

:func:`export_release` writes one (``girml release`` gathers what it needs:
:func:`girml.artifacts.make_release.make_release`). Loading (:func:`load_release`) reads tensors
with ``safetensors`` and YAML with ``safe_load``, checks the header's shapes against the config,
builds the network with :func:`~girml.models.build_model` and loads the tensors strictly: nothing
is unpickled.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from girml.artifacts.real_photos import RealPhotos, check_real_photos_weights
from girml.artifacts.store import (
    CONFIG_FILE,
    build_from_config,
    read_model_config,
    weights_mismatch,
)
from girml.config import ModelConfig
from girml.core.hashing import file_digest
from girml.core.imageio import staged_dir

if TYPE_CHECKING:
    from girml.artifacts.card import Coverage
    from girml.artifacts.card_metrics import CardMetrics
    from girml.artifacts.fp16 import Fp16Check
    from girml.artifacts.provenance import Provenance

FORMAT = "girml-release/1"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "MODEL_CARD.md"
MAX_RELEASE_BYTES = 8 * 1024 * 1024  # the whole folder: it is committed to git
_DTYPES = {"float32": torch.float32, "float16": torch.float16}
_LISTED_IDS = 16  # the card lists at most this many photo ids; config.yaml has them all


def is_release_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` holds ``model.safetensors`` and ``config.yaml`` (a release folder)."""
    folder = Path(path)
    return (folder / WEIGHTS_FILE).is_file() and (folder / CONFIG_FILE).is_file()


def load_release(path: str | os.PathLike) -> nn.Module:
    """Build the network of a release folder and load its weights (CPU, float32, eval mode).

    fp16-stored tensors are cast to the network's float32. Nothing is unpickled.

    Raises:
        FileNotFoundError: the folder or one of its two files is missing (the message names it).
        ValueError: an unknown ``format``, an invalid ``model`` config, or weights that are
            corrupt or do not match the config (the message names the file).
    """
    folder = Path(path)
    if not is_release_dir(folder):
        raise FileNotFoundError(
            f"release folder {folder} needs {WEIGHTS_FILE} and {CONFIG_FILE}: run `girml release`"
        )
    config_path = folder / CONFIG_FILE
    config = read_model_config(folder)
    if config.get("format") != FORMAT:
        raise ValueError(f"{config_path}: format must be {FORMAT!r}, got {config.get('format')!r}")
    weights = folder / WEIGHTS_FILE
    model = build_from_config(config["model"], config_path, weights)  # its header checked first
    try:
        tensors = load_file(weights, device="cpu")
        reference = model.state_dict()
        state = {
            key: value.to(reference[key].dtype) if key in reference else value
            for key, value in tensors.items()
        }
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise weights_mismatch(weights, config_path, exc) from None
    return model.eval()


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _plain_tensors(model: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """CPU, contiguous copies of the ``state_dict``; floating tensors cast to ``dtype``."""
    return {
        key: (value.to(dtype) if value.is_floating_point() else value)
        .detach()
        .cpu()
        .contiguous()
        .clone()
        for key, value in model.state_dict().items()
    }


@dataclass(frozen=True)
class ReleaseResult:
    """What :func:`export_release` wrote: the folder, its total size and the weights dtype."""

    out_dir: Path
    bytes: int
    dtype: str
    max_output_diff: float


def _write_weights(source: nn.Module, folder: Path, dtype: str) -> dict[str, Any]:
    """Save ``source``'s tensors as ``model.safetensors`` in ``dtype``; return their record
    (``config.yaml``'s ``weights``: file, dtype, bytes, sha256)."""
    weights = folder / WEIGHTS_FILE
    save_file(_plain_tensors(source, _DTYPES[dtype]), weights, metadata={"format": FORMAT})
    return {
        "file": WEIGHTS_FILE,
        "dtype": dtype,
        "bytes": weights.stat().st_size,
        "sha256": file_digest(weights),
    }


@dataclass(frozen=True)
class _Metadata:
    """What ``config.yaml`` and ``MODEL_CARD.md`` say about the weights (see
    :func:`export_release`'s arguments)."""

    model_cfg: ModelConfig
    provenance: Provenance
    metrics: CardMetrics
    coverage: Coverage
    fp16_check: Fp16Check | None
    real_photos: RealPhotos | None
    title: str


def _write_config(folder: Path, meta: _Metadata, weights_info: dict[str, Any]) -> None:
    """Write ``config.yaml``: format, model, weights, provenance, metrics and fp16 check."""
    fp16_check = meta.fp16_check
    config = {
        "format": FORMAT,
        "model": meta.model_cfg.model_dump(mode="json"),
        "weights": weights_info,
        "provenance": meta.provenance.model_dump(mode="json"),
        "metrics": meta.metrics.summary(),
        "fp16_check": None
        if fp16_check is None
        else {
            "tolerance_db": fp16_check.tolerance_db,
            "fp32": fp16_check.fp32,
            "fp16": fp16_check.fp16,
        },
    }
    (folder / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _write_card(
    folder: Path, meta: _Metadata, source: nn.Module, weights_info: dict[str, Any]
) -> None:
    """Write ``MODEL_CARD.md`` (:func:`girml.artifacts.card.render_card`)."""
    from girml.artifacts.card import render_card

    card = render_card(
        title=meta.title,
        arch=meta.model_cfg.type,
        n_params=sum(p.numel() for p in source.parameters()),
        weights=weights_info,
        provenance=_card_provenance(meta.provenance),
        metrics=meta.metrics,
        coverage=meta.coverage,
        fp16=meta.fp16_check,
        real_photos=meta.real_photos,
    )
    (folder / CARD_FILE).write_text(card, encoding="utf-8")


def _card_provenance(provenance: Provenance) -> dict[str, Any]:
    """The provenance as the card shows it: the clean train ids only when there are few."""
    plain = provenance.model_dump(mode="json")
    ids = provenance.data.clean_train_ids
    return {
        **plain,
        "data": {**plain["data"], "clean_train_ids": ids if len(ids) <= _LISTED_IDS else []},
    }


def _check_size(folder: Path, out_dir: Path, max_bytes: int, dtype: str) -> int:
    """The folder's size in bytes.

    Raises:
        ValueError: over ``max_bytes`` (the message gives the size and a way out).
    """
    size = _folder_bytes(folder)
    if size > max_bytes:
        raise ValueError(
            f"release {out_dir} would be {size / 2**20:.2f} MiB, over the "
            f"{max_bytes / 2**20:.2f} MiB limit for a folder committed to git"
            + ("" if dtype == "float16" else ": try --fp16 or a smaller model")
        )
    return size


def export_release(
    model: nn.Module,
    model_cfg: ModelConfig,
    out_dir: Path,
    *,
    provenance: Provenance,
    metrics: CardMetrics,
    coverage: Coverage,
    fp16_check: Fp16Check | None = None,
    real_photos: RealPhotos | None = None,
    max_bytes: int = MAX_RELEASE_BYTES,
    title: str = "gir-restorer release",
) -> ReleaseResult:
    """Write a release folder: weights, ``config.yaml`` and ``MODEL_CARD.md``, all or nothing.

    Written to a temporary folder beside ``out_dir``, loaded back with :func:`load_release`
    and checked, then swapped in (on any error the old release stays as it was).

    Args:
        model: the trained network (any device; not modified).
        model_cfg: the config that builds it (the rebuilt network must load the weights
            strictly and reproduce ``model``'s output).
        out_dir: e.g. ``models/release``; replaced as a whole.
        provenance, metrics, coverage: the card's
            :class:`~girml.artifacts.provenance.Provenance`, numbers
            (:func:`girml.artifacts.card_metrics.card_metrics`) and
            :class:`girml.artifacts.card.Coverage`.
        fp16_check: store float16 weights; only allowed when the check passed.
        real_photos: ``benchmarks/real_photos.py --json`` numbers for the card, measured on
            the very weights written here (same sha256: the export is byte-deterministic).
        max_bytes: the largest allowed folder size.
        title: the card's heading.

    Returns:
        A :class:`ReleaseResult`.

    Raises:
        ValueError: a failed fp16 check (the message gives the per-suite changes), a config
            that does not rebuild ``model``, ``real_photos`` of other weights, or a folder
            over ``max_bytes`` (the message gives the size).
    """
    if fp16_check is not None and not fp16_check.ok:
        raise ValueError(f"fp16 storage refused: {fp16_check.describe()}")
    dtype = "float16" if fp16_check is not None else "float32"
    source = copy.deepcopy(model).to("cpu").eval()
    out_dir = Path(out_dir)
    meta = _Metadata(model_cfg, provenance, metrics, coverage, fp16_check, real_photos, title)
    with staged_dir(out_dir) as tmp:
        weights_info = _write_weights(source, tmp, dtype)
        if real_photos is not None:
            check_real_photos_weights(real_photos, weights_info["sha256"], out_dir)
        _write_config(tmp, meta, weights_info)
        diff = _check_rebuilt(source, tmp, exact=dtype == "float32")
        _write_card(tmp, meta, source, weights_info)
        size = _check_size(tmp, out_dir, max_bytes, dtype)
    return ReleaseResult(out_dir, size, dtype, diff)


def _check_rebuilt(model: nn.Module, folder: Path, exact: bool) -> float:
    """Load ``folder`` back and compare with ``model`` on a fixed odd-sized input.

    Returns:
        The largest absolute output difference.

    Raises:
        ValueError: float32 weights that do not reproduce ``model`` within 1e-5 (the config
            does not describe the network, e.g. a missing ``sca_max``).
    """
    rebuilt = load_release(folder)
    x = torch.rand(1, 3, 37, 45, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        diff = float((rebuilt(x) - model(x)).abs().max())
    if exact and not diff <= 1e-5:
        raise ValueError(
            f"the network rebuilt from {folder / CONFIG_FILE} does not reproduce the source "
            f"model (max output difference {diff:.3g}): its model config is wrong"
        )
    return diff
