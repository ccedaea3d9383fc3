"""Where the search's Ray Tune experiment lives, and whether it resumes.

Results go to ``tune.storage_path/gir-tune`` (default ``<work_dir>/ray_results``), a local folder
or ``s3://bucket/prefix`` through pyarrow; for an S3-compatible server set ``AWS_ENDPOINT_URL``
(read by pyarrow >= 15) and the usual AWS credentials.

Resuming: the experiment name is fixed and a fingerprint of the search (the tune config, the
base configs and the training/validation pairs) is stored beside Ray's state. When an
experiment with the same fingerprint can be restored, :func:`make_tuner` restores it: finished
trials are kept, unfinished ones restart and resume from their training checkpoints in
``<work_dir>/trials/<trial id>``. Anything else is wiped and the search starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.fs
from ray import tune as ray_tune

from girml.config import DegradationsConfig, ModelConfig, TrainConfig, TuneConfig
from girml.training.checkpoints import UNFINGERPRINTED
from girml.tuning.searchers import make_scheduler, make_searcher, param_space
from girml.tuning.space import default_params
from girml.tuning.trial import TUNE_METRIC, TrialJob, run_trial

EXPERIMENT = "gir-tune"
FINGERPRINT_FILE = "girml-search.json"
# tune fields that do not change what the search computes
UNFINGERPRINTED_TUNE = {
    "address",
    "storage_path",
    "time_budget_s",
    "cpus_per_trial",
    "gpus_per_trial",
}


def storage_uri(cfg: TuneConfig, work_dir: Path) -> str:
    """Where Ray keeps results: ``tune.storage_path`` (a URI, or a folder made absolute) or
    ``<work_dir>/ray_results``."""
    path = cfg.storage_path or str(work_dir / "ray_results")
    return path.rstrip("/") if "://" in path else str(Path(path).resolve())


def _read_text(uri: str) -> str | None:
    fs, path = pyarrow.fs.FileSystem.from_uri(uri)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(path) as fh:
        return fh.read().decode("utf-8")


def _write_text(uri: str, text: str) -> None:
    fs, path = pyarrow.fs.FileSystem.from_uri(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as fh:
        fh.write(text.encode("utf-8"))


def _delete_dir(uri: str) -> None:
    fs, path = pyarrow.fs.FileSystem.from_uri(uri)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
        fs.delete_dir(path)


def search_fingerprint(
    cfg: TuneConfig,
    base_model: ModelConfig,
    base_train: TrainConfig,
    pairs_dir: Path,
    spec: DegradationsConfig | None,
) -> str:
    """sha256 over what the search computes: the tune config (minus where and how fast it
    runs), the base configs (minus reporting cadence), the pairs manifests and the spec."""
    doc = {
        "tune": cfg.model_dump(mode="json", exclude=UNFINGERPRINTED_TUNE),
        "model": base_model.model_dump(mode="json"),
        "train": base_train.model_dump(mode="json", exclude=set(UNFINGERPRINTED)),
        "pairs": {
            split: hashlib.sha256((pairs_dir / split / "pairs.jsonl").read_bytes()).hexdigest()
            for split in ("train", "val")
        },
        "spec": None if spec is None else spec.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def make_tuner(job: TrialJob, storage: str, fingerprint: str) -> tuple[ray_tune.Tuner, bool]:
    """Restore the stored experiment if its fingerprint matches, else start a fresh one."""
    cfg = job.cfg
    trainable = ray_tune.with_resources(
        ray_tune.with_parameters(run_trial, job=job),
        {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial},
    )
    experiment = f"{storage}/{EXPERIMENT}"
    marker = f"{experiment}/{FINGERPRINT_FILE}"
    if ray_tune.Tuner.can_restore(experiment) and _read_text(marker) == fingerprint:
        restored = ray_tune.Tuner.restore(
            experiment, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
        return restored, True
    _delete_dir(experiment)
    shutil.rmtree(job.trials_dir, ignore_errors=True)
    _write_text(marker, fingerprint)
    default = default_params(cfg.space, job.base_model, job.base_train)
    tuner = ray_tune.Tuner(
        trainable,
        param_space=param_space(cfg.space),
        tune_config=ray_tune.TuneConfig(
            metric=TUNE_METRIC,
            mode="max",
            search_alg=make_searcher(cfg, default),
            scheduler=make_scheduler(cfg),
            num_samples=cfg.num_samples + 1,  # + the default reference
            time_budget_s=cfg.time_budget_s,
        ),
        run_config=ray_tune.RunConfig(
            name=EXPERIMENT,
            storage_path=storage,
            failure_config=ray_tune.FailureConfig(max_failures=0),
            verbose=1,
        ),
    )
    return tuner, False
