"""The real-photo scores a release card may show: ``benchmarks/real_photos.py --json``, checked.

:func:`read_real_photos` validates the record the script writes; :func:`check_real_photos_weights`
refuses scores measured on other weights than those being released (the card's "Real photos
outside the project" section, :mod:`girml.artifacts.card`).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from girml.config import CLEAN_FAMILY

REAL_MODEL = "model"  # the released model's method name in benchmarks/real_photos.py


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
