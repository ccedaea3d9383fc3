"""Gain versus training compute: models of several budgets scored on every benchmark suite.

Usage: python benchmarks/budget_curve.py LABEL=MODEL [LABEL=MODEL ...] [--params FILE]
       [--self-ensemble N] [--families]
Needs `girml synthesize` to have run (reads data/bench/). MODEL is anything
``girml.artifacts.loading.load_model`` accepts (a model folder such as models/latest, a release
folder, a models:/ URI) or ``ckpt:DIR``: a training checkpoint folder (checkpoints/train/
checkpoint-<step>), whose EMA weights are scored with the model section of ``--params`` and
whose step count and training seconds are read from its saved state. Prints one markdown row
per model: PSNR-Y gain over the degraded input on each suite (families weighted equally, the
``clean`` family left out), gir_score, and the harm metrics of the evaluate stage
(``harm_rate``, ``harm.clean_psnr_y``, ``harm.worst_family_gain``). The "gain versus training
compute" table of BENCHMARKS.md comes from here. ``--self-ensemble N`` scores every model with
the geometric self-ensemble of N views (``evaluate.self_ensemble``); ``--families`` adds the
``single-id`` gain of each family.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from torch import nn

from girml.artifacts.loading import load_model
from girml.config import load_section
from girml.evaluation.bench import Bench
from girml.evaluation.report import headline, summarize
from girml.evaluation.restorers import model_restorer
from girml.evaluation.scores import clipped_psnr
from girml.models import build_model

SUITES = ("single-id", "single-ood", "mixed", "unseen", "unseen-content")
COLUMNS = (
    *(f"psnr_gain.{s}" for s in SUITES),
    "gir_score",
    "harm_rate.single-id",
    "harm.clean_psnr_y.single-id",
    "harm.clean_psnr_y.unseen-content",
    "harm.worst_family_gain",
)


def load_checkpoint(folder: Path, params: Path) -> tuple[nn.Module, dict[str, float]]:
    """EMA weights of an accelerate checkpoint of :func:`girml.training.train`, and its state.

    ``custom_checkpoint_0.pkl`` is the TrainState and ``custom_checkpoint_1.pkl`` the EMA (the
    order of ``register_for_checkpointing`` in the loop); both are plain tensors and numbers.
    """
    model = build_model(load_section(params, "model"))
    ema = torch.load(folder / "custom_checkpoint_1.pkl", weights_only=True)
    model.load_state_dict(ema["module"])
    state = torch.load(folder / "custom_checkpoint_0.pkl", weights_only=True)
    return model.eval(), {"steps": state["step"], "train_seconds": state["train_seconds"]}


def score(
    model: nn.Module, bench: Bench, label: str, self_ensemble: int = 1
) -> tuple[dict[str, float], dict[str, float]]:
    """The evaluate stage's headline and harm keys of ``model`` on ``bench`` (PSNR-Y only), and
    the ``single-id`` gain of each degraded family."""
    restore = model_restorer(model, None, self_ensemble)
    rows = []
    with torch.inference_mode():
        for item in bench.items:
            lq, gt = bench.load(item)
            rows.append(
                {
                    "method": label,
                    "suite": item.suite,
                    "family": item.family,
                    "psnr_y": clipped_psnr(restore(lq), gt, 0, test_y=True),
                    "psnr_y_input": bench.input_scores(item, lq, gt, 0)["psnr_y_input"],
                }
            )
    per_family = summarize(rows)
    families = {
        row["family"]: row["psnr_y"] - row["psnr_y_input"]
        for row in per_family
        if row["suite"] == "single-id" and row["family"] != "clean" and row["method"] == label
    }
    return headline(per_family, label), families


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", nargs="+", help="LABEL=MODEL (see above)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--bench", type=Path, default=Path("data/bench"))
    parser.add_argument("--self-ensemble", type=int, default=1, choices=(1, 2, 4, 8))
    parser.add_argument("--families", action="store_true", help="single-id gain per family")
    args = parser.parse_args()
    torch.set_num_threads(2)
    bench = Bench(args.bench)
    header = ["model", "steps", "train min", *COLUMNS, "eval s"]
    if args.families:
        header += ["single-id families"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for spec in args.models:
        label, _, source = spec.partition("=")
        if source.startswith("ckpt:"):
            model, state = load_checkpoint(Path(source[5:]), args.params)
        else:
            model = load_model(source).eval()
            state = {}
        start = time.perf_counter()
        keys, families = score(model, bench, label, args.self_ensemble)
        cells = [
            label,
            str(state.get("steps", "")),
            f"{state['train_seconds'] / 60:.0f}" if "train_seconds" in state else "",
        ]
        for column in COLUMNS:
            value = keys.get(column, math.nan)
            cells.append(f"{value:.0%}" if column.startswith("harm_rate") else f"{value:.2f}")
        cells.append(f"{time.perf_counter() - start:.0f}")
        if args.families:
            cells.append(", ".join(f"{f} {g:+.2f}" for f, g in sorted(families.items())))
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
