"""girml.data.sources: listing a source's items and names as text.

Each source type end to end (folders, builtin photos, S3, verified URLs and archives) is tested
through ``collect`` in ``test_collect.py``; downloads and pins in ``test_downloads.py``; these
are the module's own functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from girml.config import CollectConfig
from girml.data.sources import Rejection, SourceError, SourceItem, list_source, printable_name
from tests.factories import textured_image


def test_printable_name_escapes_only_undecodable_bytes() -> None:
    assert printable_name("café/ünï.png") == "café/ünï.png"
    undecodable = b"caf\xe9.png".decode("utf-8", "surrogateescape")
    assert printable_name(undecodable) == "caf\\xe9.png"
    assert printable_name(undecodable).encode("utf-8")  # writable as UTF-8


def test_list_source_sorts_a_folder_by_origin_with_its_categories(tmp_path: Path) -> None:
    for rel, seed in (("zoo/cat.png", 1), ("food/dish.png", 2), ("loose.png", 3)):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(textured_image(seed, 16, 16)).save(tmp_path / rel)
    (source,) = CollectConfig.model_validate(
        {"sources": [{"type": "folder", "path": str(tmp_path)}]}
    ).sources
    entries = list_source(source)
    assert all(isinstance(e, SourceItem) for e in entries)
    assert [Path(e.origin).relative_to(tmp_path).as_posix() for e in entries] == [
        "food/dish.png",
        "loose.png",
        "zoo/cat.png",
    ]
    assert [e.category for e in entries] == ["food", "unknown", "zoo"]
    assert [e.name for e in entries] == ["food/dish.png", "loose.png", "zoo/cat.png"]
    pixels = entries[2].load(10_000)
    assert np.array_equal(pixels, textured_image(1, 16, 16))
    missing = source.model_copy(update={"path": str(tmp_path / "nowhere")})
    with pytest.raises(SourceError, match="nowhere is not a directory"):
        list_source(missing)
    assert not any(isinstance(e, Rejection) for e in entries)
