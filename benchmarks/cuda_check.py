"""CUDA check: the training loop and tiled restore run on a GPU and agree with the CPU.

Usage: python benchmarks/cuda_check.py [--steps 200]
Needs a CUDA device and `girml synthesize` to have run (reads data/pairs/). Trains the
params.yaml model with girml.training.train (accelerate picks the GPU), then restores a
512x512 validation-sized image on the GPU and on the CPU with the same weights, and a
12-megapixel image tiled on the GPU. Prints one JSON object: device, training speed and
validation gain, GPU memory peaks, the largest CPU/GPU output difference and restore times.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from girml.artifacts.loading import source_weights
from girml.config import load_section
from girml.core.inference import restore_image
from girml.training.loop import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run this on a GPU machine")

    model_cfg = load_section(args.params, "model")
    cfg = load_section(args.params, "train").model_copy(
        update={"steps": args.steps, "val_every": args.steps, "ckpt_every": args.steps}
    )
    # the quick profile's on-the-fly degradations need the spec (without it train() refuses)
    spec = load_section(args.params, "degradations") if cfg.online_degradation_prob > 0 else None
    init = source_weights(cfg.init_from) if cfg.init_from is not None else None
    torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as ckpt:
        result = train(model_cfg, cfg, Path("data/pairs"), Path(ckpt), spec=spec, init=init)
    train_peak = torch.cuda.max_memory_allocated()

    model = result.model.eval()
    image = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(0))
    on_cpu = restore_image(model, image, tile=None, overlap=0)
    model.cuda()
    on_gpu = restore_image(model, image, tile=None, overlap=0)
    big = torch.rand(1, 3, 3000, 4000, generator=torch.Generator().manual_seed(1))
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    start = time.perf_counter()
    tiled = restore_image(model, big, tile=512, overlap=32, batch_tiles=8)
    torch.cuda.synchronize()
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(0),
                "torch": torch.__version__,
                "train_steps": args.steps,
                "train_samples_per_second": round(result.metrics["samples_per_second"], 1),
                "train_seconds": round(result.metrics["train_seconds"], 1),
                "val_psnr_gain": round(result.metrics["val.psnr_gain"], 3),
                "train_gpu_peak_mib": round(train_peak / 2**20, 1),
                "restore_cpu_gpu_max_abs_diff": float((on_cpu - on_gpu).abs().max()),
                "restore_12mp_seconds": round(time.perf_counter() - start, 2),
                "restore_12mp_gpu_peak_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                "restore_12mp_shape": list(tiled.shape),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
