"""Stage ``train``: the unified model (accelerate), tracked in MLflow, registered as a version.

Writes models/latest/ and metrics/train.json. Checkpoints go to checkpoints/train/: a run that
was killed resumes from the last one when started again with the same config and number of
processes. Under ``torchrun`` or ``accelerate launch`` the ranks train as one process group;
rank 0 alone tracks, registers and writes.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from girml.artifacts.loading import source_weights
from girml.artifacts.registered import log_and_register_model
from girml.artifacts.store import WEIGHTS_FILE, save_model_dir
from girml.config import DegradationsConfig, ModelConfig, TrainConfig
from girml.core.cpu_isa import pin_cpu_isa
from girml.core.hashing import file_digest
from girml.core.imageio import write_text
from girml.core.paths import CHECKPOINT_DIR, MODEL_DIR, PAIRS_DIR, TRAIN_METRICS, TUNED_PARAMS
from girml.models import model_stats
from girml.stages.contract import EXPERIMENT, Echo, StageParams
from girml.tracking.logs import log_metrics
from girml.tracking.provenance import provenance_tags
from girml.tracking.runs import start_run
from girml.tracking.versions import REGISTERED_MODEL, set_version_description, set_version_tags
from girml.training.data import read_pair_records
from girml.training.loop import TrainResult, process_state, train
from girml.training.tracked import log_train_result, log_train_start, version_description

TRAIN_METRIC_KEYS = (
    "val.psnr_y_input",
    "val.psnr_y_model",
    "val.psnr_gain",
    "steps",
    "train_seconds",
)
# the run tags a registered version carries too (with the dvc.data/* hashes)
VERSION_TAG_KEYS = ("git_commit", "git_dirty", "params_hash", "profile", "stage", "init_from")


def run(params: Path, echo: Echo) -> None:
    """Train; on rank 0 also track, register, save models/latest and write train.json."""
    model_cfg, cfg, spec = _configs(StageParams(params, "train"), echo)
    # first, before any kernel runs: the same weights on any x86-64 machine (train.cpu_isa)
    isa = pin_cpu_isa(None if torch.cuda.is_available() else cfg.cpu_isa)
    data = check_pairs(PAIRS_DIR)  # before the MLflow run, which a missing file would end FAILED
    ranks = process_state()
    if ranks.num_processes > 1:  # torchrun starts ranks in sessions of their own: end with it
        from girml.core.process import end_with_parent

        end_with_parent(os.getppid())
    if not ranks.is_main_process:  # under a launcher: rank 0 tracks and saves
        train(model_cfg, cfg, PAIRS_DIR, CHECKPOINT_DIR, spec=spec, init=_init(cfg))
        return
    tags = _run_tags(params, cfg, ranks.num_processes)
    result, run_id, version = _train_tracked(model_cfg, cfg, spec, tags)
    describe_version(version, result, tags, data)
    metrics = _train_metrics(result, run_id, version, tags["hardware"])
    metrics["cpu_isa"] = isa
    write_text(TRAIN_METRICS, json.dumps(metrics, indent=2) + "\n")
    echo(
        f"val PSNR-Y {metrics['val.psnr_y_input']:.2f} -> {metrics['val.psnr_y_model']:.2f} dB "
        f"(gain {metrics['val.psnr_gain']:+.2f}) after {int(metrics['steps'])} steps, "
        f"{metrics['train_seconds']:.0f} s; registered gir-restorer version {version}"
    )


def check_pairs(pairs_dir: Path) -> dict[str, tuple[int, int]]:
    """Check that the pairs training reads are there (``train/`` and ``val/pairs.jsonl``, each
    with at least one valid record) before anything starts.

    Returns:
        split -> ``(pairs, source photos)``: the number of records and of distinct
        ``source_id`` values (0 when the records do not name their photo).

    Raises:
        FileNotFoundError: a ``pairs.jsonl`` is missing (the message names it and says to run
            ``girml synthesize``).
        ValueError: a bad record or an empty file (the message names the file and line).
    """
    counts: dict[str, tuple[int, int]] = {}
    for split in ("train", "val"):
        jsonl = pairs_dir / split / "pairs.jsonl"
        pairs = len(read_pair_records(jsonl))
        with jsonl.open(encoding="utf-8") as lines:  # valid JSON: read_pair_records checked
            sources = {json.loads(line).get("source_id") for line in lines if line.strip()}
        counts[split] = (pairs, len(sources - {None}))
    return counts


def describe_version(
    version: int, result: TrainResult, tags: dict[str, str], data: dict[str, tuple[int, int]]
) -> None:
    """Give the registered version the run's provenance tags (:data:`VERSION_TAG_KEYS` and the
    ``dvc.data/*`` hashes) and a description (:func:`~girml.training.tracked.version_description`).
    """
    set_version_tags(
        REGISTERED_MODEL,
        version,
        {k: v for k, v in tags.items() if k in VERSION_TAG_KEYS or k.startswith("dvc.data/")},
    )
    description = version_description(
        result,
        data,
        hardware=tags["hardware"],
        profile=tags.get("profile"),
        init_from=tags.get("init_from"),
    )
    set_version_description(REGISTERED_MODEL, version, description)


def _configs(
    reads: StageParams, echo: Echo
) -> tuple[ModelConfig, TrainConfig, DegradationsConfig | None]:
    """model/train sections (with tune/best.yaml laid over when train.use_tuned asks) and the
    degradation spec when training degrades on the fly."""
    model_cfg = reads.section("model")
    cfg = reads.section("train")
    if cfg.use_tuned and TUNED_PARAMS.is_file():
        from girml.tuning.results import tuned_configs

        model_cfg, cfg = tuned_configs(reads.raw("model"), reads.raw("train"), TUNED_PARAMS)
        echo(f"using tuned model/train overrides from {TUNED_PARAMS}", err=True)
    spec = reads.section("degradations") if cfg.online_degradation_prob > 0 else None
    return model_cfg, cfg, spec


def _init(cfg: TrainConfig) -> dict[str, torch.Tensor] | None:
    """The weights ``train.init_from`` names, loaded before the checkpoint folder is touched (a
    bad source changes nothing), or None to start from scratch.

    Raises:
        ValueError: the source cannot be loaded (the message names it).
    """
    return source_weights(cfg.init_from) if cfg.init_from is not None else None


def _run_tags(params: Path, cfg: TrainConfig, world_size: int) -> dict[str, str]:
    """The MLflow run's tags: provenance, hardware, world size and a fine-tune's source."""
    tags = {
        **provenance_tags(Path.cwd(), params),
        "stage": "train",
        "hardware": hardware(),
        "world_size": str(world_size),
    }
    if cfg.init_from is not None:  # fine-tuned: the source is part of the provenance
        tags["init_from"] = cfg.init_from
    return tags


def _train_tracked(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    spec: DegradationsConfig | None,
    tags: dict[str, str],
) -> tuple[TrainResult, str, int]:
    """Train inside an MLflow run, log the final metrics and curves, register the model and
    save models/latest. Returns the result, the run id and the registered version."""
    with start_run(EXPERIMENT, Path.cwd(), run_name="train", tags=tags) as run:
        log_train_start(model_cfg, cfg)
        result = train(
            model_cfg,
            cfg,
            PAIRS_DIR,
            CHECKPOINT_DIR,
            spec=spec,
            on_log=log_metrics,
            on_validate=log_metrics,
            init=_init(cfg),
            on_curve=log_metrics,
        )
        stats = model_stats(result.model, 256, 256)
        log_train_result(result, stats)
        example = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
        version = log_and_register_model(result.model, example, model_cfg=model_cfg)
        # only what config and data determine, so a rerun elsewhere gives the same bytes;
        # the run-specific record goes to metrics/train.json's "run" (artifacts.training_run)
        save_model_dir(result.model, model_cfg, MODEL_DIR, extra={"train": cfg, "stats": stats})
    return result, run.info.run_id, version


def _train_metrics(result: TrainResult, run_id: str, version: int, hw: str) -> dict[str, Any]:
    """metrics/train.json: the headline metrics, the run's record and the per-family gains."""
    metrics: dict[str, Any] = {k: result.metrics[k] for k in TRAIN_METRIC_KEYS}
    metrics["run"] = {
        "weights_sha256": file_digest(MODEL_DIR / WEIGHTS_FILE),
        "mlflow_run_id": run_id,
        "registered_version": version,
        "hardware": hw,
        "samples_per_second": result.metrics["samples_per_second"],
        "world_size": result.world_size,
        "rank_weights_sha256": result.rank_digests,
    }
    metrics["per_family"] = {
        fam: {
            "psnr_y_input": v["psnr_y_input"],
            "psnr_y_model": v["psnr_y_model"],
            "psnr_gain": v["psnr_y_model"] - v["psnr_y_input"],
            "n": v["n"],
        }
        for fam, v in sorted(result.per_family.items())
    }
    metrics["selection"] = result.selection
    return metrics


def hardware() -> str:
    """What trains: the GPU's name, or the CPU's model and core count."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores (CPU)"
