"""Training throughput: a bare PyTorch loop against the accelerate loop, with and without MLflow.

Usage: python benchmarks/bench_training.py [--steps 60]
Needs `girml synthesize` to have run (reads data/pairs/). Runs, side by side on the same data
and model (params.yaml: model, train patch/batch sizes):
  bare        plain PyTorch: DataLoader over the same patch stream, AdamW, the configured loss
  accelerate  girml.training.train (accelerate, EMA, clipping, checkpoints off the timed path)
  +mlflow     the same with every log/validation event sent to a temporary SQLite MLflow run
Prints samples/s for each (the first 10 steps are warm-up, excluded).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from girml.config import load_section
from girml.models import build_model
from girml.training import TrainPatches, load_pairs, make_loader, train
from girml.training.losses import restoration_loss


def bare(model_cfg, cfg, spec, pairs: Path, steps: int) -> float:
    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), cfg.lr, betas=cfg.betas)
    dataset = TrainPatches(
        load_pairs(pairs / "train" / "pairs.jsonl"),
        cfg.patch_size,
        cfg.seed,
        cfg.online_degradation_prob,
        spec,
    )
    loader = make_loader(dataset, cfg.batch_size, 0, steps * cfg.batch_size, cfg.num_workers)
    start, seen = 0.0, 0
    for i, (lq, gt) in enumerate(loader):
        if i == 10:
            start, seen = time.perf_counter(), 0
        loss = restoration_loss(model(lq), gt, cfg.loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += lq.shape[0]
    return seen / (time.perf_counter() - start)


def looped(model_cfg, cfg, spec, pairs: Path, steps: int, with_mlflow: bool) -> float:
    cfg = cfg.model_copy(update={"steps": steps, "val_every": 10**6, "ckpt_every": 10**6})
    with tempfile.TemporaryDirectory() as tmp:
        if not with_mlflow:
            result = train(model_cfg, cfg, pairs, Path(tmp) / "ckpt", spec=spec)
        else:
            import os

            from girml.tracking import mlflow as tracking

            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
            with tracking.start_run("bench", Path(tmp), run_name="bench"):
                result = train(
                    model_cfg,
                    cfg,
                    pairs,
                    Path(tmp) / "ckpt",
                    spec=spec,
                    on_log=tracking.log_metrics,
                    on_validate=tracking.log_metrics,
                )
    return result.metrics["samples_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    model_cfg = load_section(args.params, "model")
    spec = load_section(args.params, "degradations")
    cfg = load_section(args.params, "train").model_copy(update={"log_every": 5})
    pairs = Path("data/pairs")
    print("| loop | samples/s |\n|---|---|")
    print(f"| bare PyTorch | {bare(model_cfg, cfg, spec, pairs, args.steps):.1f} |")
    print(f"| accelerate | {looped(model_cfg, cfg, spec, pairs, args.steps, False):.1f} |")
    print(f"| accelerate + MLflow | {looped(model_cfg, cfg, spec, pairs, args.steps, True):.1f} |")


if __name__ == "__main__":
    main()
