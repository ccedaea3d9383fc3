"""The base of every typed config section: the error type, the frozen pydantic model and the
strict YAML reader that params files and profiles go through."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict


class ConfigError(ValueError):
    """A params file or section is missing, malformed or invalid."""


class Frozen(BaseModel):
    """Base for every config object: immutable, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error (PyYAML
    silently keeps the last value, so ``batch_size: 8`` then ``batch_size: 16`` trained at 16)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` keys may be overridden: that is what merging is for
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                seen = key in first_line
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} on lines {first_line[key]} and {line}",
                    key_node.start_mark,
                )
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML text as PyYAML's ``safe_load`` does, refusing duplicate keys.

    Args:
        text: the YAML document.
        source: where it comes from (a file name), for the message.

    Returns:
        The document as plain data (None for an empty one).

    Raises:
        ConfigError: not valid YAML, or a mapping that gives a key twice:
            ``params.yaml: duplicate key 'batch_size' on lines 3 and 5 (keep one)``.
    """
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.constructor.ConstructorError as exc:
        if exc.problem and exc.problem.startswith("duplicate key"):
            raise ConfigError(f"{source}: {exc.problem} (keep one)") from None
        raise ConfigError(f"{source}: not valid YAML ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})") from None
