"""Search-space keys (``train.lr``, ``model.width``) applied to the base configs; no Ray here.

A trial's parameters are a flat mapping of dotted keys to values. :func:`trial_configs` lays
them over the base ``model``/``train`` sections, adds the tuner's own settings (step budget,
validation cadence) and validates the result, so a trial runs exactly what ``train`` would run
with those values in ``params.yaml``, only shorter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from girml.config import (
    ConfigError,
    ModelConfig,
    SearchDim,
    TrainConfig,
    TuneConfig,
    deep_merge,
    parse_section,
)
from girml.models import ARCHS

SECTIONS: dict[str, type[BaseModel]] = {"model": ModelConfig, "train": TrainConfig}
# set by the tuner for every trial (see trial_configs), so never searched
TUNER_FIELDS = frozenset(
    {"train.steps", "train.val_every", "train.ckpt_every", "train.num_workers", "train.use_tuned"}
)


def nest(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"train.lr": 1e-3, "model.width": 8}`` -> ``{"model": {"width": 8}, "train": {...}}``.

    Raises:
        ValueError: a key is not ``model.<field>`` or ``train.<field>``.
    """
    out: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for key, value in params.items():
        section, _, name = key.partition(".")
        if section not in SECTIONS or name not in SECTIONS[section].model_fields:
            raise ValueError(f"parameter key must name a field of model.* or train.*, got {key!r}")
        out[section][name] = value
    return out


def _needs_json(dim: SearchDim) -> bool:
    return dim.type == "choice" and any(isinstance(v, list | dict) for v in dim.values or [])


def encode_value(dim: SearchDim, value: Any) -> Any:
    """A parameter value as the searcher sees it: choices of lists/dicts become JSON strings.

    Searchers (Optuna in particular) only take scalar categories, so a choice such as
    ``model.enc_blocks: [[1, 1], [1, 1, 2]]`` is searched over ``"[1, 1]"`` and ``"[1, 1, 2]"``.
    """
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value) if _needs_json(dim) else value


def decode_params(space: Mapping[str, SearchDim], config: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`encode_value` over a searcher's config, keeping only the space's keys.

    Numpy scalars become Python numbers, so the values can be written to YAML and CSV.
    """
    missing = sorted(set(space) - set(config))
    if missing:
        raise ValueError(f"trial config lacks the searched keys {missing}")
    out = {}
    for key, dim in space.items():
        value = config[key]
        value = value.item() if hasattr(value, "item") else value
        out[key] = json.loads(value) if _needs_json(dim) else value
    return out


def default_params(
    space: Mapping[str, SearchDim], base_model: ModelConfig, base_train: TrainConfig
) -> dict[str, Any]:
    """The base configs' values of the searched keys: the untuned reference point."""
    bases = {"model": base_model, "train": base_train}
    out = {}
    for key in space:
        section, _, name = key.partition(".")
        value = getattr(bases[section], name)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def trial_configs(
    params: Mapping[str, Any], base_model: ModelConfig, base_train: TrainConfig, cfg: TuneConfig
) -> tuple[ModelConfig, TrainConfig]:
    """The validated configs one trial trains with.

    ``params`` override the base sections; then ``steps = cfg.steps_per_trial`` and
    ``val_every = ckpt_every = cfg.report_every`` (validate, report and checkpoint together).
    Unless searched, ``warmup_steps`` is scaled by ``steps_per_trial / base_train.steps`` so a
    trial follows the same warm-up + cosine shape as the full run, only shorter. Trials load
    data in their own process (``num_workers = 0``): they already run one per CPU.

    Raises:
        ConfigError: the overridden sections are invalid (the message names the key).
    """
    over = nest(params)
    tuner: dict[str, Any] = {
        "steps": cfg.steps_per_trial,
        "val_every": cfg.report_every,
        "ckpt_every": cfg.report_every,
        "num_workers": 0,
    }
    if "warmup_steps" not in over["train"]:
        scaled = base_train.warmup_steps * cfg.steps_per_trial / base_train.steps
        tuner["warmup_steps"] = round(scaled)
    model_raw = deep_merge(base_model.model_dump(), over["model"])
    train_raw = deep_merge(base_train.model_dump(), {**over["train"], **tuner})
    source = "tune trial"
    return (
        parse_section(model_raw, "model", ModelConfig, source=source),
        parse_section(train_raw, "train", TrainConfig, source=source),
    )


def _candidates(dim: SearchDim) -> list[Any]:
    if dim.type == "choice":
        return list(dim.values or [])
    if dim.type == "randint":
        return [int(dim.low or 0), int(dim.high or 0)]
    return [dim.low, dim.high]


def check_space(cfg: TuneConfig, base_model: ModelConfig, base_train: TrainConfig) -> None:
    """Fail fast, before any trial starts, on a search space that cannot produce valid trials.

    Checks that no key is one the tuner sets itself, that continuous dimensions do not target
    integer fields, that ``randint`` bounds are integers, that the report cadence fits the
    budget, that every choice and both bounds of every range give valid configs (and a
    known architecture for ``model.type``), and, for Optuna (whose categories cannot take
    other values), that the untuned default's value is one of each choice's values.

    Raises:
        ConfigError: naming the offending ``tune.space`` key and value.
    """
    try:  # the base first: otherwise the first tune.space key would take the blame
        ARCHS.get(base_model.type)
    except KeyError as exc:
        raise ConfigError(f"model.type: {exc.args[0]}") from None
    if cfg.report_every > cfg.steps_per_trial:
        raise ConfigError(
            f"tune.report_every must be <= tune.steps_per_trial ({cfg.steps_per_trial}), "
            f"got {cfg.report_every}"
        )
    for key, dim in cfg.space.items():
        where = f"tune.space.{key}"
        if key in TUNER_FIELDS:
            raise ConfigError(f"{where}: set by the tuner for every trial, not searchable")
        section, _, name = key.partition(".")
        annotation = SECTIONS[section].model_fields[name].annotation
        if dim.type in ("uniform", "loguniform") and annotation is int:
            raise ConfigError(f"{where}: {name} is an integer; use randint or choice")
        if dim.type == "randint" and not (
            float(dim.low or 0).is_integer() and float(dim.high or 0).is_integer()
        ):
            raise ConfigError(f"{where}: randint needs integer bounds, got {dim.low}, {dim.high}")
        for value in _candidates(dim):
            try:
                model_cfg, _ = trial_configs({key: value}, base_model, base_train, cfg)
                ARCHS.get(model_cfg.type)
            except (ConfigError, KeyError) as exc:
                raise ConfigError(f"{where}: value {value!r} is invalid: {exc}") from None
    default = default_params(cfg.space, base_model, base_train)
    for key, dim in cfg.space.items():
        if cfg.searcher == "optuna" and dim.type == "choice" and default[key] not in dim.values:
            raise ConfigError(
                f"tune.space.{key}: the base value {default[key]!r} (the reference trial) must "
                f"be one of the choices {dim.values} with searcher optuna"
            )
