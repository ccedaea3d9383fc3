"""The ``girml release`` verb: load a model, gather its provenance and metrics, export it.

:func:`make_release` opens the model to release (a registered version or a model folder, with
its MLflow run when reachable: :func:`open_source`), reads the evaluate stage's metrics for the
card (:mod:`.card_metrics`), collects the provenance (:mod:`.provenance`), checks fp16 storage
when asked (:mod:`.fp16`) and writes the release folder (:func:`.release.export_release`).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from girml.artifacts.fp16 import Fp16Check, measure_fp16
from girml.artifacts.provenance import (
    Provenance,
    ReleaseSource,
    portable_text,
    release_provenance,
)
from girml.artifacts.release import (
    MAX_RELEASE_BYTES,
    ReleaseResult,
    export_release,
    is_release_dir,
)
from girml.artifacts.store import CONFIG_FILE, load_model_dir, read_model_config
from girml.artifacts.training_run import training_run
from girml.config import DegradationsConfig, ModelConfig, parse_section

if TYPE_CHECKING:
    from girml.artifacts.card import Coverage
    from girml.artifacts.card_metrics import CardMetrics
    from girml.artifacts.real_photos import RealPhotos


@dataclass(frozen=True)
class ReleaseInputs:
    """The project files a release reads (the CLI passes the paths of ``dvc.yaml``).

    Attributes:
        eval_json, per_family_csv: the evaluate stage's metrics.
        manifest, pairs_jsonl: the clean set's manifest and the training pairs.
        bench_dir: the benchmark (needed only for the fp16 check).
        dvc_lock: ``dvc.lock`` (training command, data hashes, the spec that synthesized data).
        spec, spec_source: the ``degradations`` section and the file it came from.
        unseen_content_category: ``synthesize.unseen_content_category``.
        crop_border, tile: ``evaluate.crop_border`` and ``evaluate.tile`` for the fp16 check.
        train_metrics: the train stage's ``metrics/train.json``: the run record (MLflow run,
            version, hardware, timings) of a model folder whose weights it describes.
    """

    eval_json: Path
    per_family_csv: Path
    manifest: Path
    pairs_jsonl: Path
    bench_dir: Path
    dvc_lock: Path
    spec: DegradationsConfig
    spec_source: str
    unseen_content_category: str | list[str] | None = None
    crop_border: int = 0
    tile: int | None = None
    train_metrics: Path | None = None


def open_source(
    source: str, project_root: Path, train_metrics: Path | None = None
) -> ReleaseSource:
    """Load ``source`` (a registry URI or a model folder) and its MLflow run, if reachable.

    Raises:
        ValueError: no store or no such version for a URI, the shipped release's own version,
            or a folder that already is a release.
    """
    from girml.artifacts.loading import URI_PATTERN

    if URI_PATTERN.match(source):
        return _open_version(source, project_root)
    return _open_folder(Path(source), project_root, train_metrics)


def _open_version(source: str, project_root: Path) -> ReleaseSource:
    """A registered version (``models:/...``) and its training run."""
    from girml.artifacts.registered import load_logged_model, model_config_from_params
    from girml.tracking.registry import is_release_version
    from girml.tracking.runs import run_record
    from girml.tracking.store import configure, store_exists, tracking_uri
    from girml.tracking.versions import REGISTERED_MODEL, model_version_of

    if not store_exists(project_root):  # do not create an empty one to look
        raise ValueError(f"{source}: no MLflow store ({tracking_uri(project_root)})")
    configure(project_root)
    found = model_version_of(source)
    if found is None:
        raise ValueError(f"{source}: not a registered version in {REGISTERED_MODEL}")
    version, run_id = found
    if is_release_version(version):
        raise ValueError(
            f"{source} is version {version}, the shipped release itself (registered from "
            "models/release): there is nothing new to release; release a trained version"
        )
    record = run_record(run_id)
    model = load_logged_model(source)  # weights plus config; pickles are refused
    model_cfg = model_config_from_params(record.params, source)
    return ReleaseSource(
        model, model_cfg, version, run_id, record.tags, record.params, record.metrics, {}, []
    )


def _open_folder(folder: Path, project_root: Path, train_metrics: Path | None) -> ReleaseSource:
    """A model folder, its training run record and, when the store has it, its MLflow run."""
    if is_release_dir(folder):
        raise ValueError(f"{folder} is already a release: copy the folder instead")
    model = load_model_dir(folder)
    config = read_model_config(folder)
    model_cfg = parse_section(
        config["model"], "model", ModelConfig, source=str(folder / CONFIG_FILE)
    )
    run = training_run(folder, train_metrics)
    version, run_id = run.registered_version, run.mlflow_run_id
    notes: list[str] = []
    tags: dict[str, str] = {}
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    if run_id is not None:
        from girml.tracking.runs import run_record
        from girml.tracking.store import configure, store_exists, tracking_uri

        if store_exists(project_root):
            configure(project_root)
            try:
                record = run_record(run_id)
                tags, params, metrics = record.tags, record.params, record.metrics
            except ValueError as exc:
                notes.append(f"{exc}; provenance from {run.source} only")
        else:
            notes.append(
                f"no MLflow store ({tracking_uri(project_root)}): provenance from {run.source} only"
            )
    return ReleaseSource(
        model, model_cfg, version, run_id, tags, params, metrics, config, notes, run
    )


def _read_eval_json(path: Path) -> dict[str, Any]:
    """The evaluate stage's ``eval.json``.

    Raises:
        FileNotFoundError: it is missing (the message says to run evaluate).
        ValueError: it is not valid JSON.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro evaluate` first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def _card_metrics_of(
    src: ReleaseSource,
    source: str,
    eval_metrics: Mapping[str, Any],
    per_family: list[dict[str, Any]],
) -> CardMetrics:
    """The card's numbers for ``src``'s version, against the classical baselines evaluated."""
    from girml.artifacts.card_metrics import card_metrics, method_for_version
    from girml.baselines import BASELINES

    method = method_for_version(eval_metrics, src.version, source)
    classical = [m for m in dict.fromkeys(r["method"] for r in per_family) if m in BASELINES]
    return card_metrics(per_family, method, classical, eval_metrics)


def _coverage(src: ReleaseSource, inputs: ReleaseInputs) -> Coverage:
    """What the training data spans: the spec, the held-out category and the patch size."""
    from girml.artifacts.card import Coverage

    patch = src.params.get("train.patch_size") or (src.folder_config.get("train") or {}).get(
        "patch_size"
    )
    return Coverage.from_spec(
        inputs.spec, inputs.unseen_content_category, int(patch) if patch is not None else None
    )


def _checked_fp16(src: ReleaseSource, inputs: ReleaseInputs) -> Fp16Check:
    """:func:`~girml.artifacts.fp16.measure_fp16` on the benchmark.

    Raises:
        ValueError: fp16 storage changes a suite by more than the tolerance.
    """
    check = measure_fp16(
        src.model, src.model_cfg, inputs.bench_dir, inputs.crop_border, inputs.tile
    )
    if not check.ok:
        raise ValueError(f"fp16 storage refused: {check.describe()}")
    return check


def profile_name(profile: Path, project_root: Path) -> str:
    """The profile a release names, relative to the project (``profiles/release.yaml``).

    Profiles laid one over another are joined by ``+``, in the order they were applied
    (``profiles/release.yaml+profiles/finetune.yaml``); each must exist.

    Raises:
        FileNotFoundError: no such file (a reproduction command must name one that exists).
        ValueError: a file outside the project (a clone would not have it).
    """
    return "+".join(_one_profile(Path(part), project_root) for part in str(profile).split("+"))


def _one_profile(profile: Path, project_root: Path) -> str:
    path = profile if profile.is_absolute() else project_root / profile
    if not path.is_file():
        raise FileNotFoundError(f"--profile {profile}: no such file (e.g. profiles/long.yaml)")
    try:
        return path.resolve().relative_to(project_root.resolve()).as_posix()
    except ValueError:
        raise ValueError(
            f"--profile {profile} is outside the project {project_root}: a clone would not "
            "have it; commit it under profiles/"
        ) from None


def release_command(
    model: str,
    out: Path,
    project_root: Path,
    *,
    fp16: bool = False,
    real_photos: Path | None = None,
    profile: str | None = None,
) -> str:
    """The ``girml release`` command line as the provenance records it: no path of this
    machine (:func:`~girml.artifacts.provenance.portable_text`)."""
    args = ["girml", "release", "--model", model, "-o", str(out)]
    args += ["--fp16"] if fp16 else []
    args += ["--real-photos", str(real_photos)] if real_photos is not None else []
    args += ["--profile", profile] if profile else []
    return portable_text(shlex.join(args), project_root)


def make_release(
    source: str,
    out_dir: Path,
    inputs: ReleaseInputs,
    project_root: Path,
    *,
    fp16: bool = False,
    real_photos: RealPhotos | None = None,
    command: str = "girml release",
    profile: str | None = None,
    max_bytes: int = MAX_RELEASE_BYTES,
) -> tuple[ReleaseResult, Provenance, CardMetrics]:
    """The ``girml release`` verb: load a model, collect provenance and metrics, export it.

    Args:
        source: ``models:/gir-restorer@champion``, ``models:/gir-restorer/<version>`` or a
            model folder written by ``girml train`` (``inputs.train_metrics`` names the run).
        out_dir: the release folder, e.g. ``models/release``.
        inputs: the project files to read (:class:`ReleaseInputs`).
        project_root: where the default MLflow store lives.
        fp16: store float16 weights if :func:`~girml.artifacts.fp16.measure_fp16` allows it.
        real_photos: :func:`~girml.artifacts.real_photos.read_real_photos` of the released
            weights, for the card.
        command: the command line, recorded in the provenance (:func:`release_command`).
        profile: the profile the model was trained with (:func:`profile_name`), for the
            card's reproduction commands; else the training run's ``profile`` tag, if any.
        max_bytes: the largest allowed release folder.

    Returns:
        What was written, the provenance and the card's metrics.

    Raises:
        FileNotFoundError: a missing model folder, ``eval.json``, ``per_family.csv`` or (with
            ``fp16``) benchmark.
        ValueError: the metrics describe another version, fp16 was refused (the message gives
            the measured changes), ``real_photos`` describe other weights, the release is too
            large, or the model does not rebuild.
    """
    from girml.artifacts.card_metrics import read_per_family

    eval_metrics = _read_eval_json(inputs.eval_json)
    per_family = read_per_family(inputs.per_family_csv)
    src = open_source(source, project_root, inputs.train_metrics)
    metrics = _card_metrics_of(src, source, eval_metrics, per_family)
    provenance = release_provenance(
        src,
        source,
        dvc_lock=inputs.dvc_lock,
        spec=inputs.spec,
        spec_source=inputs.spec_source,
        manifest=inputs.manifest,
        pairs_jsonl=inputs.pairs_jsonl,
        command=command,
        profile=profile,
        project_root=project_root,
    )
    if real_photos is not None and real_photos.command:  # the card shows it: no machine paths
        portable = portable_text(real_photos.command, project_root)
        real_photos = real_photos.model_copy(update={"command": portable})
    coverage = _coverage(src, inputs)
    check = _checked_fp16(src, inputs) if fp16 else None
    result = export_release(
        src.model,
        src.model_cfg,
        out_dir,
        provenance=provenance,
        metrics=metrics,
        coverage=coverage,
        fp16_check=check,
        real_photos=real_photos,
        max_bytes=max_bytes,
    )
    return result, provenance, metrics
