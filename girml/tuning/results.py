"""What a search returns and the files it leaves: ``tune/best.yaml`` and the trials CSV; no Ray.

``best.yaml`` holds the winning values as nested ``model:``/``train:`` overrides, ready to be
merged over the ``params.yaml`` sections of the same names (:func:`tuned_configs`), plus the
score they reached, the untuned default's score and the per-trial step budget.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from girml.config import (
    ConfigError,
    ModelConfig,
    TrainConfig,
    deep_merge,
    load_yaml,
    parse_section,
)
from girml.core.imageio import atomic_path, write_text
from girml.data.records import field_path
from girml.tuning.space import nest

METRIC = "val.psnr_y_model"
# trials.csv columns around the searched parameters
LEAD_COLUMNS = ("trial_id", "default")
SCORE_COLUMNS = (
    METRIC,
    f"{METRIC}_best",
    "val.psnr_gain",
    "val.psnr_y_input",
    "steps",
    "status",
    "stopped_early",
    "seconds",
)


def _overrides_of(config: type[BaseModel]) -> type[BaseModel]:
    """A model of ``config``'s fields, each optional and checked as ``config`` checks it.

    Unknown fields are refused. Checks across fields (``ModelConfig``'s levels) need the whole
    section: :func:`tuned_configs` runs them on the merged section.
    """
    fields: dict[str, Any] = {
        name: (field.annotation, FieldInfo.merge_field_infos(field, default=None))
        for name, field in config.model_fields.items()
    }
    frozen = ConfigDict(extra="forbid", frozen=True)
    return create_model(f"Tuned{config.__name__}", __config__=frozen, **fields)


TunedModelConfig = _overrides_of(ModelConfig)
TunedTrainConfig = _overrides_of(TrainConfig)


class TunedParams(BaseModel):
    """The ``params`` of a ``best.yaml``: overrides of the ``model`` and ``train`` sections.

    Attributes:
        model: fields of :class:`~girml.config.ModelConfig` the search chose.
        train: fields of :class:`~girml.config.TrainConfig` the search chose.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: TunedModelConfig = Field(default_factory=TunedModelConfig)
    train: TunedTrainConfig = Field(default_factory=TunedTrainConfig)


class TunedFile(BaseModel):
    """A ``best.yaml`` as ``train`` reads it: ``params``; its other keys (the scores, the
    trial id) report the search and are not read."""

    model_config = ConfigDict(frozen=True)

    params: TunedParams


@dataclass(frozen=True)
class TuneResult:
    """Outcome of :func:`girml.tuning.search.tune`.

    Attributes:
        best_config: dotted key (``train.lr``) -> value of the best trial's searched parameters.
        best_score: the best trial's final ``val.psnr_y_model`` (dB).
        best_trial_id: Ray's id of that trial.
        trials: one row per trial, the untuned default included, in creation order:
            ``trial_id``, ``default`` (the reference trial), each searched key,
            ``val.psnr_y_model`` (final), ``val.psnr_y_model_best`` (over its reports),
            ``val.psnr_gain``, ``val.psnr_y_input`` (final), ``steps`` (last reported step),
            ``status`` (Ray's: TERMINATED, ERROR, ...), ``stopped_early`` (terminated before
            ``steps_per_trial``, by ASHA or the time budget) and ``seconds`` (wall time).
            Scores are NaN for a trial that never reported.
        curves: trial id -> its validation reports, ``{"step", "val.psnr_y_model",
            "val.psnr_gain", "val.psnr_y_input"}`` per report, by step.
        default_score: the default trial's final ``val.psnr_y_model``, None if it never
            reported.
        steps_per_trial: the per-trial step budget.
        resumed: whether an interrupted search was restored instead of started afresh.
        wall_seconds: wall time of this call's search.
    """

    best_config: dict[str, Any]
    best_score: float
    best_trial_id: str
    trials: list[dict[str, Any]]
    curves: dict[str, list[dict[str, float]]]
    default_score: float | None
    steps_per_trial: int
    resumed: bool
    wall_seconds: float

    @property
    def configs_searched(self) -> int:
        """Trials that reported at least once (the default reference included)."""
        return sum(1 for row in self.trials if not math.isnan(row[METRIC]))


def write_best(result: TuneResult, path: Path) -> None:
    """Write ``best.yaml`` atomically: ``metric``, ``score``, ``default_score``,
    ``steps_per_trial``, ``trial_id`` and ``params`` (nested ``model``/``train`` overrides)."""
    params = {section: values for section, values in nest(result.best_config).items() if values}
    doc = {
        "metric": METRIC,
        "score": round(result.best_score, 4),
        "default_score": (None if result.default_score is None else round(result.default_score, 4)),
        "steps_per_trial": result.steps_per_trial,
        "trial_id": result.best_trial_id,
        "params": params,
    }
    write_text(path, yaml.safe_dump(doc, sort_keys=False))


def _cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value)
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value


