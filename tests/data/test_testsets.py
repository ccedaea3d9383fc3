"""girml.data.testsets: a test set fetched through its source (folder, pinned urls) into the
prepared form, and the message a missing or unreadable set gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from girml.config import TestSetConfig
from girml.core.imageio import read_image
from girml.data.testsets import CATALOG, TestSetError, prepare_set, read_prepared
from girml.storage import s3
from tests.protocol_sets import IDS, SIZE, set_server, write_folder


def _folder(path: Path, layout: str | None = None) -> TestSetConfig:
    return TestSetConfig(source={"type": "folder", "path": str(path)}, layout=layout)


@pytest.mark.parametrize("name", ["mcmaster", "sots-outdoor", "gopro", "real-photos"])
def test_a_folder_in_the_usual_layout_is_prepared_decoded(name: str, tmp_path: Path) -> None:
    """McMaster's .tif files, SOTS's hazy JPEGs and GoPro's scene folders come out as PNGs with
    their ids; the pixels are the decoded files' (for a JPEG: as decoded)."""
    root = write_folder(name, tmp_path / "src")
    prepared = prepare_set(name, _folder(root), tmp_path / "out")
    assert [image.id for image in prepared.images] == IDS[name]
    assert read_prepared(tmp_path / "out") == prepared
    first = prepared.images[0]
    source = {"mcmaster": "McMaster/1.tif", "sots-outdoor": "SOTS/outdoor/hazy/0001_0.8_0.2.jpg"}
    if name in source:
        stored = first.gt if name == "mcmaster" else first.lq
        assert stored is not None and stored.suffix == ".png"
        assert np.array_equal(read_image(stored), read_image(root / source[name]))
    if name == "real-photos":
        assert first.gt is None and prepared.kind == "real"


def test_a_changed_download_is_refused_by_its_pin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first download pins the archive's sha256 in downloads.sha256; when the server later
    serves other bytes at the same URL, the set is refused and its old folder kept."""
    monkeypatch.chdir(tmp_path)
    with set_server(["rain100l"]) as (server, sets):
        cfg = TestSetConfig.model_validate(sets["rain100l"])
        prepare_set("rain100l", cfg, Path("out"))
        assert "Rain100L.tar.gz" in Path("downloads.sha256").read_text()
        (path,) = [p for p in server.files if p.startswith("/rain100l/")]
        server.files[path] = server.files[path][:-10] + b"0123456789"  # changed upstream
        Path(".cache").rename("old-cache")  # a fresh machine: nothing cached
        with pytest.raises(TestSetError, match=r"sha256 mismatch: expected [0-9a-f]{64} \(pinned"):
            prepare_set("rain100l", cfg, Path("out"))
    assert sorted(p.name for p in Path("out/gt").iterdir()) == ["rain-001.png", "rain-002.png"]


def test_a_missing_set_says_where_to_get_it_and_how_it_must_lie(tmp_path: Path) -> None:
    with pytest.raises(TestSetError) as missing:
        prepare_set("rain100l", _folder(tmp_path / "nowhere"), tmp_path / "out")
    text = str(missing.value)
    assert "nowhere is not a directory" in text
    assert CATALOG["rain100l"].where in text and "Rain100L/rainy/rain-NNN.png" in text
    assert "protocols.sets.rain100l.source" in text and not (tmp_path / "out").exists()
    # files that are there but in no known layout: the same advice
    Image.fromarray(np.zeros((*SIZE, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(TestSetError, match=r"none of the 1 image file\(s\) .* lies in its layout"):
        prepare_set("gopro", _folder(tmp_path), tmp_path / "out")


def test_a_file_that_does_not_decode_fails_the_set_and_names_it(tmp_path: Path) -> None:
    root = write_folder("lol-v1", tmp_path / "src")
    (root / "LOLdataset/eval15/high/22.png").write_bytes(b"not a png")
    with pytest.raises(TestSetError, match=r"test set lol-v1: .*eval15/high/22\.png"):
        prepare_set("lol-v1", _folder(root), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half written


def test_a_set_under_an_s3_prefix_is_read_in_its_layout(s3_env: str, tmp_path: Path) -> None:
    """Keys are matched relative to the prefix, as files under a folder are."""
    client = s3.make_client(max_attempts=2)
    client.create_bucket(Bucket="girml-testsets")
    root = write_folder("sots-outdoor", tmp_path / "src")
    for path in root.rglob("*.*"):
        key = f"mirror/{path.relative_to(root).as_posix()}"
        client.put_object(Bucket="girml-testsets", Key=key, Body=path.read_bytes())
    cfg = TestSetConfig(source={"type": "s3", "bucket": "girml-testsets", "prefix": "mirror/"})
    prepared = prepare_set("sots-outdoor", cfg, tmp_path / "out")
    assert [image.id for image in prepared.images] == IDS["sots-outdoor"]
    record = json.loads((tmp_path / "out/set.json").read_text())
    assert record["root"] == "SOTS/outdoor" and record["source"] == "s3"
