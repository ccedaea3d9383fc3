"""What the evaluation tests share: the tiny model and configs, the tiny bench's groups, and a
helper that registers a model like the train stage does."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import torch

from girml.artifacts.registered import log_and_register_model
from girml.artifacts.store import read_model_config, save_model_dir
from girml.config import EvaluateConfig, ModelConfig, TrainConfig
from girml.evaluation.leaderboard import Estimate
from girml.evaluation.report import ROW_COLUMNS
from girml.models import build_model
from girml.tracking.runs import start_run

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
TINY_TRAIN = TrainConfig(
    steps=2, batch_size=2, patch_size=16, warmup_steps=0, ema_decay=0, num_workers=0
)
CFG = EvaluateConfig(niqe_patch_size=16, baselines=["identity", "deblock", "gamma"])
ROW_KEYS = [
    "method",
    "suite",
    "family",
    "id",
    "source_id",
    "level",
    "psnr",
    "ssim",
    "psnr_y",
    "ssim_y",
    "psnr_y_input",
    "ssim_y_input",
    "niqe",
]
# per suite of tiny_params(): the family folders synthesize writes
TINY_GROUPS = {
    "single-id": {"noise", "blur", "jpeg", "clean"},
    "single-ood": {"noise", "blur", "jpeg"},
    "mixed": {"blur+noise"},
    "unseen": {"haze", "blur+jpeg"},
    "unseen-content": {"noise", "blur", "jpeg", "clean"},
}
N_DEGRADED_GROUPS = sum(len(f - {"clean"}) for f in TINY_GROUPS.values())
HARM_KEYS = {f"harm_rate.{s}" for s in TINY_GROUPS} | {
    "harm.clean_psnr_y.single-id",
    "harm.clean_psnr_y.unseen-content",
    "harm.block_shift.single-id",  # the patch metric on clean crops ("dim is not dark")
    "harm.block_shift.unseen-content",
    "harm.worst_family_gain",
}
TRAIN_JSON = Path("metrics/train.json")


def identity(lq: np.ndarray) -> np.ndarray:
    return lq.copy()


def tiny_model(seed: int, noise: float) -> torch.nn.Module:
    """A tiny NAFNet; ``noise`` perturbs its (near-identity) init, making it worse."""
    torch.manual_seed(seed)
    model = build_model(TINY)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(noise * torch.randn_like(param))
    return model.eval()


def register(model: torch.nn.Module, root: Path, model_dir: Path) -> tuple[str, int]:
    """Log and register ``model`` like the train stage; write its folder and ``train.json``.

    The run record goes to ``root/metrics/train.json`` (:data:`TRAIN_JSON` under ``root``).
    """
    example = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    with start_run("gir", root, log_system_metrics=False) as run:
        version = log_and_register_model(model, example, model_cfg=TINY)
    save_model_dir(model, TINY, model_dir, extra={"train": TINY_TRAIN})
    record = {
        "weights_sha256": read_model_config(model_dir)["weights_sha256"],
        "mlflow_run_id": run.info.run_id,
        "registered_version": version,
    }
    (root / TRAIN_JSON).parent.mkdir(parents=True, exist_ok=True)
    (root / TRAIN_JSON).write_text(json.dumps({"steps": 1, "run": record}), encoding="utf-8")
    return run.info.run_id, version


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


# --------------------------------------------------------------------------- study rows
# hand-made per-image rows of several methods, as the study reads them

NAN = float("nan")
FAMILIES = {
    "single-id": ("blur", "noise"),
    "single-ood": ("blur", "noise"),
    "mixed": ("blur+noise",),
    "unseen": ("rain",),
    "unseen-content": ("blur",),
}


def row(
    method: str, suite: str, family: str, image: int, out: float, inp: float, ssim: float = 0.8
) -> dict:
    """A per-image row: PSNR-Y ``out`` against the input's ``inp`` (dB); SSIM-Y gain 0.1."""
    return {"method": method, "suite": suite, "family": family, "id": f"{image:04d}",
            "source_id": "src", "level": "id", "psnr": out, "ssim": ssim, "psnr_y": out,
            "ssim_y": ssim, "psnr_y_input": inp, "ssim_y_input": ssim - 0.1,
            "niqe": NAN}  # fmt: skip


def study_rows(method: str, per_family: int = 8, seed: int = 0, shift: float = 0.0) -> list[dict]:
    """Rows of one method on every suite (random gains around 1 dB) plus ``clean`` families.

    The same ``seed`` gives the same inputs and outputs, so two methods of one seed score the
    same images; ``shift`` is added to every output (quarters of a dB stay exact in binary).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for suite, families in FAMILIES.items():
        for family in families:
            for image in range(per_family):
                inp = float(rng.integers(80, 120)) / 4
                out = inp + float(rng.integers(-4, 12)) / 4 + shift
                rows.append(row(method, suite, family, image, out, inp))
    for suite in ("single-id", "unseen-content"):
        rows += [row(method, suite, "clean", i, 60.0 - i, 100.0) for i in range(per_family)]
    return rows


def width(estimate: Estimate) -> float:
    return estimate.high - estimate.low


def write_per_image(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=ROW_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: "" if isinstance(v, float) and math.isnan(v) else v
                             for k, v in r.items()})  # fmt: skip
    return path
