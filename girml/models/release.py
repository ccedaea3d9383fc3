"""The release model (``girml release``): safetensors weights, ``config.yaml``, ``MODEL_CARD.md``.

``models/release/`` is the one folder of weights committed to git, so that a fresh clone restores
photos with no training. Its format:

- ``model.safetensors``: the ``state_dict`` tensors (float32, or float16 when that changes no
  benchmark suite's mean PSNR-Y by more than :data:`FP16_TOLERANCE_DB`).
- ``config.yaml``: ``format`` (:data:`FORMAT`), ``model`` (the
  :class:`~girml.config.ModelConfig`), ``weights`` (file, dtype, bytes, sha256), ``provenance``
  (:class:`Provenance`), ``metrics`` (suite means and harm) and ``fp16_check``.
- ``MODEL_CARD.md``: provenance, metrics against identity and the best classical method, harm,
  known limits (:mod:`girml.models.card`) and, with ``--real-photos``, the scores of
  ``benchmarks/real_photos.py`` on these very weights (:class:`RealPhotos`).

Loading (:func:`load_release`) reads tensors with ``safetensors`` and YAML with ``safe_load``,
checks the header's shapes against the config, builds the network with
:func:`~girml.models.build_model` and loads the tensors strictly: nothing is unpickled.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from girml.config import CLEAN_FAMILY, DegradationsConfig, ModelConfig, parse_section
from girml.hashing import file_digest
from girml.imageio import staged_dir
from girml.models import build_model
from girml.models.store import (
    CONFIG_FILE,
    TrainingRun,
    build_from_config,
    read_model_config,
    training_run,
    weights_mismatch,
)

if TYPE_CHECKING:
    from girml.evaluation.harness import Bench
    from girml.models.card import CardMetrics, Coverage

FORMAT = "girml-release/1"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "MODEL_CARD.md"
MAX_RELEASE_BYTES = 8 * 1024 * 1024  # the whole folder: it is committed to git
FP16_TOLERANCE_DB = 0.01
_DTYPES = {"float32": torch.float32, "float16": torch.float16}
_LISTED_IDS = 16  # the card lists at most this many photo ids; config.yaml has them all
REAL_MODEL = "model"  # the released model's method name in benchmarks/real_photos.py


def is_release_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` holds ``model.safetensors`` and ``config.yaml`` (a release folder)."""
    folder = Path(path)
    return (folder / WEIGHTS_FILE).is_file() and (folder / CONFIG_FILE).is_file()


def load_release(path: str | os.PathLike) -> nn.Module:
    """Build the network of a release folder and load its weights (CPU, float32, eval mode).

    fp16-stored tensors are cast to the network's float32. Nothing is unpickled.

    Raises:
        FileNotFoundError: the folder or one of its two files is missing (the message names it).
        ValueError: an unknown ``format``, an invalid ``model`` config, or weights that are
            corrupt or do not match the config (the message names the file).
    """
    folder = Path(path)
    if not is_release_dir(folder):
        raise FileNotFoundError(
            f"release folder {folder} needs {WEIGHTS_FILE} and {CONFIG_FILE}: run `girml release`"
        )
    config_path = folder / CONFIG_FILE
    config = read_model_config(folder)
    if config.get("format") != FORMAT:
        raise ValueError(f"{config_path}: format must be {FORMAT!r}, got {config.get('format')!r}")
    weights = folder / WEIGHTS_FILE
    model = build_from_config(config["model"], config_path, weights)  # its header checked first
    try:
        tensors = load_file(weights, device="cpu")
        reference = model.state_dict()
        state = {
            key: value.to(reference[key].dtype) if key in reference else value
            for key, value in tensors.items()
        }
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise weights_mismatch(weights, config_path, exc) from None
    return model.eval()


