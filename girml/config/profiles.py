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
from girml.config.params import (
    PROFILE_KEY,
    SECTIONS,
    check_profile_name,
    params_profile,
    parse_section,
    read_params,
)

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

    A change may also set the top-level :data:`~girml.config.params.PROFILE_KEY` (the profile's
    name); when the text has no such key yet, it is put first.

    Raises:
        ConfigError: an unknown section, a key path through a non-mapping, a section that
            no longer validates (the message names the dotted key), or a bad profile name.
    """
    rt = _round_trip()
    data = rt.load(text) or {}
    for label, keys, _ in changes:
        if keys == [PROFILE_KEY]:
            continue
        if keys[0] not in SECTIONS:
            raise ConfigError(f"{label}: unknown section {keys[0]!r}; known: {sorted(SECTIONS)}")
    if PROFILE_KEY not in data and any(keys == [PROFILE_KEY] for _, keys, _ in changes):
        data.insert(0, PROFILE_KEY, None)  # first, where a reader of the file looks
    set_leaves(data, [(label, keys, _quoted(value)) for label, keys, value in changes])
    buffer = io.StringIO()
    rt.dump(data, buffer)
    plain = yaml.safe_load(buffer.getvalue()) or {}
    for section, raw in plain.items():
        if section == PROFILE_KEY:
            check_profile_name(raw, source)
        else:
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


def profile_name(base: Mapping[str, Any], profile: Mapping[str, Any], profile_path: Path) -> str:
    """The :data:`~girml.config.params.PROFILE_KEY` of ``profile`` laid over ``base``.

    The profile's own name is its ``profile:`` key, else its file's stem
    (``profiles/release.yaml`` -> ``release``). Laid over the quick defaults (``profile:
    quick``), the result is that name; laid over another profile, the two are joined by ``+``
    (``long+study``: the card's reproduction commands apply them in that order), and laying
    the same profile again changes nothing. A base without the key reads as
    :data:`~girml.config.params.UNNAMED_PROFILE`.

    Raises:
        ConfigError: the stem is no valid name and the file does not set ``profile:``.
    """
    own = profile.get(PROFILE_KEY) or profile_path.stem
    check_profile_name(own, f"{profile_path} (set `{PROFILE_KEY}: <name>` in it)")
    under = params_profile(dict(base))
    if under == "quick":
        return own
    return under if under == own or under.endswith(f"+{own}") else f"{under}+{own}"


def profile_text(base_path: str | Path, profile_path: str | Path) -> tuple[str, dict[str, Any]]:
    """The base params file with the profile laid over it (:func:`overlay_params`): its text,
    comments kept, and the merged mapping, whose ``profile`` key names it (:func:`profile_name`).
    """
    base = read_params(base_path)  # the base exists and is valid before it is edited
    profile = read_params(profile_path)
    name = profile_name(base, profile, Path(profile_path))
    sections = {k: v for k, v in profile.items() if k != PROFILE_KEY}
    changes = [*profile_changes(sections), (PROFILE_KEY, [PROFILE_KEY], name)]
    text = Path(base_path).read_text(encoding="utf-8")
    return overlay_params(text, changes, source=str(profile_path))
