"""Laying settings over ``params.yaml``: a profile (``girml profile``), the flow's ``-S``-style
overrides, and the tuning overlays in memory, all by one rule, with the file's comments kept
and every section validated."""

from __future__ import annotations

import copy
import io
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from girml.config.base import ConfigError
from girml.config.params import SECTIONS, parse_section, read_params

# one overlay change: (label for errors, key path from the top, value)
Change = tuple[str, list[str], Any]


def _quoted(value: Any) -> Any:
    """``value`` with every string double-quoted when dumped.

    ruamel writes YAML 1.2, where a plain ``no`` or ``on`` is a string; PyYAML (how the stages
    read params) takes those as booleans, so strings written into params are always quoted.
    """
    if isinstance(value, str):
        return DoubleQuotedScalarString(value)
    if isinstance(value, list):
        return [_quoted(v) for v in value]
    if isinstance(value, dict):
        return {k: _quoted(v) for k, v in value.items()}
    return value


def _round_trip() -> YAML:
    """A ruamel loader/dumper that keeps comments, quotes and this project's list indentation."""
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 100
    rt.indent(mapping=2, sequence=4, offset=2)
    rep = rt.representer  # per instance: ruamel's add_representer would change the class
    rep.yaml_representers = {
        **rep.yaml_representers,
        type(None): lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"),
    }
    return rt


def overlay_params(text: str, changes: Sequence[Change], source: str) -> tuple[str, dict[str, Any]]:
    """Set values in params text, keeping its comments and order, and validate the result.

    The one way settings are laid over ``params.yaml``: ``girml profile`` (a profile's leaves),
    the flow's ``-S``-style overrides (``pipelines.overrides.apply_overrides``) and anything else
    that edits the file go through it.

    Args:
        text: the params file's text.
        changes: ``(label, key path, value)``: the label names the change in errors (an
            override's text, a profile's dotted key); the key path starts with a section; a
            value replaces what is there (mappings are replaced whole only when given as a leaf).
        source: where the changes come from, for validation messages.

    Returns:
        The new text and the new params as plain data (as the stages will read them).

    Raises:
        ConfigError: an unknown section, a key path through a non-mapping, or a section that
            no longer validates (the message names the dotted key).
    """
    rt = _round_trip()
    data = rt.load(text) or {}
    for label, keys, _ in changes:
        if keys[0] not in SECTIONS:
            raise ConfigError(f"{label}: unknown section {keys[0]!r}; known: {sorted(SECTIONS)}")
    set_leaves(data, [(label, keys, _quoted(value)) for label, keys, value in changes])
    buffer = io.StringIO()
    rt.dump(data, buffer)
    plain = yaml.safe_load(buffer.getvalue()) or {}
    for section, raw in plain.items():
        parse_section(raw, section, SECTIONS[section], source=source)
    return buffer.getvalue(), plain


def profile_changes(profile: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[Change]:
    """A profile's leaves as :func:`overlay_params` changes: mappings are walked, every other
    value (lists included) replaces what the base has."""
    changes: list[Change] = []
    for key, value in profile.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and value:
            changes += profile_changes(value, path)
        else:
            changes.append((".".join(path), list(path), value))
    return changes


def set_leaves(data: MutableMapping[str, Any], changes: Sequence[Change]) -> None:
    """Set each change's key path in ``data`` (in place): the overlay rule, in one place.

    Missing or null mappings on the way are created; a value replaces what is there.

    Raises:
        ConfigError: a key path runs through a value that is not a mapping (names the label).
    """
    for label, keys, value in changes:
        node = data
        for depth, key in enumerate(keys[:-1]):
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
            if not isinstance(node, MutableMapping):
                where = ".".join(keys[: depth + 1])
                raise ConfigError(f"{label}: {where} is not a mapping")
        node[keys[-1]] = value


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` laid over it by the same rule as :func:`overlay_params`
    (:func:`profile_changes`, then :func:`set_leaves`): its in-memory form, for the tuning
    overlays on model/train settings that are not a file."""
    out = copy.deepcopy(dict(base))
    set_leaves(out, profile_changes(dict(override)))
    return out


def profile_text(base_path: str | Path, profile_path: str | Path) -> tuple[str, dict[str, Any]]:
    """The base params file with the profile laid over it (:func:`overlay_params`): its text,
    comments kept, and the merged mapping."""
    read_params(base_path)  # the base exists and is valid before it is edited
    changes = profile_changes(read_params(profile_path))
    text = Path(base_path).read_text(encoding="utf-8")
    return overlay_params(text, changes, source=str(profile_path))
