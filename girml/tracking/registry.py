"""The registry's champion: the shipped release as a version, and why a version is champion.

``models/release/`` (safetensors weights plus config) is registered once per weights file, as a
version of :data:`~girml.tracking.mlflow.REGISTERED_MODEL` logged like a trained model (a
pyfunc over a girml model folder, so ``mlflow models serve`` and ``girml restore`` load it the
same way) and tagged ``girml.release = true`` with the weights' sha256. When the registry has
no ``@champion``, the evaluate stage registers the release and makes it the champion, so the
first trained model must beat what ships to replace it (DESIGN.md, "Stages and their outputs").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mlflow import MlflowClient

from girml.config import ModelConfig
from girml.hashing import file_digest
from girml.tracking import mlflow as tracking

log = logging.getLogger(__name__)

RELEASE_TAG = "girml.release"
RELEASE_SHA_TAG = "girml.release.sha256"
RELEASE_EXPERIMENT = "gir-release"


@dataclass(frozen=True)
class ReleaseVersion:
    """The registry version of a release folder's weights.

    Attributes:
        version: the version number of :data:`~girml.tracking.mlflow.REGISTERED_MODEL`.
        sha256: the weights file's sha256.
        registered: True when this call registered it, False when it was there already.
    """

    version: int
    sha256: str
    registered: bool


def find_release_version(sha256: str) -> int | None:
    """The newest version tagged as the release with these weights, or None (store configured)."""
    client = MlflowClient()
    found = [
        int(mv.version)
        for mv in client.search_model_versions(f"name='{tracking.REGISTERED_MODEL}'")
        if (mv.tags or {}).get(RELEASE_SHA_TAG) == sha256
    ]
    return max(found, default=None)


def is_release_version(version: int) -> bool:
    """Whether ``version`` of the registered model is a registered release (store configured)."""
    mv = MlflowClient().get_model_version(tracking.REGISTERED_MODEL, str(version))
    return (mv.tags or {}).get(RELEASE_TAG) == "true"


def register_release(release_dir: Path, project_root: Path) -> ReleaseVersion:
    """Register ``release_dir`` as a version of its own, unless its weights already are.

    Args:
        release_dir: a release folder (``model.safetensors``, ``config.yaml``).
        project_root: where the default MLflow store lives.

    Returns:
        The :class:`ReleaseVersion`.

    Raises:
        FileNotFoundError, ValueError: not a loadable release folder (see
            :func:`girml.models.release.load_release`).
    """
    from girml.models.release import WEIGHTS_FILE, load_release
    from girml.models.store import read_model_config

    model = load_release(release_dir)  # checks the folder before anything is registered
    sha256 = file_digest(Path(release_dir) / WEIGHTS_FILE)
    tracking.configure(project_root)
    existing = find_release_version(sha256)
    if existing is not None:
        return ReleaseVersion(existing, sha256, registered=False)
    config = read_model_config(release_dir)
    model_cfg = ModelConfig(**config["model"])
    provenance = config.get("provenance") or {}
    tags = {RELEASE_TAG: "true", RELEASE_SHA_TAG: sha256}
    with tracking.start_run(
        RELEASE_EXPERIMENT,
        project_root,
        run_name="release",
        tags={**tags, "girml.release.source": str(provenance.get("source", ""))},
        log_system_metrics=False,
    ):
        example = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
        version = tracking.log_and_register_model(model, example, model_cfg=model_cfg)
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(tracking.REGISTERED_MODEL, str(version), key, value)
    client.update_model_version(
        tracking.REGISTERED_MODEL,
        str(version),
        description=(
            f"The shipped release model ({release_dir}, weights sha256 {sha256[:12]}...), "
            "registered so that a trained model replaces it as @champion only by passing the "
            "promotion gate against it. Its card: MODEL_CARD.md in the release folder."
        ),
    )
    log.info("registered the release %s as version %d", release_dir, version)
    return ReleaseVersion(version, sha256, registered=True)


CHAMPION_REASON_TAG = "girml.champion.reason"


def champion_or_release(release_dir: Path, project_root: Path) -> int | None:
    """The ``@champion`` version; when there is none and ``release_dir`` is a release folder,
    the release, registered (:func:`register_release`) and made the champion.

    Returns:
        The champion version, or None (no champion and no release folder).
    """
    from girml.models.release import is_release_dir

    tracking.configure(project_root)
    version = tracking.get_alias_version(tracking.REGISTERED_MODEL, tracking.CHAMPION)
    if version is not None or not is_release_dir(release_dir):
        return version
    release = register_release(release_dir, project_root)
    set_champion(release.version, "no champion yet: the shipped release is the first champion")
    return release.version


def set_champion(version: int, reason: str) -> None:
    """Point ``@champion`` at ``version`` and record why on the version (the
    :data:`CHAMPION_REASON_TAG` tag that ``girml restore`` prints)."""
    tracking.set_alias(tracking.REGISTERED_MODEL, tracking.CHAMPION, version)
    MlflowClient().set_model_version_tag(
        tracking.REGISTERED_MODEL, str(version), CHAMPION_REASON_TAG, reason
    )


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
    """The :class:`ChampionInfo` of ``@champion``, or None without one (store configured)."""
    version = tracking.get_alias_version(tracking.REGISTERED_MODEL, tracking.CHAMPION)
    if version is None:
        return None
    mv = MlflowClient().get_model_version(tracking.REGISTERED_MODEL, str(version))
    tags = mv.tags or {}
    return ChampionInfo(version, tags.get(RELEASE_TAG) == "true", tags.get(CHAMPION_REASON_TAG, ""))