def write_trials_csv(result: TuneResult, path: Path) -> None:
    """Write one row per trial (see :attr:`TuneResult.trials`) as CSV, atomically.

    List values (``model.enc_blocks``) are JSON; missing scores are empty cells.
    """
    params = list(result.best_config)
    columns = [*LEAD_COLUMNS, *params, *SCORE_COLUMNS]
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in result.trials:
            writer.writerow({key: _cell(row[key]) for key in columns})


def _problems(exc: ValidationError) -> list[str]:
    """The problems of a ``best.yaml`` (:class:`TunedFile`), each naming its key."""
    problems: list[str] = []
    unknown: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = err["loc"]
        if len(loc) < 2:  # no mapping at the top, or no `params` mapping in it
            problems.append("needs a `params` mapping of model/train overrides")
        elif len(loc) == 2:  # an unknown section, or a section that is no mapping
            problems.append(f"params.{loc[1]} must be a model/train mapping")
        elif err["type"] == "extra_forbidden":
            unknown.setdefault(str(loc[1]), []).append(str(loc[2]))
        else:
            value = err["input"]
            shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
            problems.append(f"{field_path(loc)}: {err['msg']}{shown}")
    problems += [f"params.{sec} has unknown fields {sorted(keys)}" for sec, keys in unknown.items()]
    return problems


def load_tuned_overrides(path: Path) -> dict[str, dict[str, Any]]:
    """Read and validate the ``params`` of a ``best.yaml`` (:class:`TunedFile`).

    Returns:
        ``{"model": {...}, "train": {...}}``: the overrides the file sets, validated as their
        fields of :class:`~girml.config.ModelConfig` and :class:`~girml.config.TrainConfig`;
        a section the file leaves out is absent.

    Raises:
        ConfigError: the file is missing, not YAML, or its params name a section other than
            ``model``/``train``, an unknown field or a bad value (the message names the file
            and the key).
    """
    if not path.is_file():
        raise ConfigError(f"{path}: tuned params not found (run `girml tune` first)")
    doc = load_yaml(path.read_text(encoding="utf-8"), str(path))
    try:
        tuned = TunedFile.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"{path}: " + "; ".join(_problems(exc))) from None
    return tuned.params.model_dump(exclude_unset=True)


def tuned_configs(
    model_raw: Mapping[str, Any] | None, train_raw: Mapping[str, Any] | None, best_path: Path
) -> tuple[ModelConfig, TrainConfig]:
    """The ``model``/``train`` sections with ``best_path``'s overrides deep-merged, validated.

    Args:
        model_raw: the raw ``params.yaml: model`` mapping (None = defaults).
        train_raw: the raw ``params.yaml: train`` mapping (None = defaults).
        best_path: a ``best.yaml`` written by :func:`write_best`.

    Raises:
        ConfigError: bad overrides or an invalid merged section (naming the key).
    """
    overrides = load_tuned_overrides(best_path)
    source = f"params + {best_path}"
    model = deep_merge(dict(model_raw or {}), overrides.get("model", {}))
    train = deep_merge(dict(train_raw or {}), overrides.get("train", {}))
    return (
        parse_section(model, "model", ModelConfig, source=source),
        parse_section(train, "train", TrainConfig, source=source),
    )
