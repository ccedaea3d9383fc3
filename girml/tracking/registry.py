"""The registry's champion and the shipped release's version: their tags, and why a version is
champion.

``models/release/`` (safetensors weights plus config) is registered once per weights file, as a
version of :data:`~girml.tracking.versions.REGISTERED_MODEL` tagged :data:`RELEASE_TAG` ``=
true`` with the weights' sha256 (:data:`RELEASE_SHA_TAG`); the registering is done by
:func:`girml.artifacts.registered.register_release`. When the registry has no ``@champion``, the
evaluate stage registers the release and makes it the champion, so the first trained model must
beat what ships to replace it (DESIGN.md, "Stages and their outputs"). The store must be
configured (:func:`girml.tracking.store.configure`) before any of these is called.
"""

from __future__ import annotations

from dataclasses import dataclass

from girml.tracking.versions import (
    CHAMPION,
    REGISTERED_MODEL,
    get_alias_version,
    model_version,
    model_versions,
    set_alias,
    set_version_tags,
)

RELEASE_TAG = "girml.release"
RELEASE_SHA_TAG = "girml.release.sha256"
RELEASE_EXPERIMENT = "gir-release"
CHAMPION_REASON_TAG = "girml.champion.reason"


def find_release_version(sha256: str) -> int | None:
    """The newest version tagged as the release with these weights, or None."""
    found = [
        record.version
        for record in model_versions(REGISTERED_MODEL)
        if record.tags.get(RELEASE_SHA_TAG) == sha256
    ]
    return max(found, default=None)


def is_release_version(version: int) -> bool:
    """Whether ``version`` of the registered model is a registered release."""
    return model_version(REGISTERED_MODEL, version).tags.get(RELEASE_TAG) == "true"


def set_champion(version: int, reason: str) -> None:
    """Point ``@champion`` at ``version`` and record why on the version (the
    :data:`CHAMPION_REASON_TAG` tag that ``girml restore`` prints)."""
    set_alias(REGISTERED_MODEL, CHAMPION, version)
    set_version_tags(REGISTERED_MODEL, version, {CHAMPION_REASON_TAG: reason})


@dataclass(frozen=True)
class ChampionInfo:
    """What the registry says of ``@champion``: its version, whether it is the release, why."""

    version: int
    release: bool
    reason: str

    def describe(self) -> str:
        """E.g. ``version 3 (the shipped release; champion: no champion yet: ...)``."""
        kind = "the shipped release" if self.release else "a trained model"
        return f"version {self.version} ({kind}; champion: {self.reason or 'no reason recorded'})"


def champion_info() -> ChampionInfo | None:
    """The :class:`ChampionInfo` of ``@champion``, or None without one."""
    version = get_alias_version(REGISTERED_MODEL, CHAMPION)
    if version is None:
        return None
    tags = model_version(REGISTERED_MODEL, version).tags
    return ChampionInfo(version, tags.get(RELEASE_TAG) == "true", tags.get(CHAMPION_REASON_TAG, ""))
