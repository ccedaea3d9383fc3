"""The collect stage: every source type against real local parts (files, moto S3, HTTP)."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from girml.config import CollectConfig, ConfigError, SplitFractions
from girml.data.collect import BUILTIN_IMAGES, assign_split, collect, image_id
from girml.data.sources import SourceError
from girml.storage import s3
from tests.factories import REPO, serving, textured_image

# --------------------------------------------------------------------------- helpers


def _cfg(*sources: dict[str, Any], **kwargs: Any) -> CollectConfig:
    return CollectConfig.model_validate({"sources": list(sources), "min_size": 16, **kwargs})


def _folder(path: Path, **kwargs: Any) -> dict[str, Any]:
    return {"type": "folder", "path": str(path), **kwargs}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _manifest(out: Path) -> list[dict[str, str]]:
    return _read_csv(out / "manifest.csv")


def _by_origin(out: Path) -> dict[str, dict[str, str]]:
    return {row["origin"]: row for row in _manifest(out)}


def _rejected(out: Path) -> dict[str, str]:
    return {row["origin"]: row["reason"] for row in _read_csv(out / "rejected.csv")}


def _pixels(out: Path, image_id_: str) -> np.ndarray:
    with Image.open(out / "images" / f"{image_id_}.png") as img:
        assert img.mode == "RGB"
        return np.asarray(img)


def _save(path: Path, pixels: np.ndarray, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **kwargs)
    return path


def _encode(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def _check_consistent(out: Path) -> None:
    """Every manifest row has its PNG, there is no other file and no temp file."""
    rows = _manifest(out)
    assert list(rows[0]) == ["id", "source", "origin", "width", "height", "category", "split"]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(
        f"{r['id']}.png" for r in rows
    )
    assert not list(out.rglob("*.tmp"))
    for row in rows:
        assert _pixels(out, row["id"]).shape == (int(row["height"]), int(row["width"]), 3)


# --------------------------------------------------------------------------- pure functions


def test_image_id_depends_on_pixels_and_shape() -> None:
    a = textured_image(0, 16, 24)
    assert image_id(a) == image_id(a.copy())
    assert len(image_id(a)) == 16 and int(image_id(a), 16) >= 0
    assert image_id(a.reshape(24, 16, 3)) != image_id(a)  # same bytes, other shape
    b = a.copy()
    b[0, 0, 0] ^= 1
    assert image_id(b) != image_id(a)
    with pytest.raises(ValueError, match="uint8"):
        image_id(a.astype(np.float32))


def test_assign_split_thresholds_and_fractions() -> None:
    fr = SplitFractions(val=0.1, test=0.3)
    assert assign_split("00000000aaaaaaaa", fr) == "test"
    assert assign_split(f"{int(0.3 * 2**32) + 1:08x}00000000", fr) == "val"
    assert assign_split(f"{int(0.4 * 2**32) + 1:08x}00000000", fr) == "train"
    assert assign_split("ffffffffffffffff", fr) == "train"
    assert assign_split("ffffffffffffffff", SplitFractions(val=0.0, test=0.0)) == "train"
    for bad in ("", "abc", "zzzzzzzz11111111"):
        with pytest.raises(ValueError, match="8 hex"):
            assign_split(bad, fr)
    rng = np.random.default_rng(0)
    ids = [rng.bytes(8).hex() for _ in range(20000)]
    counts = {s: 0 for s in ("train", "val", "test")}
    for i in ids:
        counts[assign_split(i, fr)] += 1
    assert abs(counts["test"] / 20000 - 0.3) < 0.02
    assert abs(counts["val"] / 20000 - 0.1) < 0.02


def test_collect_rejects_bad_workers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers must be >= 0, got -1"):
        collect(_cfg({"type": "builtin", "include": ["chelsea"]}), tmp_path, workers=-1)


# --------------------------------------------------------------------------- builtin


def test_builtin_table_files_are_installed_photos() -> None:
    modes = {}
    for name, entry in BUILTIN_IMAGES.items():
        with Image.open(entry.path()) as img:
            modes[name] = img.mode
            assert min(img.size) >= 160, name  # a 128 crop fits in every photo
    assert set(modes.values()) == {"RGB", "L"}
    assert sum(mode == "RGB" for mode in modes.values()) == 11
    # the grayscale textures and documents only add content: every content category of the
    # colour photos is still there, and the held-out scientific category gains the moon
    assert BUILTIN_IMAGES["moon"].category == "scientific"


def test_builtin_source_works_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("collect must not touch the network for builtin images")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    cfg = _cfg({"type": "builtin", "include": ["chelsea", "coffee"]})
    result = collect(cfg, tmp_path, workers=2)
    rows = _by_origin(tmp_path)
    assert result.n_images == 2 and result.n_rejected == 0
    assert result.n_train + result.n_val + result.n_test == 2
    assert {o: r["category"] for o, r in rows.items()} == {"chelsea": "animal", "coffee": "food"}
    assert (rows["chelsea"]["width"], rows["chelsea"]["height"]) == ("451", "300")
    assert {r["source"] for r in rows.values()} == {"builtin"}
    _check_consistent(tmp_path)
    assert _read_csv(tmp_path / "rejected.csv") == []
    assert (tmp_path / "rejected.csv").read_text() == "source,origin,reason\n"


def test_builtin_unknown_name_lists_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown builtin image\(s\) \['lena'\].*astronaut"):
        collect(_cfg({"type": "builtin", "include": ["lena"]}), tmp_path)


# --------------------------------------------------------------------------- folder


def test_folder_categories_and_conversion_rule(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    rgb = textured_image(1, 32, 48)
    _save(root / "animal" / "cat.png", rgb)
    _save(root / "deep" / "food" / "dish.png", textured_image(2, 40, 40))
    _save(root / "loose.png", textured_image(3, 20, 30))
    (root / "notes.txt").write_text("not collected")

    gray = np.full((24, 24), 77, np.uint8)
    _save(root / "modes" / "gray.png", gray)
    pal_idx = (np.arange(24 * 24) % 2).astype(np.uint8).reshape(24, 24)
    palette_img = Image.frombytes("P", (24, 24), pal_idx.tobytes())
    palette_img.putpalette([10, 20, 30, 200, 100, 50] + [0] * (254 * 3))
    palette_img.save(root / "modes" / "palette.png")
    rgba = np.zeros((24, 24, 4), np.uint8)
    rgba[..., :3] = (40, 80, 120)
    rgba[:12, :, 3] = 255  # opaque top half, transparent bottom half
    _save(root / "modes" / "rgba.png", rgba)
    deep = np.full((24, 24), 100 * 257, np.uint16)
    deep[0, 0] = 1000
    img16 = Image.fromarray(deep)
    assert img16.mode == "I;16"
    img16.save(root / "modes" / "deep16.png")
    raw = textured_image(4, 24, 40)  # H=24, W=40; Orientation=6 displays it rotated 90° CW
    exif = Image.Exif()
    exif[0x0112] = 6
    _save(root / "modes" / "rotated.jpg", raw, exif=exif, quality=95)
    with Image.open(root / "modes" / "rotated.jpg") as stored:
        stored_raw = np.asarray(stored.convert("RGB"))

    collect(_cfg(_folder(root)), tmp_path / "out", workers=2)
    out = tmp_path / "out"
    rows = _by_origin(out)
    cat = rows[str(root / "animal" / "cat.png")]
    assert (cat["category"], cat["width"], cat["height"]) == ("animal", "48", "32")
    assert np.array_equal(_pixels(out, cat["id"]), rgb)
    assert cat["id"] == image_id(rgb)
    assert rows[str(root / "deep" / "food" / "dish.png")]["category"] == "food"
    assert rows[str(root / "loose.png")]["category"] == "unknown"
    assert not any(o.endswith("notes.txt") for o in rows)

    def out_of(name: str) -> np.ndarray:
        return _pixels(out, rows[str(root / "modes" / name)]["id"])

    assert (out_of("gray.png") == 77).all()
    assert out_of("palette.png")[0, 0].tolist() == [10, 20, 30]
    assert out_of("palette.png")[0, 1].tolist() == [200, 100, 50]
    assert (out_of("rgba.png")[:12] == (40, 80, 120)).all()
    assert (out_of("rgba.png")[12:] == 255).all()
    assert (out_of("deep16.png")[1:, 1:] == 100).all() and out_of("deep16.png")[0, 0, 0] == 4
    rotated = rows[str(root / "modes" / "rotated.jpg")]
    assert (rotated["width"], rotated["height"]) == ("24", "40")
    assert np.array_equal(out_of("rotated.jpg"), np.rot90(stored_raw, k=-1))
    _check_consistent(out)


def test_folder_label_file_and_fixed_category(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _save(root / "a.png", textured_image(5, 20, 20))
    _save(root / "sub" / "b.png", textured_image(6, 20, 20))
    _save(root / "c.png", textured_image(7, 20, 20))
    labels = tmp_path / "labels.csv"
    labels.write_text("path,category\na.png,people\n./sub/b.png,scene\nmissing.png,food\n")

    src = _folder(root, category_from="label_file", label_file=str(labels))
    collect(_cfg(src), tmp_path / "out", workers=1)
    cats = {Path(o).name: r["category"] for o, r in _by_origin(tmp_path / "out").items()}
    assert cats == {"a.png": "people", "b.png": "scene", "c.png": "unknown"}

    collect(_cfg(_folder(root, category_from="fixed", category="nature")), tmp_path / "fixed")
    assert {r["category"] for r in _manifest(tmp_path / "fixed")} == {"nature"}

    labels.write_text("file,label\na.png,people\n")
    with pytest.raises(SourceError, match="path,category"):
        collect(_cfg(src), tmp_path / "bad")
    with pytest.raises(SourceError, match="not a directory"):
        collect(_cfg(_folder(tmp_path / "nowhere")), tmp_path / "bad")


def test_folder_of_broken_files_is_survived(tmp_path: Path) -> None:
    root = tmp_path / "broken"
    good = [textured_image(10 + i, 40, 40) for i in range(2)]
    for i, pixels in enumerate(good):
        _save(root / f"good{i}.png", pixels)
    (root / "empty.png").write_bytes(b"")
    png = _encode(textured_image(20, 60, 60))
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    jpeg = _encode(textured_image(21, 60, 60), "JPEG")
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "text.jpg").write_text("I am not a JPEG\n")
    _save(root / "bomb.png", textured_image(22, 100, 100))
    locked = _save(root / "locked.png", textured_image(23, 40, 40))
    locked.chmod(0)
    try:
        locked.read_bytes()
        unreadable_checked = False  # root ignores permissions: that case cannot be made here
    except PermissionError:
        unreadable_checked = True

    out = tmp_path / "out"
    result = collect(_cfg(_folder(root), max_pixels=5000), out, workers=2)
    locked.chmod(0o644)
    rejected = {Path(o).name: reason for o, reason in _rejected(out).items()}
    assert rejected["empty.png"] == "empty file"
    assert rejected["text.jpg"].startswith("not an image")
    assert rejected["bomb.png"].startswith("decompression bomb")
    for name in ("truncated.png", "truncated.jpg"):
        assert rejected[name].startswith(("truncated", "corrupt")), rejected[name]
    if unreadable_checked:
        assert rejected["locked.png"].startswith("unreadable file")
    kept = {Path(o).name for o in _by_origin(out)}
    assert {"good0.png", "good1.png"} <= kept
    assert result.n_images == len(kept) and result.n_rejected == len(rejected) >= 5
    _check_consistent(out)


def test_non_utf8_file_names_are_collected_under_an_escaped_name(tmp_path: Path) -> None:
    """Before: one name that is not UTF-8 aborted collect with no manifest at all."""
    root = tmp_path / "photos"
    for i in range(3):
        _save(root / "street" / f"ok{i}.png", textured_image(40 + i, 40, 40))
    bad_dir = os.fsencode(root) + b"/caf\xe9"  # Latin-1 folder name: also the category
    os.makedirs(bad_dir)
    with open(bad_dir + b"/bad\xff.png", "wb") as fh:
        fh.write(_encode(textured_image(50, 40, 40)))
    with open(os.fsencode(root) + b"/broken\xfe.png", "wb") as fh:
        fh.write(b"not a png")

    out = tmp_path / "out"
    result = collect(_cfg(_folder(root)), out, workers=2)
    assert result.n_images == 4 and result.n_rejected == 1
    origins = _by_origin(out)
    escaped = f"{root}/caf\\xe9/bad\\xff.png"
    assert origins[escaped]["category"] == "caf\\xe9"
    ((origin, reason),) = _rejected(out).items()
    assert origin == f"{root}/broken\\xfe.png" and reason.startswith("not an image")
    (out / "manifest.csv").read_text(encoding="utf-8")  # valid UTF-8 throughout
    (out / "rejected.csv").read_text(encoding="utf-8")
    _check_consistent(out)


# --------------------------------------------------------------------------- dedup, size, splits


def test_duplicates_kept_once_in_source_order_and_min_size(tmp_path: Path) -> None:
    pixels = textured_image(30, 32, 32)
    _save(tmp_path / "one" / "z.png", pixels)
    _save(tmp_path / "one" / "b.bmp", pixels)  # same pixels, other format: same id
    _save(tmp_path / "two" / "a.png", pixels)  # sorts first, but its source comes second
    _save(tmp_path / "two" / "thin.png", textured_image(31, 50, 10))

    cfg = _cfg(_folder(tmp_path / "one"), _folder(tmp_path / "two"))
    result = collect(cfg, tmp_path / "out", workers=2)
    out = tmp_path / "out"
    rows = _manifest(out)
    the_id = image_id(pixels)
    assert [(r["id"], r["origin"]) for r in rows] == [(the_id, str(tmp_path / "one" / "b.bmp"))]
    assert _rejected(out) == {
        str(tmp_path / "one" / "z.png"): f"duplicate of {the_id}",
        str(tmp_path / "two" / "a.png"): f"duplicate of {the_id}",
        str(tmp_path / "two" / "thin.png"): "too small: 10x50, min_size 16",
    }
    assert (result.n_images, result.n_rejected, result.n_duplicates) == (1, 3, 2)


def test_splits_are_stable_when_images_are_added(tmp_path: Path) -> None:
    for i in range(12):
        _save(tmp_path / ("a" if i < 6 else "b") / f"{i}.png", textured_image(40 + i, 20, 20))
    out = tmp_path / "out"
    collect(_cfg(_folder(tmp_path / "a"), split={"val": 0.3, "test": 0.3}), out, workers=1)
    before = {r["id"]: r["split"] for r in _manifest(out)}
    cfg = _cfg(_folder(tmp_path / "a"), _folder(tmp_path / "b"), split={"val": 0.3, "test": 0.3})
    result = collect(cfg, out, workers=2)
    after = {r["id"]: r["split"] for r in _manifest(out)}
    assert len(before) == 6 and len(after) == 12 == result.n_images
    assert {k: after[k] for k in before} == before
    assert all(split == assign_split(k, cfg.split) for k, split in after.items())


def test_rerun_is_idempotent_and_removes_stale_images(tmp_path: Path) -> None:
    for i in range(4):
        _save(tmp_path / "a" / f"{i}.png", textured_image(60 + i, 24, 24))
        _save(tmp_path / "b" / f"{i}.png", textured_image(70 + i, 24, 24))
    (tmp_path / "b" / "bad.png").write_bytes(b"\x89PNG junk")
    both = _cfg(_folder(tmp_path / "a"), _folder(tmp_path / "b"))
    out = tmp_path / "out"
    collect(both, out, workers=1)
    first = _snapshot(out)
    (out / "images" / ".leftover.png.abc123.tmp").write_bytes(b"interrupted")
    collect(both, out, workers=2)
    assert _snapshot(out) == first
    assert len(first) == 8 + 2  # images + manifest + rejected

    result = collect(_cfg(_folder(tmp_path / "a")), out, workers=2)
    assert result.n_images == 4 and result.n_rejected == 0
    assert {r["origin"] for r in _manifest(out)} == {
        str(tmp_path / "a" / f"{i}.png") for i in range(4)
    }
    _check_consistent(out)


# --------------------------------------------------------------------------- s3


def test_s3_source_against_local_endpoint(s3_env: str, tmp_path: Path) -> None:
    client = s3.make_client(max_attempts=2)
    bucket = "girml-collect-test"
    client.create_bucket(Bucket=bucket)
    objects = {
        "photos/animal/cat.png": _encode(textured_image(80, 24, 32)),
        "photos/food/dish.jpg": _encode(textured_image(81, 24, 24), "JPEG"),
        "photos/loose.png": _encode(textured_image(82, 24, 24)),
        "photos/broken/bad.jpg": b"definitely not an image",
        "photos/readme.txt": b"skipped",
        "other/outside.png": _encode(textured_image(83, 24, 24)),
    }
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)

    out = tmp_path / "out"
    collect(_cfg({"type": "s3", "bucket": bucket, "prefix": "photos/"}), out, workers=2)
    rows = _by_origin(out)
    uri = f"s3://{bucket}/photos"
    assert {o: r["category"] for o, r in rows.items()} == {
        f"{uri}/animal/cat.png": "animal",
        f"{uri}/food/dish.jpg": "food",
        f"{uri}/loose.png": "unknown",
    }
    assert {r["source"] for r in rows.values()} == {"s3"}
    assert np.array_equal(
        _pixels(out, rows[f"{uri}/animal/cat.png"]["id"]), textured_image(80, 24, 32)
    )
    assert _rejected(out)[f"{uri}/broken/bad.jpg"].startswith("not an image")
    _check_consistent(out)

    # the byte cap applies to the listed size: an object over it is never downloaded
    cat = len(objects["photos/animal/cat.png"])
    capped = _cfg({"type": "s3", "bucket": bucket, "prefix": "photos/"}, max_file_bytes=cat - 1)
    collect(capped, out, workers=2)
    reason = f"file too large: {cat} bytes exceeds max_file_bytes={cat - 1}"
    assert _rejected(out)[f"{uri}/animal/cat.png"] == reason

    with pytest.raises(SourceError, match="listing failed"):
        collect(_cfg({"type": "s3", "bucket": "no-such-bucket"}), tmp_path / "none")


# --------------------------------------------------------------------------- urls


class _FileServer(ThreadingHTTPServer):
    """Serves ``files`` with HTTP Range support; paths in ``drop_once`` fail half-way once."""

    def __init__(self, files: dict[str, bytes], drop_once: set[str]) -> None:
        super().__init__(("127.0.0.1", 0), _RangeHandler)
        self.files = files
        self.drop_once = set(drop_once)
        self.requests: list[tuple[str, str | None]] = []


class _RangeHandler(BaseHTTPRequestHandler):
    server: _FileServer

    def do_GET(self) -> None:
        range_header = self.headers.get("Range")
        self.server.requests.append((self.path, range_header))
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = int(range_header.removeprefix("bytes=").split("-")[0]) if range_header else 0
        if start >= len(data) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if range_header else 200)
        if range_header:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if self.path in self.server.drop_once:
            self.server.drop_once.discard(self.path)
            self.wfile.write(data[start : len(data) // 2])  # then hang up mid-body
            return
        self.wfile.write(data[start:])

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def file_server() -> Iterator[_FileServer]:
    with serving(_FileServer({}, set())) as server:
        yield server


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_urls_source_verifies_extracts_and_resumes(
    file_server: _FileServer, tmp_path: Path
) -> None:
    single = _encode(textured_image(90, 24, 24))
    # Noise compresses badly: ~300 KB, several download chunks before the connection drops.
    big_pixels = np.random.default_rng(91).integers(0, 256, (320, 320, 3), dtype=np.uint8)
    big = _encode(big_pixels)
    zip_buffer = io.BytesIO()
    with zipfile.ZipFile(zip_buffer, "w") as zf:
        zf.writestr("set/one.png", _encode(textured_image(92, 24, 24)))
        zf.writestr("two.jpg", _encode(textured_image(93, 24, 24), "JPEG"))
        zf.writestr("README.txt", "skipped")
        zf.writestr("../escape.png", _encode(textured_image(94, 24, 24)))
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w:gz") as tf:
        member = _encode(textured_image(95, 24, 24))
        info = tarfile.TarInfo("inner/three.png")
        info.size = len(member)
        tf.addfile(info, io.BytesIO(member))
    local = _save(tmp_path / "local.png", textured_image(96, 24, 24))
    file_server.files.update(
        {
            "/single.png": single,
            "/big.png": big,
            "/set.zip": zip_buffer.getvalue(),
            "/set.tar.gz": tar_buffer.getvalue(),
            "/tampered.png": single[:-1] + b"\x00",
        }
    )
    file_server.drop_once.add("/big.png")
    base = f"http://127.0.0.1:{file_server.server_address[1]}"
    cache = tmp_path / "cache"
    items = [
        {"url": f"{base}/single.png", "sha256": _sha(single), "category": "scene"},
        {"url": f"{base}/big.png", "sha256": _sha(big)},
        {"url": f"{base}/set.zip", "sha256": _sha(zip_buffer.getvalue()), "category": "object"},
        {"url": f"{base}/set.tar.gz", "sha256": _sha(tar_buffer.getvalue())},
        {"url": f"{base}/tampered.png", "sha256": _sha(single)},
        {"url": f"{base}/missing.png", "sha256": _sha(b"")},
        {"url": local.as_uri(), "sha256": _sha(local.read_bytes())},
    ]
    cfg = _cfg({"type": "urls", "items": items, "cache_dir": str(cache), "retries": 2})
    out = tmp_path / "out"
    collect(cfg, out, workers=2)

    rows = _by_origin(out)
    assert set(rows) == {
        f"{base}/single.png",
        f"{base}/big.png",
        f"{base}/set.zip#set/one.png",
        f"{base}/set.zip#two.jpg",
        f"{base}/set.tar.gz#inner/three.png",
        local.as_uri(),
    }
    assert rows[f"{base}/single.png"]["category"] == "scene"
    assert rows[f"{base}/set.zip#two.jpg"]["category"] == "object"
    assert np.array_equal(_pixels(out, rows[f"{base}/big.png"]["id"]), big_pixels)
    rejected = _rejected(out)
    assert rejected[f"{base}/tampered.png"].startswith("sha256 mismatch: expected")
    assert rejected[f"{base}/missing.png"] == "download failed: HTTP 404"
    escape = f"{base}/set.zip#../escape.png"  # not extracted, and not in silence
    assert rejected[escape] == "unsafe member path (goes up with '..'): not extracted"
    assert set(rejected) == {f"{base}/tampered.png", f"{base}/missing.png", escape}
    first_try, retry = (r for p, r in file_server.requests if p == "/big.png")
    assert first_try is None and retry is not None
    resumed_at = int(retry.removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= len(big) // 2  # the retry resumed what the first try kept
    assert not list(cache.rglob("*.part"))
    assert not any("tampered" in p.name for p in cache.iterdir())
    assert not (cache / "escape.png").exists() and not (tmp_path / "escape.png").exists()
    _check_consistent(out)

    # Verified files are cached: a re-run downloads only what failed and gives the same output.
    first = _snapshot(out)
    n_before = len(file_server.requests)
    collect(cfg, out, workers=2)
    assert _snapshot(out) == first
    assert sorted(p for p, _ in file_server.requests[n_before:]) == [
        "/missing.png",
        "/tampered.png",
    ]


def _zip_with_zeros(path: Path, big: dict[str, int], small: dict[str, bytes]) -> Path:
    """A zip of ``small`` members plus members of ``big[name]`` zero bytes, written streaming."""
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in small.items():
            zf.writestr(name, data)
        for name, size in big.items():
            with zf.open(name, "w", force_zip64=True) as fh:
                for _ in range(size // len(chunk)):
                    fh.write(chunk)
    return path


def _file_item(path: Path, **kwargs: Any) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"url": path.as_uri(), "sha256": digest.hexdigest(), **kwargs}


def test_archive_members_are_filtered_by_name_and_streamed(tmp_path: Path) -> None:
    # ~1 MB on disk, 768 MiB inside: reading it whole (as collect once did) costs 512+ MB RSS
    pngs = {f"set/{i}.png": _encode(textured_image(600 + i, 24, 24)) for i in range(3)}
    archive = _zip_with_zeros(
        tmp_path / "bomb.zip", {"data/blob.bin": 512 << 20, "huge.png": 256 << 20}, pngs
    )
    assert archive.stat().st_size < 8 << 20
    cfg = _cfg({"type": "urls", "items": [_file_item(archive)], "cache_dir": str(tmp_path / "c")})
    out = tmp_path / "out"
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from girml.config import CollectConfig\n"
        "from girml.data.collect import collect\n"
        f"cfg = CollectConfig.model_validate_json({cfg.model_dump_json()!r})\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"collect(cfg, Path({str(out)!r}), workers=1)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    growth_mib = int(done.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux
    assert growth_mib < 150, f"collect grew peak RSS by {growth_mib:.0f} MiB"
    origin = archive.as_uri()
    assert set(_by_origin(out)) == {f"{origin}#{name}" for name in pngs}
    assert _rejected(out) == {
        f"{origin}#huge.png": "larger than collect.max_member_bytes=200000000 (268435456 bytes)"
    }


def test_archive_member_over_the_cap_is_rejected_by_name(tmp_path: Path) -> None:
    small = _encode(textured_image(610, 24, 24))
    noisy = _encode(np.random.default_rng(611).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert len(small) < 6000 < len(noisy)
    archive = _zip_with_zeros(tmp_path / "set.zip", {}, {"a/small.png": small, "noisy.png": noisy})
    source = {"type": "urls", "items": [_file_item(archive)], "cache_dir": str(tmp_path / "c")}
    out = tmp_path / "out"
    origin = archive.as_uri()

    collect(_cfg(source, max_member_bytes=6000), out, workers=1)
    assert set(_by_origin(out)) == {f"{origin}#a/small.png"}
    expected = f"larger than collect.max_member_bytes=6000 ({len(noisy)} bytes)"
    assert _rejected(out) == {f"{origin}#noisy.png": expected}
    collect(_cfg(source, max_member_bytes=6000), out, workers=1)  # the cached extraction
    assert _rejected(out) == {f"{origin}#noisy.png": expected}

    collect(_cfg(source), out, workers=1)  # another cap extracts again
    assert set(_by_origin(out)) == {f"{origin}#a/small.png", f"{origin}#noisy.png"}
    assert _rejected(out) == {}


def test_urls_failing_after_retries_is_rejected(tmp_path: Path, free_tcp_port: int) -> None:
    port = free_tcp_port  # nothing listens there: every attempt is refused
    items = [{"url": f"http://127.0.0.1:{port}/x.png", "sha256": "0" * 64}]
    cfg = _cfg({"type": "urls", "items": items, "cache_dir": str(tmp_path), "retries": 1})
    result = collect(cfg, tmp_path / "out")
    reason = _rejected(tmp_path / "out")[items[0]["url"]]
    assert reason.startswith("download failed: gave up after 2 attempts") and result.n_images == 0


def _archive(name: str, seed: int) -> bytes:
    """A small zip or tar named like a paper data set's archive, two photos inside."""
    images = {
        f"{name.split('.')[0]}/{i:04d}.png": _encode(textured_image(seed + i, 64, 64))
        for i in (1, 2)
    }
    buffer = io.BytesIO()
    if name.endswith(".zip"):
        with zipfile.ZipFile(buffer, "w") as zf:
            for member, data in images.items():
                zf.writestr(member, data)
    else:
        with tarfile.open(fileobj=buffer, mode="w") as tf:
            for member, data in images.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_paper_profile_data_pins_its_archives_at_the_first_download(
    file_server: _FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from girml.config import profile_text

    _, merged = profile_text(REPO / "params.yaml", REPO / "profiles" / "paper.yaml")
    [urls] = [s for s in merged["collect"]["sources"] if s["type"] == "urls"]
    assert all("sha256" not in item for item in urls["items"])  # pinned at the first download
    base = f"http://127.0.0.1:{file_server.server_address[1]}"
    items, served = [], {}
    for seed, item in enumerate(urls["items"]):
        name = PurePosixPath(urlparse(item["url"]).path).name  # DIV2K_train_HR.zip, Flickr2K.tar
        served[f"/{name}"] = _archive(name, 100 * seed)
        items.append({**item, "url": f"{base}/{name}"})
    file_server.files.update(served)
    monkeypatch.chdir(tmp_path)  # the pin file is relative to the project
    cfg = _cfg({**urls, "items": items, "cache_dir": "cache"})
    out = tmp_path / "out"
    collect(cfg, out, workers=2)

    rows = _by_origin(out)
    assert len(rows) == 2 * len(items) and not _rejected(out)
    assert {row["category"] for row in rows.values()} == {"div2k", "flickr2k"}
    pins = Path(urls["pin_file"]).read_text().splitlines()
    assert sorted(pins) == sorted(f"{_sha(served[p])}  {base}{p}" for p in served)

    # verified against the pins from now on: a changed archive upstream is rejected by name
    tampered = f"/{PurePosixPath(urlparse(items[0]['url']).path).name}"
    file_server.files[tampered] = _archive("other.zip", 999)
    for cached in Path("cache").iterdir():  # as on a fresh clone: download everything again
        shutil.rmtree(cached) if cached.is_dir() else cached.unlink()
    collect(cfg, out, workers=2)
    reason = _rejected(out)[f"{base}{tampered}"]
    assert reason.startswith(f"sha256 mismatch: expected {_sha(served[tampered])}")
    assert "(pinned in downloads.sha256)" in reason
    assert Path(urls["pin_file"]).read_text().splitlines() == pins  # the pin is not replaced
    kept = {origin for origin in rows if not origin.startswith(f"{base}{tampered}#")}
    assert set(_by_origin(out)) == kept  # the other archives still give their photos
