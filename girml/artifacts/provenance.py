"""Where a release comes from: its training run, git and DVC state, data and degradation spec.

:func:`release_provenance` gathers what the MLflow run (tags, params, metrics), the model
folder's training record, ``dvc.lock`` (:mod:`.dvc_lock`) and the working tree's data say about
how a model was made, into the :class:`Provenance` that the release's ``config.yaml`` and card
show, with a note wherever they disagree (data or spec changed since training). Both are
committed to git, so paths in them are made portable (:func:`portable_text`): relative to the
project, or a ``path/to/<name>`` placeholder for a file outside it.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from torch import nn

from girml.artifacts.dvc_lock import lock_out_md5, lock_stage, read_lock
from girml.artifacts.training_run import TrainingRun
from girml.config import DegradationsConfig, ModelConfig
from girml.core.hashing import file_digest


def spec_sha256(spec: DegradationsConfig) -> str:
    """sha256 of the canonical JSON of a degradation spec (sorted keys, no spaces, defaults in).

    Two YAML spellings of the same spec (key order, omitted defaults) hash the same.
    """
    canonical = json.dumps(
        spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# An absolute path in free text: a "/" that starts the text or follows a space, quote, "=" or
# "(", up to the next space, quote or ")"
_ABSOLUTE_PATH = re.compile(r"(?<![^\s'\"`(=])/[^\s'\"`)]+")
PLACEHOLDER_DIR = "path/to"  # where a file outside the project is said to be


def portable_text(text: str, project_root: Path) -> str:
    """``text`` (a command line, a note) with no path of this machine in it.

    Paths under ``project_root`` become relative to it (``sqlite:////home/me/girml/mlflow.db``
    -> ``sqlite:///mlflow.db``); any other absolute path becomes ``path/to/<its name>``
    (``--real-photos /work/long/real.json`` -> ``--real-photos path/to/real.json``).
    """
    root = str(Path(os.path.abspath(project_root))).rstrip("/")
    if root:
        text = text.replace(root + "/", "")

    def placeholder(match: re.Match[str]) -> str:
        path = match.group(0)
        if path.rstrip("/") == root:
            return "."
        name = Path(path).name
        return f"{PLACEHOLDER_DIR}/{name}" if name else PLACEHOLDER_DIR

    return _ABSOLUTE_PATH.sub(placeholder, text)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TrainingData(_Record):
    """The training data as the working tree holds it at release time.

    Attributes:
        manifest: the clean set's manifest path; ``manifest_sha256`` its hash (None if absent).
        n_clean_train: photos of split ``train`` (None without a manifest).
        clean_train_ids: their ids (content hashes), sorted.
        clean_train_ids_sha256: sha256 of the sorted ids joined by newlines.
        pairs: the training pairs' ``pairs.jsonl``; ``pairs_sha256`` its hash.
        n_train_pairs: its records (None when absent).
        package_pins_sha256: sha256 of the package pin file when the manifest holds package
            images (``girml/data/package_photos.csv``).
        photo_credits: author and licence of each package image of the manifest
            (:func:`girml.data.packages.package_credits`).
        sources: photos per split of each named photo set (:func:`photo_set`), e.g.
            ``{"skimage.data": {"train": 8, "test": 3}}``.
    """

    manifest: str
    manifest_sha256: str | None = None
    n_clean_train: int | None = None
    clean_train_ids: list[str] = []
    clean_train_ids_sha256: str | None = None
    pairs: str
    pairs_sha256: str | None = None
    n_train_pairs: int | None = None
    package_pins_sha256: str | None = None
    photo_credits: list[dict[str, str]] = []
    sources: dict[str, dict[str, int]] = {}


BUILTIN_SETS = {"skimage": "skimage.data", "sklearn": "sklearn.datasets.images"}


def photo_set(source: str, origin: str) -> str:
    """The name of the photo set a manifest row comes from.

    ``skimage.data`` and ``sklearn.datasets.images`` (the ``builtin`` photos that
    scikit-image and scikit-learn ship), ``debian:<package>`` (a ``packages`` image), or the
    source type itself for the user's own photos (``folder``, ``s3``, ``urls``).
    """
    from girml.data.sources import BUILTIN_IMAGES

    if source == "builtin" and origin in BUILTIN_IMAGES:
        package = BUILTIN_IMAGES[origin].package
        return BUILTIN_SETS.get(package, package)
    if source == "packages":
        return f"debian:{origin.partition(':')[0]}"
    return source


def _photo_sets(manifest: Path) -> dict[str, dict[str, int]]:
    """Photos per split of each :func:`photo_set` in ``manifest``, sets and splits sorted."""
    counts: dict[str, dict[str, int]] = {}
    with manifest.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            name = photo_set(row.get("source") or "", row.get("origin") or "")
            split = counts.setdefault(name, {})
            split[row["split"]] = split.get(row["split"], 0) + 1
    return {name: dict(sorted(splits.items())) for name, splits in sorted(counts.items())}


def training_data(manifest: Path, pairs_jsonl: Path) -> TrainingData:
    """Summarise ``data/clean/manifest.csv`` (split ``train``) and ``data/pairs/train/pairs.jsonl``.

    Missing files leave their fields None.

    Raises:
        ValueError: a manifest without ``id``/``split`` columns (the message names it).
    """
    from girml.data.packages import DEFAULT_PIN_FILE, package_credits
    from girml.data.records import TrainPair, read_jsonl
    from girml.data.synthesize import read_manifest

    fields: dict[str, Any] = {"manifest": str(manifest), "pairs": str(pairs_jsonl)}
    if manifest.is_file():
        try:
            ids = sorted(
                im.id for im in read_manifest(manifest, manifest.parent) if im.split == "train"
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{manifest}: not a clean-set manifest ({exc})") from None
        fields |= {
            "manifest_sha256": file_digest(manifest),
            "n_clean_train": len(ids),
            "clean_train_ids": ids,
            "clean_train_ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
            "sources": _photo_sets(manifest),
        }
        credits = package_credits(manifest)
        if credits:
            fields |= {
                "package_pins_sha256": file_digest(DEFAULT_PIN_FILE),
                "photo_credits": credits,
            }
    if pairs_jsonl.is_file():
        fields |= {
            "pairs_sha256": file_digest(pairs_jsonl),
            "n_train_pairs": len(read_jsonl(pairs_jsonl, TrainPair)),
        }
    return TrainingData(**fields)


class Provenance(_Record):
    """Where a release comes from; ``"not recorded"`` or None where the source did not say.

    Attributes:
        source: the ``--model`` it was exported from (URI or folder).
        registered_model, registered_version, run_id: its registry entry and training run.
        git_commit, git_dirty, params_hash: the training run's provenance tags.
        train_command: how it was trained; ``init_from``: the model it was fine-tuned from.
        profile: the profile laid over ``params.yaml`` for the training (``girml profile
            <profile>``), from ``girml release --profile`` or the run's ``profile`` tag; None
            when neither says (the card then points to ``params.yaml`` as committed).
        release_command: the command that wrote this release.
        steps, train_seconds, hardware: from the training run (or ``metrics/train.json``,
            or, for older folders, the model folder).
        degradation_spec_sha256: :func:`spec_sha256` of the ``degradations`` section;
            ``degradation_spec_source`` says which file it was read from.
        dvc_hashes: ``dvc.lock`` output hashes recorded on the training run.
        data: the training data (:class:`TrainingData`).
        notes: inconsistencies found while collecting all this.
    """

    source: str
    registered_model: str | None = None
    registered_version: int | None = None
    run_id: str | None = None
    git_commit: str = "unknown"
    git_dirty: str = "unknown"
    params_hash: str | None = None
    train_command: str = "not recorded"
    init_from: str | None = None
    profile: str | None = None
    release_command: str
    steps: int | None = None
    train_seconds: float | None = None
    hardware: str = "not recorded"
    degradation_spec_sha256: str
    degradation_spec_source: str
    dvc_hashes: dict[str, str] = {}
    data: TrainingData
    notes: list[str] = []


@dataclass(frozen=True)
class ReleaseSource:
    """A model to release and what is known about how it was made (the MLflow run's tags,
    params and metrics; the model folder's ``config.yaml`` and training run record)."""

    model: nn.Module
    model_cfg: ModelConfig
    version: int | None
    run_id: str | None
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    folder_config: dict[str, Any]
    notes: list[str]
    run: TrainingRun | None = None


def _number(*values: Any) -> float | None:
    for value in values:
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
    return None


def _hardware(src: ReleaseSource) -> str:
    recorded = src.tags.get("hardware") or (src.run.hardware if src.run else None)
    if recorded:
        return str(recorded)
    gpus = {k.split("_")[1] for k in src.metrics if k.startswith("system/gpu_")}
    if gpus:
        return f"{len(gpus)} GPU(s) (from the run's MLflow system metrics; model not recorded)"
    if any(k.startswith("system/cpu_") for k in src.metrics):
        return "CPU only (from the run's MLflow system metrics; model not recorded)"
    return "not recorded"


def _data_drift_notes(dvc_hashes: Mapping[str, str], lock: Mapping[str, Any]) -> list[str]:
    """A note per trained-on data output whose ``dvc.lock`` md5 has changed since."""
    notes = []
    for path, trained_md5 in dvc_hashes.items():
        stage = "collect" if path.startswith("data/clean") else "synthesize"
        now = lock_out_md5(lock, stage, path)
        if now is not None and now != trained_md5:
            notes.append(
                f"{path} in this working tree (dvc.lock md5 {now}) is not the data the model was "
                f"trained on (md5 {trained_md5}): the training data summary describes the "
                "working tree"
            )
    return notes


def _spec_drift_notes(lock: Mapping[str, Any], spec_hash: str, spec_source: str) -> list[str]:
    """A note when the spec in ``spec_source`` differs from the one that synthesized the data."""
    synthesized = (lock_stage(lock, "synthesize").get("params") or {}).get("params.yaml") or {}
    if not isinstance(synthesized.get("degradations"), dict):
        return []
    try:
        locked = spec_sha256(DegradationsConfig.model_validate(synthesized["degradations"]))
    except ValueError:
        return []
    if locked == spec_hash:
        return []
    return [
        f"the degradations of {spec_source} (sha256 {spec_hash[:12]}...) differ "
        f"from those that synthesized data/pairs (dvc.lock, sha256 {locked[:12]}...)"
    ]


def _train_command(lock: Mapping[str, Any], src: ReleaseSource) -> str:
    """The train stage's command from ``dvc.lock``, else ``girml train`` for a trained model."""
    train_cmd = lock_stage(lock, "train").get("cmd")
    if not train_cmd and (src.tags.get("stage") == "train" or src.folder_config):
        train_cmd = "girml train"
    return str(train_cmd or "not recorded")


def release_provenance(
    src: ReleaseSource,
    source: str,
    *,
    dvc_lock: Path,
    spec: DegradationsConfig,
    spec_source: str,
    manifest: Path,
    pairs_jsonl: Path,
    command: str,
    profile: str | None = None,
    project_root: Path | None = None,
) -> Provenance:
    """Everything known of how ``src`` was made, with notes where the working tree drifted.

    Args:
        src: the model and its run (:func:`girml.artifacts.make_release.open_source`).
        source: the ``--model`` it was exported from.
        dvc_lock: ``dvc.lock`` (training command, data hashes, the spec that synthesized data).
        spec, spec_source: the ``degradations`` section and the file it came from.
        manifest, pairs_jsonl: the clean set's manifest and the training pairs.
        command: the command line writing the release.
        profile: the profile the model was trained with, as ``girml release --profile`` gave
            it; else the run's ``profile`` tag (a note when the two differ).
        project_root: when given, paths in the source, the command, the notes and the data
            files are made portable (:func:`portable_text`).
    """
    from girml.tracking.versions import REGISTERED_MODEL

    lock = read_lock(dvc_lock)
    dvc_hashes = {
        key.removeprefix("dvc."): value
        for key, value in sorted(src.tags.items())
        if key.startswith("dvc.data/")
    }
    spec_hash = spec_sha256(spec)
    notes = [
        *src.notes,
        *_data_drift_notes(dvc_hashes, lock),
        *_spec_drift_notes(lock, spec_hash, spec_source),
    ]
    tagged = src.tags.get("profile") or None
    # --profile names a file (profiles/long.yaml), the tag a name (long; long+study)
    if profile and tagged and [Path(x).stem for x in profile.split("+")] != tagged.split("+"):
        notes.append(
            f"--profile {profile} differs from the training run's profile tag {tagged}: "
            "the card shows the former"
        )
    run = src.run or TrainingRun(source=Path(source))
    steps = _number(src.metrics.get("steps"), run.steps)
    provenance = Provenance(
        source=source,
        registered_model=REGISTERED_MODEL if src.version is not None else None,
        registered_version=src.version,
        run_id=src.run_id,
        git_commit=src.tags.get("git_commit", "unknown"),
        git_dirty=src.tags.get("git_dirty", "unknown"),
        params_hash=src.tags.get("params_hash"),
        train_command=_train_command(lock, src),
        init_from=src.tags.get("init_from")
        or (src.folder_config.get("train") or {}).get("init_from"),
        profile=profile or tagged,
        release_command=command,
        steps=None if steps is None else int(steps),
        train_seconds=_number(src.metrics.get("train_seconds"), run.train_seconds),
        hardware=_hardware(src),
        degradation_spec_sha256=spec_hash,
        degradation_spec_source=spec_source,
        dvc_hashes=dvc_hashes,
        data=training_data(manifest, pairs_jsonl),
        notes=notes,
    )
    return provenance if project_root is None else _portable(provenance, project_root)


def _portable(provenance: Provenance, project_root: Path) -> Provenance:
    """``provenance`` with :func:`portable_text` paths in its commands, notes and file names."""
    portable = functools.partial(portable_text, project_root=project_root)
    data = provenance.data
    return provenance.model_copy(
        update={
            "source": portable(provenance.source),
            "release_command": portable(provenance.release_command),
            "train_command": portable(provenance.train_command),
            "init_from": None if provenance.init_from is None else portable(provenance.init_from),
            "notes": [portable(note) for note in provenance.notes],
            "data": data.model_copy(
                update={"manifest": portable(data.manifest), "pairs": portable(data.pairs)}
            ),
        }
    )
