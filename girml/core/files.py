"""Finding image files: which names count, and one folder walk for ``collect`` and ``restore``.

The walk follows symbolic links to folders (a photo library often links its albums in) and
stops at a link that leads back into a folder it is already inside: that loop, an unreadable
folder and a link that cannot be followed are reported as :class:`WalkProblem`, never skipped
in silence.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"}
)


def is_image_name(name: str) -> bool:
    """True for a visible file name with an image suffix (any case): ``a.JPG``, not
    ``.a.png`` nor ``notes.txt``; ``name`` may be a POSIX path (its last part is checked)."""
    last = PurePosixPath(name).name
    return not last.startswith(".") and PurePosixPath(last).suffix.lower() in IMAGE_SUFFIXES


@dataclass(frozen=True)
class WalkProblem:
    """A folder or file that :func:`walk_files` could not go into or use.

    Attributes:
        path: the path as reached from the root (through links, not resolved).
        reason: a short cause, e.g. ``"symbolic link loop: leads back to /photos"``.
    """

    path: Path
    reason: str


def walk_files(
    root: Path, want: Callable[[str], bool] = is_image_name
) -> Iterator[Path | WalkProblem]:
    """Every regular file under ``root`` whose name ``want`` accepts, and every problem met.

    Hidden folders (``.name``) are not entered. Links to folders are followed unless they lead
    to a folder the walk is already inside (its real path is one of the current folder's
    ancestors'): that is reported as a loop. A link to the same folder from two places is
    walked twice (no loop). Files are yielded as reached through links, in sorted order per
    folder; depth is not limited by Python's recursion limit.

    Args:
        root: the folder to walk (itself may be a link).
        want: file-name filter; only files it accepts (and problems with such names) are
            yielded. Problems with folders are always yielded.

    Yields:
        A :class:`~pathlib.Path` per regular file, a :class:`WalkProblem` per loop, unreadable
        folder, broken link or non-regular file (a FIFO named ``a.png``).
    """
    stack: list[tuple[Path, tuple[str, ...]]] = [(root, (os.path.realpath(root),))]
    while stack:
        folder, ancestors = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield WalkProblem(folder, f"unreadable folder ({exc.strerror or exc})")
            continue
        subfolders: list[tuple[Path, tuple[str, ...]]] = []
        for entry in entries:
            path = Path(entry.path)
            try:
                mode = os.stat(entry.path).st_mode  # follows links
            except OSError as exc:
                if want(entry.name) or exc.errno == errno.ELOOP:
                    yield WalkProblem(path, _link_problem(entry.path, exc))
                continue
            if stat.S_ISDIR(mode):
                if entry.name.startswith("."):
                    continue
                real = os.path.realpath(entry.path)
                if real in ancestors:
                    yield WalkProblem(path, f"symbolic link loop: leads back to {real}")
                    continue
                subfolders.append((path, (*ancestors, real)))
            elif want(entry.name):
                yield path if stat.S_ISREG(mode) else WalkProblem(path, "not a regular file")
        stack.extend(reversed(subfolders))


def _link_problem(path: str, exc: OSError) -> str:
    """Why ``path`` (a link, usually) cannot be followed."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (the link leads back to itself)"
    if os.path.islink(path) and exc.errno == errno.ENOENT:
        return f"broken symbolic link to {os.readlink(path)}"
    return f"unreadable ({exc.strerror or exc})"
