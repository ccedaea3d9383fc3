"""The same recipe and compute with and without the package photos (issue #18's ablation).

Usage:
  girml profile profiles/release.yaml --out P
  python benchmarks/photo_ablation.py prepare ARM --work DIR --params P
  python benchmarks/photo_ablation.py train ARM --work DIR --params P [--steps N]
  python benchmarks/photo_ablation.py score MODEL_DIR --bench BENCH_DIR --clean CLEAN_DIR
         [--json OUT]

``ARM`` is ``packages`` (the params ``P`` as they are: builtin and package photos) or
``builtin`` (the same params with only the builtin source and ``scientific`` held out, since
there are no illustrations).

- ``prepare`` runs collect and synthesize into ``DIR/ARM/{clean,pairs,bench}``.
- ``train`` trains the params' model and train sections (``--steps`` overrides the step count)
  with checkpoints in ``DIR/ARM/checkpoints`` (a killed run resumes); it writes the model folder
  ``DIR/ARM/model`` and ``DIR/ARM/train.json`` (validation and the selection record).
- ``score`` scores a model folder and the classical baselines of ``evaluate.baselines`` on one
  bench: the crop suites as ``girml evaluate`` does (x1, whole crops), the ``whole`` suite as
  ``girml restore`` does. Per suite and family: the model's gain, the best classical gain, the
  PSNR-Y, the harm rate and the largest block shift; ``--json`` keeps them.

Score both arms' models on the ``packages`` arm's bench, so they face the same images. MLflow
is not touched.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from girml.artifacts.loading import load_model, source_weights
from girml.artifacts.store import save_model_dir
from girml.config import (
    CollectConfig,
    DegradationsConfig,
    EvaluateConfig,
    ModelConfig,
    SynthesizeConfig,
    TrainConfig,
    parse_section,
    read_params,
)
from girml.data.collect import collect
from girml.data.synthesize import read_manifest, synthesize
from girml.evaluation.bench import Bench
from girml.evaluation.harness import evaluate_baselines, evaluate_method
from girml.evaluation.report import summarize
from girml.evaluation.restorers import model_restorer
from girml.evaluation.scores import fit_pristine_niqe
from girml.evaluation.whole import evaluate_whole, has_whole_suite
from girml.training.loop import train

ARMS = ("packages", "builtin")


def arm_params(arm: str, params: Path) -> dict[str, Any]:
    """The params of ``arm``: ``params`` as they are, builtin-only for ``builtin``."""
    raw = read_params(params)
    if arm == "builtin":
        raw["collect"]["sources"] = [{"type": "builtin"}]
        raw["synthesize"]["unseen_content_category"] = "scientific"
    return raw


def prepare(arm: str, work: Path, params: Path) -> None:
    raw = arm_params(arm, params)
    out = work / arm
    result = collect(parse_section(raw["collect"], "collect", CollectConfig), out / "clean")
    print(f"{arm}: collected {result}", file=sys.stderr)
    images = read_manifest(out / "clean" / "manifest.csv", out / "clean" / "images")
    counts = synthesize(
        images,
        parse_section(raw["degradations"], "degradations", DegradationsConfig),
        parse_section(raw["synthesize"], "synthesize", SynthesizeConfig),
        out / "pairs",
        out / "bench",
    )
    splits = {s: sum(im.split == s for im in images) for s in ("train", "val", "test")}
    print(json.dumps({"arm": arm, "images": splits, "pairs": counts.counts}), file=sys.stderr)


def run_train(arm: str, work: Path, steps: int | None, params: Path) -> dict[str, Any]:
    raw = arm_params(arm, params)
    out = work / arm
    train_raw = {**raw["train"], **({"steps": steps} if steps else {})}
    model_cfg = parse_section(raw["model"], "model", ModelConfig)
    cfg = parse_section(train_raw, "train", TrainConfig)
    spec = parse_section(raw["degradations"], "degradations", DegradationsConfig)
    start = time.perf_counter()
    init = source_weights(cfg.init_from) if cfg.init_from is not None else None
    result = train(model_cfg, cfg, out / "pairs", out / "checkpoints", spec=spec, init=init)
    save_model_dir(result.model, model_cfg, out / "model", extra={"train": cfg})
    record = {
        "arm": arm,
        "steps": cfg.steps,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "metrics": result.metrics,
        "selection": result.selection,
    }
    (out / "train.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def _table(summary: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """suite/family -> the model's and the best baseline's numbers."""
    by_key: dict[str, dict[str, dict[str, Any]]] = {}
    for row in summary:
        by_key.setdefault(f"{row['suite']}/{row['family']}", {})[row["method"]] = row
    table = {}
    for key, methods in by_key.items():
        model = methods["model"]
        baselines = {m: r for m, r in methods.items() if m not in ("model", "identity")}
        best = max(baselines.items(), key=lambda kv: kv[1]["psnr_gain"], default=(None, None))
        entry = {
            "gain": round(model["psnr_gain"], 2),
            "psnr_y": round(model["psnr_y"], 2),
            "harm_rate": None if math.isnan(model["harm_rate"]) else round(model["harm_rate"], 3),
        }
        if best[0] is not None:
            entry["best_classical"] = best[0]
            entry["best_classical_gain"] = round(best[1]["psnr_gain"], 2)
        if "block_shift" in model:
            entry["block_shift"] = round(model["block_shift"], 2)
        table[key] = entry
    return table


def score(model_dir: Path, bench_dir: Path, clean_dir: Path) -> dict[str, Any]:
    cfg = EvaluateConfig(self_ensemble=1)
    niqe = fit_pristine_niqe(clean_dir, cfg.niqe_patch_size)
    model = load_model(str(model_dir)).eval()
    bench = Bench(bench_dir)
    rows = evaluate_method(model_restorer(model, cfg.tile), bench, cfg, niqe, None)
    rows += evaluate_baselines(cfg.baselines, bench, cfg, niqe, None)
    if has_whole_suite(bench_dir):
        whole = Bench(bench_dir, whole=True)
        rows += evaluate_whole({"model": model}, whole, cfg, niqe, None)
    return _table(summarize(rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("prepare", "train"):
        p = sub.add_parser(name)
        p.add_argument("arm", choices=ARMS)
        p.add_argument("--work", type=Path, required=True)
        p.add_argument("--params", type=Path, required=True)
        if name == "train":
            p.add_argument("--steps", type=int)
    p = sub.add_parser("score")
    p.add_argument("model_dir", type=Path)
    p.add_argument("--bench", type=Path, required=True)
    p.add_argument("--clean", type=Path, required=True)
    p.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "prepare":
        prepare(args.arm, args.work, args.params)
    elif args.command == "train":
        print(json.dumps(run_train(args.arm, args.work, args.steps, args.params), indent=2))
    else:
        table = score(args.model_dir, args.bench, args.clean)
        record = {"model": str(args.model_dir), "bench": str(args.bench), "table": table}
        text = json.dumps(record, indent=2)
        print(text)
        if args.json:
            args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
