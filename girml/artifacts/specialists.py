"""The specialists stage's folder (models/specialists/): write it, and load its networks.

One model folder per family (:mod:`.store`, the training run beside it as ``train``) and
:data:`SPECIALISTS_FILE`, ``{"families": [...]}``, which lists them in order; with
``evaluate.specialists`` off the list alone, empty. The ``specialists`` stage writes it, the
evaluate stage loads it and scores each network as ``specialist:<family>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from girml.artifacts.store import load_model_dir, save_model_dir
from girml.config import ModelConfig, TrainConfig
from girml.core.imageio import staged_dir, write_text

SPECIALISTS_FILE = "specialists.json"


def save_specialists(
    models: Mapping[str, nn.Module],
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    out_dir: Path,
) -> None:
    """Write ``out_dir``, replaced as a whole: a model folder per family and
    :data:`SPECIALISTS_FILE` listing the families in ``models`` order.

    Args:
        models: family -> network, each built from ``model_cfg``.
        model_cfg: the networks' architecture.
        train_cfg: the run they were trained with, stored beside each as ``train``.
        out_dir: the folder to write.
    """
    with staged_dir(out_dir) as tmp:
        for family, model in models.items():
            save_model_dir(model, model_cfg, tmp / family, extra={"train": train_cfg})
        _write_listing(tmp, list(models))


def save_no_specialists(out_dir: Path) -> None:
    """Write ``out_dir``, replaced as a whole, with an empty :data:`SPECIALISTS_FILE`."""
    with staged_dir(out_dir) as tmp:
        _write_listing(tmp, [])


def _write_listing(folder: Path, families: list[str]) -> None:
    write_text(folder / SPECIALISTS_FILE, json.dumps({"families": families}, indent=2) + "\n")


def load_specialists(folder: Path) -> dict[str, nn.Module]:
    """The networks of a folder :func:`save_specialists` wrote, by family in its order (CPU,
    eval mode); empty for :func:`save_no_specialists`'s.

    Raises:
        FileNotFoundError: no :data:`SPECIALISTS_FILE` (the message says which stage writes
            it), or a listed model folder is missing.
        ValueError: the listing is not ``{"families": [...]}``, or a model folder is invalid.
    """
    listing = Path(folder) / SPECIALISTS_FILE
    if not listing.is_file():
        raise FileNotFoundError(f"{listing} not found: run `girml specialists`")
    families = json.loads(listing.read_text(encoding="utf-8")).get("families")
    if not isinstance(families, list) or not all(isinstance(f, str) for f in families):
        raise ValueError(f'{listing}: expected {{"families": [<family>, ...]}}')
    return {family: load_model_dir(Path(folder) / family) for family in families}
