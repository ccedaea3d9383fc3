"""The base of every typed config section: the error type and the frozen pydantic model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(ValueError):
    """A params file or section is missing, malformed or invalid."""


class Frozen(BaseModel):
    """Base for every config object: immutable, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)
