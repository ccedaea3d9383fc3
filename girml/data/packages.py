"""The ``packages`` collect source: photos and illustrations shipped by Debian/Ubuntu packages.

Every image is pinned in a committed CSV (``package,path,sha256,category,author,license``;
:data:`DEFAULT_PIN_FILE` for ``lomiri-wallpapers-16.04``, ``plasma-workspace-wallpapers`` and
``gnome-backgrounds``). An image is read from the installed package (``root``/path) when it is
there; otherwise ``apt-get download`` fetches the package's ``.deb`` into ``cache_dir`` and its
pinned files are extracted next to it (no root rights, no install). Listing verifies every
pinned file first: a missing or changed image stops collect with an error naming each one, so
nothing is written from a set that is not the pinned one. Files of the package that the pin file
does not list are not read.

Large images are reduced by an integer box factor (``max_side``), which is exact arithmetic
and so gives the same pixels, and the same image ids, on any machine.
"""

from __future__ import annotations

import csv
import functools
import io
import lzma
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from girml.config import PackageSource
from girml.core.hashing import file_digest
from girml.core.imageio import DEFAULT_MAX_FILE_BYTES, box_reduce, read_image, reduce_factor
from girml.data.sources import SOURCES, Entry, SourceError, SourceItem

DEFAULT_PIN_FILE = Path(__file__).with_name("package_photos.csv")
PIN_COLUMNS = ("package", "path", "sha256", "category", "author", "license")
_AR_MAGIC = b"!<arch>\n"
_APT_TIMEOUT_S = 600


@dataclass(frozen=True)
class PinnedImage:
    """One row of the pin file: an image file inside a package, with its credit."""

    package: str
    path: str  # absolute path as installed, e.g. /usr/share/backgrounds/x.jpg
    sha256: str
    category: str
    author: str
    license: str


