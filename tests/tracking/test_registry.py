"""The champion and the release's version as the registry records them
(girml/tracking/registry.py), in a real SQLite store.

Versions here hold a plain artifact folder; registering the release folder itself and the
promotion gate against it: tests/artifacts/test_registered.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from girml.tracking.registry import (
    CHAMPION_REASON_TAG,
    RELEASE_SHA_TAG,
    RELEASE_TAG,
    ChampionInfo,
    champion_info,
    find_release_version,
    is_release_version,
    set_champion,
)
from girml.tracking.store import configure
from girml.tracking.versions import (
    CHAMPION,
    REGISTERED_MODEL,
    get_alias_version,
    model_version,
    set_version_tags,
)
from tests.tracking.test_versions import register

pytestmark = pytest.mark.usefixtures("restore_environ")  # configure() exports variables


def test_the_release_version_is_found_by_its_weights(mlflow_store: Path) -> None:
    configure(mlflow_store)
    assert find_release_version("ab" * 32) is None  # no registered model yet
    first, _ = register(mlflow_store)
    second, _ = register(mlflow_store)
    third, _ = register(mlflow_store)
    for version in (first, third):
        set_version_tags(
            REGISTERED_MODEL, version, {RELEASE_TAG: "true", RELEASE_SHA_TAG: "ab" * 32}
        )
    assert find_release_version("ab" * 32) == third  # the newest
    assert find_release_version("cd" * 32) is None
    assert is_release_version(first) and not is_release_version(second)


def test_the_champion_says_which_version_and_why(mlflow_store: Path) -> None:
    configure(mlflow_store)
    assert champion_info() is None
    release, _ = register(mlflow_store)
    trained, _ = register(mlflow_store)
    set_version_tags(REGISTERED_MODEL, release, {RELEASE_TAG: "true"})
    set_champion(release, "no champion yet: the shipped release is the first champion")
    info = champion_info()
    assert info == ChampionInfo(
        release, True, "no champion yet: the shipped release is the first champion"
    )
    assert info.describe() == (
        f"version {release} (the shipped release; champion: no champion yet: the shipped "
        "release is the first champion)"
    )

    set_champion(trained, "gir_score 2.9 > 2.8")
    assert get_alias_version(REGISTERED_MODEL, CHAMPION) == trained
    assert (
        model_version(REGISTERED_MODEL, trained).tags[CHAMPION_REASON_TAG] == "gir_score 2.9 > 2.8"
    )
    assert champion_info() == ChampionInfo(trained, False, "gir_score 2.9 > 2.8")
    assert "a trained model" in champion_info().describe()
    assert ChampionInfo(4, False, "").describe().endswith("champion: no reason recorded)")
