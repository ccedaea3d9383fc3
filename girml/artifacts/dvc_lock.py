"""The one reader of ``dvc.lock`` a release needs: each stage's command, params and outputs.

Used by :mod:`girml.artifacts.provenance` to say which command trained the model and whether the
working tree's data and degradation spec are still those the model was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def read_lock(path: Path) -> dict[str, Any]:
    """``dvc.lock`` as a mapping; empty when the file is absent or empty."""
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def lock_stage(lock: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """Stage ``stage`` of a :func:`read_lock` mapping (``cmd``, ``params``, ``outs``...); empty
    when the lock has no such stage."""
    value = (lock.get("stages") or {}).get(stage)
    return value if isinstance(value, dict) else {}


def lock_out_md5(lock: Mapping[str, Any], stage: str, path: str) -> str | None:
    """The md5 ``dvc.lock`` records for output ``path`` of ``stage``; None when not recorded."""
    for out in lock_stage(lock, stage).get("outs") or []:
        if isinstance(out, dict) and out.get("path") == path:
            return str(out.get("md5")) if out.get("md5") else None
    return None
