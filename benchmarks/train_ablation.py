"""One training recipe at the CPU budget, scored on validation and on three benchmark suites.

Usage: python benchmarks/train_ablation.py NAME ['{"model": {...}, "train": {...}}']
Needs `girml synthesize` to have run (reads data/pairs/ and data/bench/). Trains
``girml.training.train`` with params.yaml's model and train sections overridden by the JSON
(checkpoints in a temporary folder, so a second run trains afresh), then prints one JSON
line: the validation PSNR-Y gain and its per-family singles, the gain on every family of
single-id, unseen-content and mixed (suite mean first; again with the x8 self-ensemble of
``evaluate.self_ensemble``: keys "<suite> x8"), the output of flat grey images
(0, 10, 40, 128, 255) and the loop's seconds. Set MLFLOW_TRACKING_URI to keep runs out of
the project's store. The rows of BENCHMARKS.md's "CPU ablations" table come from here.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from girml.artifacts.loading import source_weights
from girml.config import DegradationsConfig, ModelConfig, TrainConfig, parse_section, read_params
from girml.core.ensemble import with_self_ensemble
from girml.training.data import load_pairs
from girml.training.loop import train
from girml.training.validation import validate

ROOT = Path(__file__).resolve().parents[1]
SUITES = ("single-id", "unseen-content", "mixed")
FLAT_LEVELS = (0, 10, 40, 128, 255)


def main(name: str, overrides: dict) -> dict:
    params = read_params(ROOT / "params.yaml")
    model_cfg = parse_section(
        {**params["model"], **overrides.get("model", {})}, "model", ModelConfig
    )
    train_cfg = parse_section(
        {**params["train"], "ckpt_every": 10**9, **overrides.get("train", {})},
        "train",
        TrainConfig,
    )
    spec = parse_section(params["degradations"], "degradations", DegradationsConfig)
    init = source_weights(train_cfg.init_from) if train_cfg.init_from is not None else None
    with tempfile.TemporaryDirectory() as ckpt_dir:
        result = train(
            model_cfg, train_cfg, ROOT / "data" / "pairs", Path(ckpt_dir), spec=spec, init=init
        )
    bench = {}
    for views in (1, 8):
        net = with_self_ensemble(result.model, views)
        for suite in SUITES:
            gains = {
                jsonl.parent.name: round(validate(net, load_pairs(jsonl))[0]["val.psnr_gain"], 2)
                for jsonl in sorted((ROOT / "data" / "bench" / suite).glob("*/recipes.jsonl"))
                if jsonl.parent.name != "clean"  # its gain is the output's PSNR: not a gain
            }
            key = suite if views == 1 else f"{suite} x{views}"
            bench[key] = [round(sum(gains.values()) / len(gains), 2), gains]
    with torch.no_grad():
        flat = {
            level: round(
                float(result.model(torch.full((1, 3, 64, 64), level / 255)).clamp(0, 1).mean())
                * 255,
                1,
            )
            for level in FLAT_LEVELS
        }
    return {
        "name": name,
        "overrides": overrides,
        "val_gain": round(result.metrics["val.psnr_gain"], 3),
        "train_seconds": round(result.metrics["train_seconds"]),
        "val_singles": {
            family: round(v["psnr_y_model"] - v["psnr_y_input"], 2)
            for family, v in result.per_family.items()
            if "+" not in family
        },
        "bench": bench,
        "flat": flat,
    }


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    start = time.time()
    row = main(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) == 3 else {})
    print(json.dumps({**row, "wall_seconds": round(time.time() - start)}))
