"""Reading ``params.yaml``: the table of its sections, and parsing one section into its typed
config with errors that name the dotted key (``collect.min_size: ...``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from girml.config.base import ConfigError, load_yaml
from girml.config.collect import CollectConfig
from girml.config.degradations import DegradationsConfig
from girml.config.evaluate import EvaluateConfig
from girml.config.interpret import InterpretConfig
from girml.config.model import ModelConfig
from girml.config.orchestration import OrchestrationConfig
from girml.config.protocols import ProtocolsConfig
from girml.config.study import StudyConfig
from girml.config.synthesize import SynthesizeConfig, ValidateConfig
from girml.config.train import TrainConfig, TuneConfig
from girml.core.urls import mask_text

T = TypeVar("T", bound=BaseModel)

SECTIONS: dict[str, type[BaseModel]] = {
    "collect": CollectConfig,
    "degradations": DegradationsConfig,
    "synthesize": SynthesizeConfig,
    "validate": ValidateConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
    "orchestration": OrchestrationConfig,
    "tune": TuneConfig,
    "interpret": InterpretConfig,
    "study": StudyConfig,
    "protocols": ProtocolsConfig,
}

# The one top-level key that is no section: the name of the profile the file was made from
# (``girml profile FILE`` sets it; docs/params.md). No stage declares it to DVC, so setting it
# alone reruns nothing; the training run and its registered version carry it as a tag.
PROFILE_KEY = "profile"
# what a params file without the key reads as: not made by ``girml profile`` from a file that
# says which profile it is (its exact contents are pinned by the runs' ``params_hash`` tag)
UNNAMED_PROFILE = "custom"
# a name: letters, digits, ``_ . -``; profiles laid one over another are joined by ``+``
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
PROFILE_NAME = re.compile(rf"{_NAME}(\+{_NAME})*")


def check_profile_name(value: Any, source: str) -> str:
    """``value`` if it is a valid :data:`PROFILE_KEY` value.

    Raises:
        ConfigError: not a string of :data:`PROFILE_NAME` (the message names ``source``).
    """
    if not isinstance(value, str) or not PROFILE_NAME.fullmatch(value):
        raise ConfigError(
            f"{source}: {PROFILE_KEY}: must be a profile name like 'release' (letters, digits, "
            f"'_', '.', '-'; profiles laid one over another joined by '+'), got {value!r}"
        )
    return value


def params_profile(raw: dict[str, Any]) -> str:
    """The profile a params mapping says it was made from; :data:`UNNAMED_PROFILE` when it
    does not say (a file written before the key existed, or by hand)."""
    return str(raw.get(PROFILE_KEY) or UNNAMED_PROFILE)


def read_params(path: str | Path) -> dict[str, Any]:
    """Read a params YAML file into a dict, rejecting unknown top-level sections, keys given
    twice in one mapping (:func:`girml.config.base.load_yaml`) and a bad :data:`PROFILE_KEY`."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: params file not found")
    raw = load_yaml(p.read_text(encoding="utf-8"), str(p)) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: top level must be a mapping of sections")
    unknown = sorted(set(raw) - set(SECTIONS) - {PROFILE_KEY})
    if unknown:
        raise ConfigError(f"{p}: unknown section(s) {unknown}; known: {sorted(SECTIONS)}")
    if PROFILE_KEY in raw:
        check_profile_name(raw[PROFILE_KEY], str(p))
    return raw


def _key_path(section: str, loc: tuple[int | str, ...], raw: Any) -> str:
    """``collect.sources[0].items[1].url`` from a pydantic error location.

    List indices are bracketed, and the tag that pydantic inserts after the index of a
    discriminated union member (``sources.0.urls.items``) is dropped: it is no key of the file.
    """
    key, node = section, raw
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
            node = node[part] if isinstance(node, list) and -len(node) <= part < len(node) else None
        elif isinstance(node, dict) and part not in node and node.get("type") == part:
            continue  # the union tag
        else:
            key += f".{part}"
            node = node.get(part) if isinstance(node, dict) else None
    return key


def parse_section(raw: Any, section: str, model: type[T], source: str = "params") -> T:
    """Validate one section's raw mapping into ``model``; errors name the dotted key.

    The bad value is shown with any URL credentials masked (:func:`girml.core.urls.mask_text`).
    """
    try:
        return model.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = _key_path(section, err["loc"], raw)
            value = err.get("input")
            shown = "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
            lines.append(mask_text(f"{key}: {err['msg']}{shown}"))
        raise ConfigError(f"{source}: invalid config\n  " + "\n  ".join(lines)) from None


def load_section(path: str | Path, section: str) -> Any:
    """Load and validate ``section`` of the params file at ``path``."""
    if section not in SECTIONS:
        raise ConfigError(f"unknown section {section!r}; known: {sorted(SECTIONS)}")
    raw = read_params(path)
    if section not in raw:
        raise ConfigError(f"{path}: section {section!r} is missing")
    return parse_section(raw[section], section, SECTIONS[section], source=str(path))
