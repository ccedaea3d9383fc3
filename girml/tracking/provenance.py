"""Provenance tags: what produced a run (git commit and state, DVC output hashes, params hash,
the profile the params were made from).

Tags only: never environment variables or credentials. ``git_dirty`` counts changes to the
code and configuration only: what the pipeline itself writes (:func:`pipeline_paths`) does not
make a tree dirty, so a run in a fresh clone after ``dvc repro`` is clean.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import yaml

from girml.config import UNNAMED_PROFILE, params_profile
from girml.tracking.store import ARTIFACTS_DIR, DB_FILE

# written by the pipeline besides the outputs dvc.yaml declares: DVC's lock, the MLflow store
# (SQLite file, artifacts, a file store's mlruns/), checkpoints and the stage locks
_WRITTEN_BY_RUNS = ("dvc.lock", DB_FILE, f"{DB_FILE}-journal", ARTIFACTS_DIR, "mlruns")
_WRITTEN_BY_RUNS += ("checkpoints", ".girml")


def _git(root: Path, *args: str, strip: bool = True) -> str | None:
    """``git <args>`` output in ``root`` (stripped unless ``strip`` is False), or None outside
    git / without git."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() if strip else done.stdout


def dvc_output_hashes(lock_path: Path) -> dict[str, str]:
    """``{"dvc.<out path>": md5}`` for every stage output recorded in ``dvc.lock``.

    Returns an empty dict when the file does not exist (no stage has run yet).

    Raises:
        ValueError: the file is not valid YAML or not shaped like a ``dvc.lock``.
    """
    if not lock_path.is_file():
        return {}
    try:
        lock = yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}
        stages = lock.get("stages", {})
        return {
            f"dvc.{out['path']}": str(out["md5"])
            for stage in stages.values()
            for out in (stage or {}).get("outs", [])
            if "md5" in out
        }
    except yaml.YAMLError as exc:
        raise ValueError(f"{lock_path}: not valid YAML ({exc})") from None
    except (AttributeError, KeyError, TypeError) as exc:
        raise ValueError(f"{lock_path}: unexpected dvc.lock structure ({exc!r})") from None


def pipeline_paths(project_root: Path) -> list[str]:
    """The paths (relative to ``project_root``, ``/``-separated) that running the pipeline writes.

    The outputs, metrics and plots of every stage in ``dvc.yaml`` (a ``foreach`` stage's
    templated path counts up to its first ``${``), the ``.gitignore`` DVC keeps next to each
    output, and :data:`_WRITTEN_BY_RUNS`. Without a ``dvc.yaml``, only the latter.

    Raises:
        ValueError: ``dvc.yaml`` is not valid YAML or not shaped like one (the message names it).
    """
    paths = set(_WRITTEN_BY_RUNS)
    dvc_yaml = project_root / "dvc.yaml"
    if not dvc_yaml.is_file():
        return sorted(paths)
    try:
        stages = (yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}).get("stages", {})
        for stage in stages.values():
            body = stage.get("do", stage)
            for key in ("outs", "metrics", "plots"):
                for entry in body.get(key, []):
                    out = str(next(iter(entry)) if isinstance(entry, dict) else entry)
                    out = out.split("${", 1)[0].rstrip("/")
                    if out:
                        paths.add(out)
                        parent = out.rsplit("/", 1)[0] if "/" in out else ""
                        paths.add(f"{parent}/.gitignore" if parent else ".gitignore")
    except yaml.YAMLError as exc:
        raise ValueError(f"{dvc_yaml}: not valid YAML ({exc})") from None
    except (AttributeError, StopIteration, TypeError) as exc:
        raise ValueError(f"{dvc_yaml}: unexpected dvc.yaml structure ({exc!r})") from None
    return sorted(paths)


def changed_paths(project_root: Path) -> list[str] | None:
    """The paths ``git status`` reports as changed or untracked (each untracked file listed),
    both sides of a rename; None outside git or without git."""
    status = _git(project_root, "status", "--porcelain", "-z", "--untracked-files=all", strip=False)
    if status is None:
        return None
    paths: list[str] = []
    entries = iter(status.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":  # -z puts a rename's source in the next entry
            paths.append(next(entries, ""))
    return [path for path in paths if path]


def is_dirty(project_root: Path) -> bool | None:
    """Whether code or configuration changed since the last commit: :func:`changed_paths` other
    than :func:`pipeline_paths` (or inside them). None outside git or without git."""
    changed = changed_paths(project_root)
    if changed is None:
        return None
    written = pipeline_paths(project_root)
    return any(
        not any(path == out or path.startswith(f"{out}/") for out in written) for path in changed
    )


def provenance_tags(project_root: Path, params_path: Path) -> dict[str, str]:
    """Run tags that pin what produced a run (never environment variables or credentials).

    Args:
        project_root: the git work tree holding ``dvc.lock``.
        params_path: the params file; relative paths are taken from ``project_root``.

    Returns:
        ``git_commit`` (``"unknown"`` outside git or before the first commit), ``git_dirty``
        (``"true"``/``"false"`` from :func:`is_dirty`: untracked files count, pipeline outputs
        do not; ``"unknown"`` outside git),
        ``dvc.<out path>`` = md5 of each output in ``dvc.lock``, ``params_hash`` (first 16
        hex digits of the params file's sha256) and ``profile``, the file's ``profile`` key
        (``quick`` for the committed defaults, ``release`` after ``girml profile
        profiles/release.yaml``; :data:`~girml.config.UNNAMED_PROFILE` when the file does not
        say).
    """
    params_file = params_path if params_path.is_absolute() else project_root / params_path
    if not params_file.is_file():
        raise FileNotFoundError(f"params file {params_file} not found")
    dirty = is_dirty(project_root)
    return {
        "git_commit": _git(project_root, "rev-parse", "HEAD") or "unknown",
        "git_dirty": "unknown" if dirty is None else str(dirty).lower(),
        **dvc_output_hashes(project_root / "dvc.lock"),
        "params_hash": hashlib.sha256(params_file.read_bytes()).hexdigest()[:16],
        "profile": _profile(params_file),
    }


def _profile(params_file: Path) -> str:
    """The params file's ``profile`` key (:func:`girml.config.params_profile`); the stages have
    checked the file, so anything unreadable here only reads as not named."""
    try:
        raw = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return UNNAMED_PROFILE
    return params_profile(raw) if isinstance(raw, dict) else UNNAMED_PROFILE
