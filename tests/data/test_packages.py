"""The ``packages`` collect source: pinned package images, installed or from a ``.deb``."""

from __future__ import annotations

import csv
import hashlib
import io
import lzma
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from girml.config import CollectConfig, PackageSource, SplitFractions
from girml.config import parse_section as parse
from girml.core.imageio import box_reduce, reduce_factor
from girml.data import packages
from girml.data.collect import assign_split, collect
from girml.data.packages import DEFAULT_PIN_FILE, PIN_COLUMNS, read_pin_file
from girml.data.sources import SourceError, SourceItem, list_source
from tests.factories import textured_image

PHOTO = "/usr/share/backgrounds/lake_by_someone.jpg"
ART = "/usr/share/wallpapers/Swirl/contents/images/640x480.png"


def _png(seed: int, height: int, width: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(textured_image(seed, height, width)).save(buf, format="PNG")
    return buf.getvalue()


def _ar_member(name: str, body: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode("ascii")
    return header + body + (b"\n" if len(body) % 2 else b"")


def write_deb(path: Path, files: dict[str, bytes]) -> Path:
    """A minimal ``.deb``: an ar archive whose ``data.tar.xz`` holds ``files`` (absolute paths)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo("." + name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    data = lzma.compress(buf.getvalue())
    path.write_bytes(
        b"!<arch>\n"
        + _ar_member("debian-binary", b"2.0\n")
        + _ar_member("control.tar.xz", lzma.compress(b""))
        + _ar_member("data.tar.xz", data)
    )
    return path


def write_pins(path: Path, rows: list[tuple[str, str, bytes, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(PIN_COLUMNS)
        for package, file, body, category in rows:
            digest = hashlib.sha256(body).hexdigest()
            writer.writerow([package, file, digest, category, "A. Author", "CC-BY-4.0"])
    return path


@pytest.fixture
def package_set(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """A pin file for two images of ``pkg-photos`` and the package's ``.deb`` in a cache."""
    files = {PHOTO: _png(1, 300, 400), ART: _png(2, 120, 160)}
    cache = tmp_path / "cache"
    cache.mkdir()
    write_deb(cache / "pkg-photos_1.0_all.deb", files)
    pins = write_pins(
        tmp_path / "pins.csv",
        [
            ("pkg-photos", PHOTO, files[PHOTO], "photo"),
            ("pkg-photos", ART, files[ART], "illustration"),
        ],
    )
    return pins, cache, files


def _source(pins: Path, cache: Path, root: Path, **extra: object) -> PackageSource:
    return parse(
        {
            "type": "packages",
            "pin_file": str(pins),
            "cache_dir": str(cache),
            "root": str(root),
            **extra,
        },
        "collect.sources[0]",
        PackageSource,
    )


def test_images_come_from_the_deb_when_the_package_is_not_installed(
    package_set: tuple[Path, Path, dict[str, bytes]], tmp_path: Path
) -> None:
    pins, cache, files = package_set
    entries = list_source(_source(pins, cache, tmp_path / "empty-root", max_side=200))
    assert all(isinstance(e, SourceItem) for e in entries)
    assert [(e.origin, e.category) for e in entries] == [
        (f"pkg-photos:{PHOTO}", "photo"),
        (f"pkg-photos:{ART}", "illustration"),
    ]
    # only the pinned files were extracted, each where its path says
    assert (cache / "pkg-photos" / PHOTO.lstrip("/")).read_bytes() == files[PHOTO]
    photo = entries[0].load(10**8)
    assert photo.shape == (150, 200, 3)  # 400 px reduced by 2 to at most 200
    expected = box_reduce(textured_image(1, 300, 400), 2)
    np.testing.assert_array_equal(photo, expected)
    assert entries[1].load(10**8).shape == (120, 160, 3)  # small enough: as is


def test_installed_files_are_read_without_downloading(
    package_set: tuple[Path, Path, dict[str, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pins, _, files = package_set
    root = tmp_path / "root"
    for name, body in files.items():
        (root / name.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / name.lstrip("/")).write_bytes(body)

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("downloaded although the package is installed")

    monkeypatch.setattr(packages, "_download_deb", no_download)
    entries = list_source(_source(pins, tmp_path / "no-cache", root))
    assert len(entries) == 2 and not (tmp_path / "no-cache").exists()


def test_a_changed_or_missing_image_is_an_error_naming_each(
    package_set: tuple[Path, Path, dict[str, bytes]], tmp_path: Path
) -> None:
    pins, cache, files = package_set
    root = tmp_path / "root"
    changed = root / PHOTO.lstrip("/")
    changed.parent.mkdir(parents=True)
    changed.write_bytes(files[PHOTO] + b"tampered")
    # the ART file is absent from the root and from the (replaced) package
    write_deb(cache / "pkg-photos_1.0_all.deb", {PHOTO: files[PHOTO]})
    with pytest.raises(SourceError) as err:
        list_source(_source(pins, cache, root))
    message = str(err.value)
    assert f"{PHOTO} changed" in message and f"{ART} is missing" in message
    assert "2 pinned image(s)" in message


def test_package_and_category_filters(
    package_set: tuple[Path, Path, dict[str, bytes]], tmp_path: Path
) -> None:
    pins, cache, _ = package_set
    only_photos = list_source(_source(pins, cache, tmp_path, categories=["photo"]))
    assert [e.category for e in only_photos] == ["photo"]
    with pytest.raises(SourceError, match="pins no image of package"):
        list_source(_source(pins, cache, tmp_path, packages=["other-package"]))


def test_without_apt_get_or_a_deb_the_error_says_what_to_do(
    package_set: tuple[Path, Path, dict[str, bytes]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pins, _, _ = package_set
    monkeypatch.setattr(packages.shutil, "which", lambda name: None)
    with pytest.raises(SourceError, match="apt-get is missing"):
        list_source(_source(pins, tmp_path / "empty-cache", tmp_path))


def test_a_bad_pin_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "pins.csv"
    bad.write_text("package,path\nx,/a.png\n", encoding="utf-8")
    with pytest.raises(SourceError, match="lacks column"):
        read_pin_file(bad)
    with pytest.raises(SourceError, match="cannot read pin file"):
        read_pin_file(tmp_path / "absent.csv")


def test_collect_records_the_category_and_the_sources_own_split(
    package_set: tuple[Path, Path, dict[str, bytes]], tmp_path: Path
) -> None:
    pins, cache, _ = package_set
    own = {"val": 0.45, "test": 0.45}
    cfg = parse(
        {
            "sources": [
                {
                    "type": "packages",
                    "pin_file": str(pins),
                    "cache_dir": str(cache),
                    "root": str(tmp_path / "nothing"),
                    "split": own,
                }
            ],
            "min_size": 32,
        },
        "collect",
        CollectConfig,
    )
    collect(cfg, tmp_path / "clean", workers=1)
    with (tmp_path / "clean" / "manifest.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["category"] for r in rows) == ["illustration", "photo"]
    for row in rows:
        assert row["source"] == "packages"
        assert row["split"] == assign_split(row["id"], SplitFractions(**own))


def test_box_reduction_is_exact_and_minimal() -> None:
    assert reduce_factor(1600, 2560, 1600) == 2
    assert reduce_factor(2988, 5312, 1600) == 4
    assert reduce_factor(800, 1280, 1600) == 1 and reduce_factor(800, 1280, None) == 1
    pixels = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    reduced = box_reduce(pixels, 2)
    assert reduced.shape == (2, 3, 3)
    assert reduced[0, 0, 0] == int(pixels[:2, :2, 0].mean() + 0.5)  # rounded half up


def test_the_committed_pin_file_is_the_three_packages_with_credits() -> None:
    pins = read_pin_file(DEFAULT_PIN_FILE)
    assert {p.package for p in pins} == {
        "lomiri-wallpapers-16.04",
        "plasma-workspace-wallpapers",
        "gnome-backgrounds",
    }
    assert {p.category for p in pins} == {"photo", "illustration"}
    assert sum(p.category == "photo" for p in pins) >= 25
    assert all(p.author and p.license for p in pins)
    assert len({p.path for p in pins}) == len(pins)
    assert all(int(p.sha256, 16) >= 0 and len(p.sha256) == 64 for p in pins)
    gnome = [p for p in pins if p.package == "gnome-backgrounds"]
    assert gnome and all(p.category == "illustration" for p in gnome)