def read_pin_file(pin_file: Path) -> list[PinnedImage]:
    """The pinned images of ``pin_file``, in file order.

    Raises:
        SourceError: the file is missing, lacks a column, or a row is incomplete.
    """
    try:
        text = Path(pin_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"{pin_file}: cannot read pin file ({exc.strerror or exc})") from None
    reader = csv.DictReader(text.splitlines())
    missing = set(PIN_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise SourceError(f"{pin_file}: pin file lacks column(s) {sorted(missing)}")
    pins = []
    for line, row in enumerate(reader, start=2):
        values = {key: (row[key] or "").strip() for key in PIN_COLUMNS}
        empty = [key for key in ("package", "path", "sha256", "category") if not values[key]]
        if empty or len(values["sha256"]) != 64:
            raise SourceError(
                f"{pin_file}:{line}: incomplete pin row ({', '.join(empty) or 'sha256'})"
            )
        pins.append(PinnedImage(**values))
    return pins


def _member_path(name: str) -> str:
    """A tar member name (``./usr/share/...``) as an absolute POSIX path."""
    return "/" + PurePosixPath(name.lstrip("./")).as_posix()


def _deb_data_tar(deb: Path) -> tarfile.TarFile:
    """The ``data.tar.*`` member of a ``.deb`` (an ``ar`` archive), opened for reading."""
    raw = deb.read_bytes()
    if not raw.startswith(_AR_MAGIC):
        raise SourceError(f"{deb}: not a Debian package (no ar header)")
    pos = len(_AR_MAGIC)
    while pos + 60 <= len(raw):
        header = raw[pos : pos + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        body = raw[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise SourceError(
                    f"{deb}: data.tar.zst needs dpkg-deb; install the package instead "
                    "(apt-get install) or extract it under the source's root"
                )
            if name.endswith(".xz"):
                body = lzma.decompress(body)
            return tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
    raise SourceError(f"{deb}: no data.tar member")


def _download_deb(package: str, cache_dir: Path) -> Path:
    """``apt-get download package`` into ``cache_dir``; the ``.deb`` it wrote."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    found = sorted(cache_dir.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    if shutil.which("apt-get") is None:
        raise SourceError(
            f"package {package!r} is not installed and apt-get is missing: install it on a "
            f"Debian/Ubuntu host, or put its .deb in {cache_dir}"
        )
    proc = subprocess.run(
        ["apt-get", "download", package],
        cwd=cache_dir,
        capture_output=True,
        text=True,
        timeout=_APT_TIMEOUT_S,
        check=False,
    )
    found = sorted(cache_dir.glob(f"{package}_*.deb"))
    if proc.returncode != 0 or not found:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SourceError(
            f"apt-get download {package} failed (exit {proc.returncode}): {last[0]}; run "
            "'apt-get update' or install the package"
        )
    return found[-1]


def _extract_pinned(package: str, wanted: set[str], cache_dir: Path) -> Path:
    """Extract the pinned files of ``package`` from its ``.deb`` into ``cache_dir/package``.

    Only the members named in ``wanted`` are written, each to its computed path under the
    extraction root (no member name decides where a file goes).
    """
    root = cache_dir / package
    if all((root / p.lstrip("/")).is_file() for p in wanted):
        return root
    deb = _download_deb(package, cache_dir)
    with _deb_data_tar(deb) as tar:
        for member in tar:
            path = _member_path(member.name)
            if path not in wanted or not member.isfile():
                continue
            stream = tar.extractfile(member)
            if stream is None:
                continue
            dest = root / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(dest.name + ".part")
            with stream, part.open("wb") as out:
                shutil.copyfileobj(stream, out)
            part.replace(dest)
    return root


def _locate(pins: list[PinnedImage], cfg: PackageSource) -> dict[str, Path]:
    """Where each pinned image is on disk: installed under ``root``, else extracted."""
    located: dict[str, Path] = {}
    by_package: dict[str, list[PinnedImage]] = {}
    for pin in pins:
        installed = Path(cfg.root) / pin.path.lstrip("/")
        if installed.is_file():
            located[pin.path] = installed
        else:
            by_package.setdefault(pin.package, []).append(pin)
    for package, missing in by_package.items():
        root = _extract_pinned(package, {p.path for p in missing}, Path(cfg.cache_dir))
        for pin in missing:
            located[pin.path] = root / pin.path.lstrip("/")
    return located


def _load(
    path: Path, max_side: int | None, max_pixels: int, max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> np.ndarray:
    pixels = read_image(path, max_pixels=max_pixels, max_bytes=max_bytes)
    return box_reduce(pixels, reduce_factor(*pixels.shape[:2], max_side))


@SOURCES.register("packages")
def _packages(cfg: PackageSource, *, max_member_bytes: int) -> Iterator[Entry]:
    pin_file = Path(cfg.pin_file)
    pins = read_pin_file(pin_file)
    known = sorted({p.package for p in pins})
    if cfg.packages is not None:
        unknown = sorted(set(cfg.packages) - set(known))
        if unknown:
            raise SourceError(f"{pin_file} pins no image of package(s) {unknown}; it has {known}")
        pins = [p for p in pins if p.package in cfg.packages]
    if cfg.categories is not None:
        pins = [p for p in pins if p.category in cfg.categories]
    located = _locate(pins, cfg)
    problems = []
    for pin in pins:
        path = located[pin.path]
        if not path.is_file():
            problems.append(f"{pin.package}: {pin.path} is missing")
        elif (digest := file_digest(path)) != pin.sha256:
            problems.append(
                f"{pin.package}: {pin.path} changed (sha256 {digest[:12]}..., pinned "
                f"{pin.sha256[:12]}...)"
            )
    if problems:
        raise SourceError(
            f"{len(problems)} pinned image(s) of {pin_file} differ from the packages: "
            + "; ".join(problems)
        )
    for pin in pins:
        load = functools.partial(_load, located[pin.path], cfg.max_side)
        yield SourceItem(
            "packages", f"{pin.package}:{pin.path}", pin.category, load, split=cfg.split
        )


def package_credits(manifest: Path, pin_file: Path = DEFAULT_PIN_FILE) -> list[dict[str, str]]:
    """Author and licence of every package image in a collect manifest, for model cards.

    Args:
        manifest: ``data/clean/manifest.csv`` (rows of source ``packages`` have the origin
            ``<package>:<path>``).
        pin_file: the pin file that names their authors and licences.

    Returns:
        One entry per package image, sorted by origin: ``package``, ``path``, ``category``,
        ``split``, ``author`` and ``license`` (``not in the pin file`` when it is not pinned).
    """
    with Path(manifest).open(encoding="utf-8") as fh:
        rows = [row for row in csv.DictReader(fh) if row.get("source") == "packages"]
    if not rows:
        return []
    pins = {f"{p.package}:{p.path}": p for p in read_pin_file(pin_file)}
    credits = []
    for row in sorted(rows, key=lambda r: r["origin"]):
        pin = pins.get(row["origin"])
        package, _, path = row["origin"].partition(":")
        credits.append(
            {
                "package": package,
                "path": path,
                "category": row["category"],
                "split": row["split"],
                "author": pin.author if pin else "not in the pin file",
                "license": pin.license if pin else "not in the pin file",
            }
        )
    return credits
