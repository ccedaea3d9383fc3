"""Reading ``params.yaml``: the table of its sections, and parsing one section into its typed
config with errors that name the dotted key (``collect.min_size: ...``)."""

from __future__ import annotations

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


def read_params(path: str | Path) -> dict[str, Any]:
    """Read a params YAML file into a dict, rejecting unknown top-level sections and keys given
    twice in one mapping (:func:`girml.config.base.load_yaml`)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: params file not found")
    raw = load_yaml(p.read_text(encoding="utf-8"), str(p)) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: top level must be a mapping of sections")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{p}: unknown section(s) {unknown}; known: {sorted(SECTIONS)}")
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
