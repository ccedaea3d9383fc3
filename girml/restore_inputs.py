"""What ``girml restore`` will do, settled before a model loads: the image files its inputs
name, the output PNG of each, and the inputs that cannot be used and why.

Output names mirror the inputs (:func:`plan_restore`):

- a file given as an argument: ``OUT/<stem>.png``;
- a file found in a folder argument keeps its path relative to that folder: with one folder
  argument ``in/sub/a.jpg`` -> ``OUT/sub/a.png``; with several, each folder's files go under a
  sub-folder named after it (``2023/x.jpg`` -> ``OUT/2023/x.png``, ``2024/x.jpg`` ->
  ``OUT/2024/x.png``);
- files of one folder that share a stem (``a.jpg`` and ``a.png``) are each named after their full
  name (``a.jpg.png``, ``a.png.png``).

Two inputs that would still be written to the same path are an error naming both, raised
before any work is done.
"""

from __future__ import annotations

import os
import stat
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from girml.core.files import WalkProblem, walk_files


@dataclass(frozen=True)
class Job:
    """One image to restore: the input file (as reached from the arguments) and its PNG."""

    source: Path
    output: Path


@dataclass
class RestorePlan:
    """The outcome of :func:`plan_restore`.

    Attributes:
        inputs: the files and folders asked for, as given.
        out_dir: the output folder.
        jobs: the images to restore, in order (each folder's files sorted).
        failures: ``(path, reason)`` for every input that cannot be used: missing, not a
            regular file, unreadable, over the byte cap, a link loop or unreadable folder met
            while walking a folder argument.
    """

    inputs: list[Path]
    out_dir: Path
    jobs: list[Job] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)


def plan_restore(inputs: list[Path], out_dir: Path, max_bytes: int) -> RestorePlan:
    """Find the image files of ``inputs``, name their outputs under ``out_dir`` and check them.

    Folders are searched recursively for files with an image suffix (any case; hidden files and
    folders skipped), following linked folders (:func:`girml.core.files.walk_files`). Each file is
    then checked without being decoded: it exists, is a regular file, can be opened and is at
    most ``max_bytes`` long. Output names follow the module's rule; the same file reached twice
    for the same output (``in/`` and ``in/a.png``) is restored once.

    Args:
        inputs: image files and/or folders, as the user gave them.
        out_dir: the output folder (nothing is created).
        max_bytes: larger files fail (``--max-file-bytes``).

    Returns:
        The jobs in order, and the failures (those met walking the arguments first).

    Raises:
        ValueError: two inputs would be written to the same output (or one output would be a
            folder that another needs), naming both inputs; or an output would overwrite an
            input (``out_dir`` is an input folder).
    """
    plan = RestorePlan([Path(p) for p in inputs], Path(out_dir))
    found = _discover(plan)
    outputs = _name_outputs(found)
    _check_collisions(found, outputs)
    sources = {os.path.realpath(source) for source, _ in found}
    for output in outputs:
        if os.path.realpath(output) in sources:
            raise ValueError(f"output {output} would overwrite an input; choose another out_dir")
    for (source, _), output in zip(found, outputs, strict=True):
        reason = check_input(source, max_bytes)
        if reason is None:
            plan.jobs.append(Job(source, output))
        else:
            plan.failures.append((source, reason))
    return plan


def check_input(path: Path, max_bytes: int) -> str | None:
    """Why the image file ``path`` cannot be restored, found without decoding it; None if fine.

    Checks that it exists, is a regular file (opening a FIFO could wait forever), is at most
    ``max_bytes`` long and can be opened for reading.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "no such file or folder"
    except OSError as exc:
        return f"unreadable file ({exc.strerror or exc})"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size > max_bytes:
        return (
            f"file too large: {info.st_size} bytes exceeds max_file_bytes={max_bytes} "
            "(raise it with --max-file-bytes)"
        )
    return _open_problem(path)


def _open_problem(path: Path) -> str | None:
    """Why ``path`` cannot be opened for reading, or None."""
    try:
        with open(path, "rb"):
            return None
    except OSError as exc:
        return f"unreadable file ({exc.strerror or exc})"


def _discover(plan: RestorePlan) -> list[tuple[Path, Path]]:
    """``(file, output folder)`` for every file the arguments name, without repeats; what
    cannot be used (missing arguments, problems met walking folders) goes to
    ``plan.failures``."""
    folders = [item for item in plan.inputs if item.is_dir()]
    found: list[tuple[Path, Path]] = []
    for item in plan.inputs:
        if item.is_dir():
            walked = list(walk_files(item))
            plan.failures.extend((p.path, p.reason) for p in walked if isinstance(p, WalkProblem))
            base = plan.out_dir / _folder_name(item) if len(folders) > 1 else plan.out_dir
            files = sorted(p for p in walked if isinstance(p, Path))
            found += [(file, base / file.relative_to(item).parent) for file in files]
        elif item.is_file():
            found.append((item, plan.out_dir))
        elif item.exists() or item.is_symlink():
            reason = "not a regular file" if item.exists() else _broken_link(item)
            plan.failures.append((item, reason))
        else:
            plan.failures.append((item, "no such file or folder"))
    seen: set[tuple[str, Path]] = set()
    unique = []
    for source, folder in found:
        key = (os.path.realpath(source), folder)
        if key not in seen:
            seen.add(key)
            unique.append((source, folder))
    return unique


def _folder_name(folder: Path) -> str:
    """The sub-folder a folder argument's outputs go under: its name (``.`` -> the current
    folder's name)."""
    return folder.name or Path(os.path.realpath(folder)).name or "root"


def _broken_link(path: Path) -> str:
    return f"broken symbolic link to {os.readlink(path)}"


def _name_outputs(found: list[tuple[Path, Path]]) -> list[Path]:
    """The output PNG of each ``(file, output folder)``: ``<stem>.png``, or ``<name>.png`` when
    another file of the same input folder going to the same output folder shares the stem."""
    shared = Counter((folder, source.parent, source.stem) for source, folder in found)
    outputs = []
    for source, folder in found:
        alone = shared[folder, source.parent, source.stem] == 1
        outputs.append(folder / f"{source.stem if alone else source.name}.png")
    return outputs


def _check_collisions(found: list[tuple[Path, Path]], outputs: list[Path]) -> None:
    """Raise ValueError naming two inputs that would be written to one path, or an output that
    another output needs as a folder."""
    by_output: dict[Path, list[Path]] = defaultdict(list)
    for (source, _), output in zip(found, outputs, strict=True):
        by_output[output].append(source)
    clashes = [(out, sources) for out, sources in by_output.items() if len(sources) > 1]
    if clashes:
        output, (first, second, *_) = clashes[0]
        more = f" ({len(clashes) - 1} more output(s) clash too)" if len(clashes) > 1 else ""
        raise ValueError(
            f"{first} and {second} would both be restored to {output}{more}; restore them "
            "into different -o folders, or pass the folders that hold them"
        )
    parents = {parent: output for output in outputs for parent in output.parents}
    for (source, _), output in zip(found, outputs, strict=True):
        if output in parents:
            other = found[outputs.index(parents[output])][0]
            raise ValueError(
                f"{source} would be restored to {output}, which {other} needs as a folder; "
                "restore them into different -o folders"
            )