def spec_sha256(spec: DegradationsConfig) -> str:
    """sha256 of the canonical JSON of a degradation spec (sorted keys, no spaces, defaults in).

    Two YAML spellings of the same spec (key order, omitted defaults) hash the same.
    """
    canonical = json.dumps(
        spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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


def training_data(manifest: Path, pairs_jsonl: Path) -> TrainingData:
    """Summarise ``data/clean/manifest.csv`` (split ``train``) and ``data/pairs/train/pairs.jsonl``.

    Missing files leave their fields None.

    Raises:
        ValueError: a manifest without ``id``/``split`` columns (the message names it).
    """
    from girml.data.packages import DEFAULT_PIN_FILE, package_credits
    from girml.data.synthesize import read_manifest
    from girml.records import TrainPair, read_jsonl

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
    release_command: str
    steps: int | None = None
    train_seconds: float | None = None
    hardware: str = "not recorded"
    degradation_spec_sha256: str
    degradation_spec_source: str
    dvc_hashes: dict[str, str] = {}
    data: TrainingData
    notes: list[str] = []


class _Scored(BaseModel):
    """Part of a ``benchmarks/real_photos.py --json`` record: other keys are ignored, and a
    NaN (written as ``null``) is None."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class RealMethodScore(_Scored):
    """One method on one row: mean ``psnr_y`` (dB), ``gain`` over the input (dB; None for
    ``clean``) and brightness ``shift`` (0-255 grey levels)."""

    psnr_y: float | None = None
    gain: float | None = None
    shift: float | None = None


class RealRow(_Scored):
    """One degradation (or ``clean``): the input's scores, every method's, the best classical."""

    psnr_y_input: float | None = None
    shift_input: float | None = None
    methods: dict[str, RealMethodScore]
    best_classical: str | None = None
    best_classical_gain: float | None = None

    @property
    def model(self) -> RealMethodScore:
        return self.methods[REAL_MODEL]


class RealMean(_Scored):
    """Means over the degraded rows (``best_classical_gain``: of the per-row best)."""

    psnr_y_input: float | None = None
    shift_input: float | None = None
    best_classical_gain: float | None = None


class RealMethodSummary(_Scored):
    """One method over the degraded rows: mean gain and shift, harm count, NaN rows."""

    mean_gain: float | None = None
    mean_shift: float | None = None
    harm_count: int = Field(ge=0)
    nan_rows: int = Field(default=0, ge=0)


class RealPhoto(_Scored):
    """A scored photo: its path, crop count and (when recorded) its size in pixels."""

    path: str
    crops: int = Field(ge=0)
    width: int | None = None
    height: int | None = None

    @property
    def name(self) -> str:
        """The file name, without its folder."""
        return Path(self.path).name


class RealPhotos(_Scored):
    """What the card needs of ``benchmarks/real_photos.py --json`` (:func:`read_real_photos`).

    Attributes:
        model: the ``--model`` it scored; ``weights_sha256`` the sha256 of its weights file
            (None when not recorded: a registry URI or an older script).
        command: the command line that wrote it (None when not recorded).
        photos, crops, crop: the photos, the number of crops and their side (px).
        harm_db: a mean gain below this counts as harm.
        rows: per degradation and ``clean``; ``mean_degraded``: means over the degraded rows.
        per_method: per method (``model`` among them) over the degraded rows.
        file: the JSON file it was read from (not part of the JSON).
    """

    model: str
    weights_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    command: str | None = None
    photos: list[RealPhoto] = Field(min_length=1)
    crops: int = Field(ge=1)
    crop: int = Field(ge=1)
    harm_db: float
    rows: dict[str, RealRow]
    mean_degraded: RealMean
    per_method: dict[str, RealMethodSummary]
    file: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _has_model_and_clean(self) -> RealPhotos:
        if REAL_MODEL not in self.per_method:
            raise ValueError(f"per_method has no {REAL_MODEL!r} (scored without --methods model)")
        if CLEAN_FAMILY not in self.rows or len(self.rows) < 2:
            raise ValueError(f"rows need {CLEAN_FAMILY!r} and at least one degradation")
        missing = [name for name, row in self.rows.items() if REAL_MODEL not in row.methods]
        if missing:
            raise ValueError(f"rows without a {REAL_MODEL!r} score: {', '.join(missing)}")
        return self

    @property
    def degraded(self) -> dict[str, RealRow]:
        """The rows other than ``clean``, in file order."""
        return {name: row for name, row in self.rows.items() if name != CLEAN_FAMILY}

    @property
    def clean(self) -> RealRow:
        return self.rows[CLEAN_FAMILY]

    @property
    def summary(self) -> RealMethodSummary:
        """The model's line of ``per_method``."""
        return self.per_method[REAL_MODEL]

    @property
    def harmed(self) -> list[str]:
        """The degradations whose model mean gain is below ``harm_db``."""
        return [
            name
            for name, row in self.degraded.items()
            if row.model.gain is not None and row.model.gain < self.harm_db
        ]


def read_real_photos(path: Path) -> RealPhotos:
    """Read and validate the JSON written by ``benchmarks/real_photos.py --json``.

    Raises:
        FileNotFoundError: no such file; ValueError: not JSON, or not such a record. Each
            message is one line that names ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: write it with `python benchmarks/real_photos.py --model "
            "models/release --json FILE`"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    try:
        record = RealPhotos.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ValueError(
            f"{path}: not a benchmarks/real_photos.py --json record: {where}: {first['msg']}{more}"
        ) from None
    return record.model_copy(update={"file": str(path)})


def check_real_photos_weights(real: RealPhotos, weights_sha256: str, out_dir: Path) -> None:
    """Refuse real-photo numbers that were not measured on the weights being released.

    Raises:
        ValueError: ``real`` records no weights hash, or another one (the message names the
            file and says how to score the release).
    """
    rerun = (
        f"release without --real-photos, run `python benchmarks/real_photos.py --model "
        f"{out_dir} --json {real.file or 'FILE'}`, then release again with it"
    )
    if real.weights_sha256 is None:
        raise ValueError(
            f"{real.file}: records no weights sha256 (scored {real.model}), so it cannot be "
            f"checked against the weights being released: {rerun}"
        )
    if real.weights_sha256 != weights_sha256:
        raise ValueError(
            f"{real.file}: scored on other weights ({real.model}, sha256 "
            f"{real.weights_sha256[:12]}...) than those being released (sha256 "
            f"{weights_sha256[:12]}...): {rerun}"
        )


@dataclass(frozen=True)
class Fp16Check:
    """Mean PSNR-Y per benchmark suite with float32 and with float16-stored weights.

    Attributes:
        fp32, fp16: ``{suite: mean PSNR-Y (dB)}`` (families weighted equally).
        tolerance_db: the largest allowed absolute change of any suite.
    """

    fp32: dict[str, float]
    fp16: dict[str, float]
    tolerance_db: float = FP16_TOLERANCE_DB

    def __post_init__(self) -> None:
        if set(self.fp32) != set(self.fp16) or not self.fp32:
            raise ValueError(
                f"fp32 and fp16 must score the same non-empty suites, got {sorted(self.fp32)} "
                f"and {sorted(self.fp16)}"
            )
        if not self.tolerance_db >= 0:
            raise ValueError(f"tolerance_db must be >= 0, got {self.tolerance_db}")

    @property
    def diffs(self) -> dict[str, float]:
        """``{suite: fp16 - fp32}`` in dB."""
        return {suite: self.fp16[suite] - self.fp32[suite] for suite in self.fp32}

    @property
    def max_abs_diff(self) -> float:
        return max(abs(d) if math.isfinite(d) else math.inf for d in self.diffs.values())

    @property
    def ok(self) -> bool:
        """True when no suite's mean PSNR-Y moved by more than ``tolerance_db``."""
        return self.max_abs_diff <= self.tolerance_db

    def describe(self) -> str:
        parts = ", ".join(f"{s} {d:+.4f}" for s, d in self.diffs.items())
        return f"fp16 - fp32 mean PSNR-Y per suite (dB): {parts}; limit {self.tolerance_db} dB"


def suite_psnr_y(
    model: nn.Module, bench: Bench, crop_border: int = 0, tile: int | None = None
) -> dict[str, float]:
    """Mean PSNR-Y per suite of ``model`` on a benchmark (families weighted equally).

    The same pairs, inference, PSNR and aggregation as the evaluate stage's ``psnr_y.<suite>``
    (:class:`~girml.evaluation.Bench`, :func:`~girml.evaluation.model_restorer`,
    ``clipped_psnr``; the undegraded ``clean`` family left out), without its SSIM and NIQE: only
    PSNR-Y decides fp16 storage, and skipping the rest halves the time.

    Returns:
        ``{suite: dB}`` for every suite of the bench, in bench order.
    """
    from girml.evaluation.harness import clipped_psnr, model_restorer

    restore = model_restorer(model.eval(), tile)
    groups: dict[tuple[str, str], list[float]] = {}
    with torch.inference_mode():
        for item in (i for i in bench.items if i.family != CLEAN_FAMILY):
            lq, gt = bench.load(item)
            score = clipped_psnr(restore(lq), gt, crop_border, test_y=True)
            groups.setdefault((item.suite, item.family), []).append(score)
    suites: dict[str, list[float]] = {}
    for (suite, _), scores in groups.items():
        suites.setdefault(suite, []).append(sum(scores) / len(scores))
    return {suite: sum(means) / len(means) for suite, means in suites.items()}


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _plain_tensors(model: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """CPU, contiguous copies of the ``state_dict``; floating tensors cast to ``dtype``."""
    return {
        key: (value.to(dtype) if value.is_floating_point() else value)
        .detach()
        .cpu()
        .contiguous()
        .clone()
        for key, value in model.state_dict().items()
    }


@dataclass(frozen=True)
class ReleaseResult:
    """What :func:`export_release` wrote: the folder, its total size and the weights dtype."""

    out_dir: Path
    bytes: int
    dtype: str
    max_output_diff: float


def _write_weights(source: nn.Module, folder: Path, dtype: str) -> dict[str, Any]:
    """Save ``source``'s tensors as ``model.safetensors`` in ``dtype``; return their record
    (``config.yaml``'s ``weights``: file, dtype, bytes, sha256)."""
    weights = folder / WEIGHTS_FILE
    save_file(_plain_tensors(source, _DTYPES[dtype]), weights, metadata={"format": FORMAT})
    return {
        "file": WEIGHTS_FILE,
        "dtype": dtype,
        "bytes": weights.stat().st_size,
        "sha256": file_digest(weights),
    }


@dataclass(frozen=True)
class _Metadata:
    """What ``config.yaml`` and ``MODEL_CARD.md`` say about the weights (see
    :func:`export_release`'s arguments)."""

    model_cfg: ModelConfig
    provenance: Provenance
    metrics: CardMetrics
    coverage: Coverage
    fp16_check: Fp16Check | None
    real_photos: RealPhotos | None
    title: str


def _write_config(folder: Path, meta: _Metadata, weights_info: dict[str, Any]) -> None:
    """Write ``config.yaml``: format, model, weights, provenance, metrics and fp16 check."""
    fp16_check = meta.fp16_check
    config = {
        "format": FORMAT,
        "model": meta.model_cfg.model_dump(mode="json"),
        "weights": weights_info,
        "provenance": meta.provenance.model_dump(mode="json"),
        "metrics": meta.metrics.summary(),
        "fp16_check": None
        if fp16_check is None
        else {
            "tolerance_db": fp16_check.tolerance_db,
            "fp32": fp16_check.fp32,
            "fp16": fp16_check.fp16,
        },
    }
    (folder / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _write_card(
    folder: Path, meta: _Metadata, source: nn.Module, weights_info: dict[str, Any]
) -> None:
    """Write ``MODEL_CARD.md`` (:func:`girml.models.card.render_card`)."""
    from girml.models.card import render_card

    card = render_card(
        title=meta.title,
        arch=meta.model_cfg.type,
        n_params=sum(p.numel() for p in source.parameters()),
        weights=weights_info,
        provenance=_card_provenance(meta.provenance),
        metrics=meta.metrics,
        coverage=meta.coverage,
        fp16=meta.fp16_check,
        real_photos=meta.real_photos,
    )
    (folder / CARD_FILE).write_text(card, encoding="utf-8")


def _card_provenance(provenance: Provenance) -> dict[str, Any]:
    """The provenance as the card shows it: the clean train ids only when there are few."""
    plain = provenance.model_dump(mode="json")
    ids = provenance.data.clean_train_ids
    return {
        **plain,
        "data": {**plain["data"], "clean_train_ids": ids if len(ids) <= _LISTED_IDS else []},
    }


def _check_size(folder: Path, out_dir: Path, max_bytes: int, dtype: str) -> int:
    """The folder's size in bytes.

    Raises:
        ValueError: over ``max_bytes`` (the message gives the size and a way out).
    """
    size = _folder_bytes(folder)
    if size > max_bytes:
        raise ValueError(
            f"release {out_dir} would be {size / 2**20:.2f} MiB, over the "
            f"{max_bytes / 2**20:.2f} MiB limit for a folder committed to git"
            + ("" if dtype == "float16" else ": try --fp16 or a smaller model")
        )
    return size


def export_release(
    model: nn.Module,
    model_cfg: ModelConfig,
    out_dir: Path,
    *,
    provenance: Provenance,
    metrics: CardMetrics,
    coverage: Coverage,
    fp16_check: Fp16Check | None = None,
    real_photos: RealPhotos | None = None,
    max_bytes: int = MAX_RELEASE_BYTES,
    title: str = "gir-restorer release",
) -> ReleaseResult:
    """Write a release folder: weights, ``config.yaml`` and ``MODEL_CARD.md``, all or nothing.

    Written to a temporary folder beside ``out_dir``, loaded back with :func:`load_release`
    and checked, then swapped in (on any error the old release stays as it was).

    Args:
        model: the trained network (any device; not modified).
        model_cfg: the config that builds it (the rebuilt network must load the weights
            strictly and reproduce ``model``'s output).
        out_dir: e.g. ``models/release``; replaced as a whole.
        provenance, metrics, coverage: the card's :class:`Provenance`, numbers
            (:func:`girml.models.card.card_metrics`) and :class:`girml.models.card.Coverage`.
        fp16_check: store float16 weights; only allowed when the check passed.
        real_photos: ``benchmarks/real_photos.py --json`` numbers for the card, measured on
            the very weights written here (same sha256: the export is byte-deterministic).
        max_bytes: the largest allowed folder size.
        title: the card's heading.

    Returns:
        A :class:`ReleaseResult`.

    Raises:
        ValueError: a failed fp16 check (the message gives the per-suite changes), a config
            that does not rebuild ``model``, ``real_photos`` of other weights, or a folder
            over ``max_bytes`` (the message gives the size).
    """
    if fp16_check is not None and not fp16_check.ok:
        raise ValueError(f"fp16 storage refused: {fp16_check.describe()}")
    dtype = "float16" if fp16_check is not None else "float32"
    source = copy.deepcopy(model).to("cpu").eval()
    out_dir = Path(out_dir)
    meta = _Metadata(model_cfg, provenance, metrics, coverage, fp16_check, real_photos, title)
    with staged_dir(out_dir) as tmp:
        weights_info = _write_weights(source, tmp, dtype)
        if real_photos is not None:
            check_real_photos_weights(real_photos, weights_info["sha256"], out_dir)
        _write_config(tmp, meta, weights_info)
        diff = _check_rebuilt(source, tmp, exact=dtype == "float32")
        _write_card(tmp, meta, source, weights_info)
        size = _check_size(tmp, out_dir, max_bytes, dtype)
    return ReleaseResult(out_dir, size, dtype, diff)


def _check_rebuilt(model: nn.Module, folder: Path, exact: bool) -> float:
    """Load ``folder`` back and compare with ``model`` on a fixed odd-sized input.

    Returns:
        The largest absolute output difference.

    Raises:
        ValueError: float32 weights that do not reproduce ``model`` within 1e-5 (the config
            does not describe the network, e.g. a missing ``sca_max``).
    """
    rebuilt = load_release(folder)
    x = torch.rand(1, 3, 37, 45, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        diff = float((rebuilt(x) - model(x)).abs().max())
    if exact and not diff <= 1e-5:
        raise ValueError(
            f"the network rebuilt from {folder / CONFIG_FILE} does not reproduce the source "
            f"model (max output difference {diff:.3g}): its model config is wrong"
        )
    return diff


def model_config_from_params(params: Mapping[str, str], source: str) -> ModelConfig:
    """Rebuild a :class:`ModelConfig` from a run's flattened ``model.*`` params.

    Values were logged as text (lists as JSON, None as ``None``).

    Raises:
        ValueError: the run has no ``model.*`` params; ConfigError: they do not validate.
    """
    raw: dict[str, Any] = {}
    for key, text in params.items():
        if not key.startswith("model."):
            continue
        name = key.removeprefix("model.")
        if text == "None":
            raw[name] = None
        else:
            try:
                raw[name] = json.loads(text)
            except json.JSONDecodeError:
                raw[name] = text
    if not raw:
        raise ValueError(f"{source}: its MLflow run has no model.* params to rebuild it from")
    return parse_section(raw, "model", ModelConfig, source=f"{source} (run params)")


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


@dataclass(frozen=True)
class _Source:
    """A model to release and what is known about how it was made."""

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


def _open_source(source: str, project_root: Path, train_metrics: Path | None = None) -> _Source:
    """Load ``source`` (a registry URI or a model folder) and its MLflow run, if reachable."""
    from girml.models.store import URI_PATTERN, load_model_dir

    notes: list[str] = []
    if URI_PATTERN.match(source):
        from girml.tracking import mlflow as tracking

        if not tracking.store_exists(project_root):  # do not create an empty one to look
            raise ValueError(f"{source}: no MLflow store ({tracking.tracking_uri(project_root)})")
        tracking.configure(project_root)
        found = tracking.model_version_of(source)
        if found is None:
            raise ValueError(f"{source}: not a registered version in {tracking.REGISTERED_MODEL}")
        version, run_id = found
        from girml.tracking.registry import is_release_version

        if is_release_version(version):
            raise ValueError(
                f"{source} is version {version}, the shipped release itself (registered from "
                "models/release): there is nothing new to release; release a trained version"
            )
        record = tracking.run_record(run_id)
        model = tracking.load_logged_model(source)  # weights plus config; pickles are refused
        model_cfg = model_config_from_params(record.params, source)
        return _Source(
            model, model_cfg, version, run_id, record.tags, record.params, record.metrics, {}, notes
        )
    folder = Path(source)
    if is_release_dir(folder):
        raise ValueError(f"{folder} is already a release: copy the folder instead")
    model = load_model_dir(folder)
    config = read_model_config(folder)
    model_cfg = parse_section(
        config["model"], "model", ModelConfig, source=str(folder / CONFIG_FILE)
    )
    run = training_run(folder, train_metrics)
    version, run_id = run.registered_version, run.mlflow_run_id
    tags: dict[str, str] = {}
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    if run_id is not None:
        from girml.tracking import mlflow as tracking

        if tracking.store_exists(project_root):
            tracking.configure(project_root)
            try:
                record = tracking.run_record(run_id)
                tags, params, metrics = record.tags, record.params, record.metrics
            except ValueError as exc:
                notes.append(f"{exc}; provenance from {run.source} only")
        else:
            notes.append(
                f"no MLflow store ({tracking.tracking_uri(project_root)}): provenance from "
                f"{run.source} only"
            )
    return _Source(model, model_cfg, version, run_id, tags, params, metrics, config, notes, run)


def _lock_stage(lock: Mapping[str, Any], stage: str) -> dict[str, Any]:
    value = (lock.get("stages") or {}).get(stage)
    return value if isinstance(value, dict) else {}


def _lock_out_md5(lock: Mapping[str, Any], stage: str, path: str) -> str | None:
    for out in _lock_stage(lock, stage).get("outs") or []:
        if isinstance(out, dict) and out.get("path") == path:
            return str(out.get("md5")) if out.get("md5") else None
    return None


def _number(*values: Any) -> float | None:
    for value in values:
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
    return None


def _hardware(src: _Source) -> str:
    recorded = src.tags.get("hardware") or (src.run.hardware if src.run else None)
    if recorded:
        return str(recorded)
    gpus = {k.split("_")[1] for k in src.metrics if k.startswith("system/gpu_")}
    if gpus:
        return f"{len(gpus)} GPU(s) (from the run's MLflow system metrics; model not recorded)"
    if any(k.startswith("system/cpu_") for k in src.metrics):
        return "CPU only (from the run's MLflow system metrics; model not recorded)"
    return "not recorded"


def _read_lock(path: Path) -> dict[str, Any]:
    """``dvc.lock`` as a mapping; empty when the file is absent or empty."""
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _data_drift_notes(dvc_hashes: Mapping[str, str], lock: Mapping[str, Any]) -> list[str]:
    """A note per trained-on data output whose ``dvc.lock`` md5 has changed since."""
    notes = []
    for path, trained_md5 in dvc_hashes.items():
        stage = "collect" if path.startswith("data/clean") else "synthesize"
        now = _lock_out_md5(lock, stage, path)
        if now is not None and now != trained_md5:
            notes.append(
                f"{path} in this working tree (dvc.lock md5 {now}) is not the data the model was "
                f"trained on (md5 {trained_md5}): the training data listed below describes the "
                "working tree"
            )
    return notes


def _spec_drift_notes(lock: Mapping[str, Any], spec_hash: str, spec_source: str) -> list[str]:
    """A note when the spec in ``spec_source`` differs from the one that synthesized the data."""
    synthesized = (_lock_stage(lock, "synthesize").get("params") or {}).get("params.yaml") or {}
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


def _train_command(lock: Mapping[str, Any], src: _Source) -> str:
    """The train stage's command from ``dvc.lock``, else ``girml train`` for a trained model."""
    train_cmd = _lock_stage(lock, "train").get("cmd")
    if not train_cmd and (src.tags.get("stage") == "train" or src.folder_config):
        train_cmd = "girml train"
    return str(train_cmd or "not recorded")


def _provenance(src: _Source, source: str, inputs: ReleaseInputs, command: str) -> Provenance:
    """Everything known of how ``src`` was made, with notes where the working tree drifted."""
    from girml.tracking.mlflow import REGISTERED_MODEL

    lock = _read_lock(inputs.dvc_lock)
    dvc_hashes = {
        key.removeprefix("dvc."): value
        for key, value in sorted(src.tags.items())
        if key.startswith("dvc.data/")
    }
    spec_hash = spec_sha256(inputs.spec)
    notes = [
        *src.notes,
        *_data_drift_notes(dvc_hashes, lock),
        *_spec_drift_notes(lock, spec_hash, inputs.spec_source),
    ]
    run = src.run or TrainingRun(source=Path(source))
    steps = _number(src.metrics.get("steps"), run.steps)
    return Provenance(
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
        release_command=command,
        steps=None if steps is None else int(steps),
        train_seconds=_number(src.metrics.get("train_seconds"), run.train_seconds),
        hardware=_hardware(src),
        degradation_spec_sha256=spec_hash,
        degradation_spec_source=inputs.spec_source,
        dvc_hashes=dvc_hashes,
        data=training_data(inputs.manifest, inputs.pairs_jsonl),
        notes=notes,
    )


def measure_fp16(
    model: nn.Module,
    model_cfg: ModelConfig,
    bench_dir: Path,
    crop_border: int = 0,
    tile: int | None = None,
    tolerance_db: float = FP16_TOLERANCE_DB,
) -> Fp16Check:
    """Score ``model`` and its fp16-stored copy on the benchmark suites (:func:`suite_psnr_y`).

    The copy is what :func:`load_release` makes of fp16 weights: the network rebuilt from
    ``model_cfg`` with every floating tensor rounded to float16 and cast back to float32.

    Raises:
        FileNotFoundError: no benchmark at ``bench_dir`` (the message says fp16 cannot be
            checked without it).
    """
    from girml.evaluation.harness import Bench

    if not Path(bench_dir).is_dir():
        raise FileNotFoundError(
            f"fp16 storage must be checked on the benchmark, but {bench_dir} does not exist: "
            "run `dvc pull` or `dvc repro synthesize`, or release in float32"
        )
    fp32_model = copy.deepcopy(model).to("cpu").eval()
    fp16_model = build_model(model_cfg)
    reference = fp16_model.state_dict()
    fp16_model.load_state_dict(
        {
            k: v.to(torch.float16).to(reference[k].dtype) if v.is_floating_point() else v
            for k, v in fp32_model.state_dict().items()
        },
        strict=True,
    )
    bench = Bench(bench_dir)
    return Fp16Check(
        suite_psnr_y(fp32_model, bench, crop_border, tile),
        suite_psnr_y(fp16_model.eval(), bench, crop_border, tile),
        tolerance_db,
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
    src: _Source, source: str, eval_metrics: Mapping[str, Any], per_family: list[dict[str, Any]]
) -> CardMetrics:
    """The card's numbers for ``src``'s version, against the classical baselines evaluated."""
    from girml.baselines import BASELINES
    from girml.models.card import card_metrics, method_for_version

    method = method_for_version(eval_metrics, src.version, source)
    classical = [m for m in dict.fromkeys(r["method"] for r in per_family) if m in BASELINES]
    return card_metrics(per_family, method, classical, eval_metrics)


def _coverage(src: _Source, inputs: ReleaseInputs) -> Coverage:
    """What the training data spans: the spec, the held-out category and the patch size."""
    from girml.models.card import Coverage

    patch = src.params.get("train.patch_size") or (src.folder_config.get("train") or {}).get(
        "patch_size"
    )
    return Coverage.from_spec(
        inputs.spec, inputs.unseen_content_category, int(patch) if patch is not None else None
    )


def _checked_fp16(src: _Source, inputs: ReleaseInputs) -> Fp16Check:
    """:func:`measure_fp16` on the benchmark.

    Raises:
        ValueError: fp16 storage changes a suite by more than the tolerance.
    """
    check = measure_fp16(
        src.model, src.model_cfg, inputs.bench_dir, inputs.crop_border, inputs.tile
    )
    if not check.ok:
        raise ValueError(f"fp16 storage refused: {check.describe()}")
    return check


def make_release(
    source: str,
    out_dir: Path,
    inputs: ReleaseInputs,
    project_root: Path,
    *,
    fp16: bool = False,
    real_photos: RealPhotos | None = None,
    command: str = "girml release",
    max_bytes: int = MAX_RELEASE_BYTES,
) -> tuple[ReleaseResult, Provenance, CardMetrics]:
    """The ``girml release`` verb: load a model, collect provenance and metrics, export it.

    Args:
        source: ``models:/gir-restorer@champion``, ``models:/gir-restorer/<version>`` or a
            model folder written by ``girml train`` (``inputs.train_metrics`` names the run).
        out_dir: the release folder, e.g. ``models/release``.
        inputs: the project files to read (:class:`ReleaseInputs`).
        project_root: where the default MLflow store lives.
        fp16: store float16 weights if :func:`measure_fp16` allows it.
        real_photos: :func:`read_real_photos` of the released weights, for the card.
        command: the command line, recorded in the provenance.
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
    from girml.models.card import read_per_family

    eval_metrics = _read_eval_json(inputs.eval_json)
    per_family = read_per_family(inputs.per_family_csv)
    src = _open_source(source, project_root, inputs.train_metrics)
    metrics = _card_metrics_of(src, source, eval_metrics, per_family)
    provenance = _provenance(src, source, inputs, command)
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
