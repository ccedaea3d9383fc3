"""The flow's params overrides, in the ``dvc exp run -S`` form (``train.steps=200``): parsed,
refused when a URL in them carries credentials, and written into ``params.yaml`` through the
one overlay rule (:func:`girml.config.overlay_params`), comments kept, validated first."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from girml.config import ConfigError, overlay_params, read_params
from girml.core.imageio import write_text
from girml.core.urls import mask_text, text_credentials

_OVERRIDE = re.compile(r"^(?P<key>[A-Za-z_][\w-]*(?:\.[\w-]+)+)=(?P<value>.*)$", re.S)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split an override in ``dvc exp run -S`` form into its key path and YAML value.

    Args:
        text: ``"section.key=value"``, e.g. ``"train.steps=200"``; nested keys are dotted
            (``"collect.split.val=0.2"``); the value is parsed as YAML (``200`` -> int,
            ``[1, 2]`` -> list, ``true`` -> bool).

    Raises:
        ConfigError: ``text`` is not of that form, or a URL in it carries credentials
            (``user:password@``, a token or signature in the query): overrides become
            flow-run parameters and params values, both stored; the message shows it masked.
    """
    shown = mask_text(repr(text))
    found = text_credentials(text)
    if found:
        raise ConfigError(
            f"override {shown}: credentials in a URL ({', '.join(found)}) are refused; put "
            "them in the environment, ~/.netrc or the AWS files"
        )
    match = _OVERRIDE.match(text.strip())
    if match is None:
        raise ConfigError(f"override {shown}: expected section.key=value, e.g. train.steps=200")
    try:
        value = yaml.safe_load(match["value"]) if match["value"] else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {shown}: value is not valid YAML ({exc})") from None
    return match["key"].split("."), value


def apply_overrides(params_path: str | Path, overrides: Sequence[str]) -> dict[str, Any]:
    """Set ``overrides`` in a params file, keeping its comments; validate before writing.

    The result is parsed section by section with :mod:`girml.config`, so an unknown key or a bad
    value fails here, naming the dotted key, and leaves the file untouched.

    Args:
        params_path: the project's ``params.yaml``.
        overrides: ``section.key=value`` strings (see :func:`parse_override`).

    Returns:
        The new params as plain data (as the stages will read them).

    Raises:
        ConfigError: a malformed override, an unknown section or key, or an invalid value.
    """
    path = Path(params_path)
    read_params(path)  # the file exists and is valid before we touch it
    changes = []
    for text in overrides:
        keys, value = parse_override(text)
        changes.append((f"override {text!r}", keys, value))
    new_text, plain = overlay_params(
        path.read_text(encoding="utf-8"), changes, source=f"{path} (overrides)"
    )
    write_text(path, new_text)
    return plain
