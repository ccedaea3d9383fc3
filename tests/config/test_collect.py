"""The ``collect`` section (girml/config/collect.py): sources by their ``type``, no credentials
in committed URLs, and split fractions that leave images to train on."""

from __future__ import annotations

import pytest

from girml.config import (
    CollectConfig,
    ConfigError,
    FolderSource,
    PackageSource,
    UrlSource,
    parse_section,
)


def _collect(**source: object) -> CollectConfig:
    return parse_section({"sources": [source]}, "collect", CollectConfig)


def test_each_source_type_parses_into_its_own_model() -> None:
    cfg = parse_section(
        {
            "sources": [
                {"type": "builtin"},
                {"type": "folder", "path": "photos"},
                {"type": "s3", "bucket": "bkt", "prefix": "clean/"},
                {"type": "urls", "items": [{"url": "https://example.org/a.png"}]},
                {"type": "packages"},
            ]
        },
        "collect",
        CollectConfig,
    )
    assert [type(s).__name__ for s in cfg.sources] == [
        "BuiltinSource",
        "FolderSource",
        "S3Source",
        "UrlSource",
        "PackageSource",
    ]
    assert cfg.split.val == 0.1 and cfg.split.test == 0.2


def test_an_unknown_source_type_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"collect\.sources\[0\]: .*'builtin'.*'packages'"):
        _collect(type="ftp")


def test_a_url_with_credentials_is_refused_and_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        _collect(type="urls", items=[{"url": "https://user:hunter2@example.org/a.zip"}])
    message = str(info.value)
    assert "collect.sources[0].items[0].url" in message and "~/.netrc" in message
    assert "hunter2" not in message


def test_a_label_file_source_needs_its_label_file() -> None:
    with pytest.raises(ConfigError, match=r"label_file is required"):
        _collect(type="folder", path="p", category_from="label_file")
    src = _collect(type="folder", path="p", category_from="label_file", label_file="l.csv")
    assert isinstance(src.sources[0], FolderSource) and src.sources[0].label_file == "l.csv"


@pytest.mark.parametrize("split", [{"val": 0.5, "test": 0.5}, {"val": 0.9, "test": 0.2}])
def test_split_fractions_must_leave_training_images(split: dict) -> None:
    with pytest.raises(ConfigError, match=r"collect\.split: .*val \+ test must be < 1"):
        parse_section({"sources": [{"type": "builtin"}], "split": split}, "collect", CollectConfig)


def test_sha256_pins_and_per_source_splits_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"items\[0\]\.sha256: String should match pattern"):
        _collect(type="urls", items=[{"url": "https://e.org/a.png", "sha256": "abc"}])
    pinned = _collect(type="urls", items=[{"url": "file:///a.png", "sha256": "a" * 64}])
    assert isinstance(pinned.sources[0], UrlSource) and pinned.sources[0].retries == 5
    own = _collect(type="packages", split={"val": 0.25, "test": 0.25}, max_side=None)
    assert isinstance(own.sources[0], PackageSource)
    assert own.sources[0].split is not None and own.sources[0].max_side is None
