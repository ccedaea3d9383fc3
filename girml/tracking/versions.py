"""The model registry: registered versions, their tags and aliases, and ``models:/`` URIs.

Registered model :data:`REGISTERED_MODEL` with aliases :data:`CHAMPION` and
:data:`CHALLENGER` (stages are deprecated in MLflow 3). Functions other than :func:`alias_uri`
need the store configured first (:func:`girml.tracking.store.configure`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from girml.tracking.store import NotInStore, configure, store_exists

REGISTERED_MODEL = "gir-restorer"
CHAMPION = "champion"
CHALLENGER = "challenger"
_NOT_FOUND = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class VersionRecord:
    """One registered version as the registry describes it.

    Attributes:
        name: the registered model.
        version: its version number.
        run_id: the run that logged it (empty when registered from outside a run).
        source: where its artifacts are (``models:/m-...`` or an artifact URI).
        tags: the version's tags.
        description: the version's description ("" when none).
    """

    name: str
    version: int
    run_id: str
    source: str
    tags: dict[str, str]
    description: str

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>``."""
        return f"models:/{self.name}/{self.version}"


def _record(mv: ModelVersion) -> VersionRecord:
    return VersionRecord(
        name=str(mv.name),
        version=int(mv.version),
        run_id=str(mv.run_id or ""),
        source=str(mv.source or ""),
        tags=dict(mv.tags or {}),
        description=str(mv.description or ""),
    )


def model_versions(name: str = REGISTERED_MODEL) -> list[VersionRecord]:
    """Every version of registered model ``name``, oldest first (none when it does not exist)."""
    found = MlflowClient().search_model_versions(f"name='{name}'")
    return sorted((_record(mv) for mv in found), key=lambda record: record.version)


def model_version(name: str, version: int) -> VersionRecord:
    """Version ``version`` of ``name``.

    Raises:
        mlflow.exceptions.MlflowException: the registry has no such version.
    """
    return _record(MlflowClient().get_model_version(name, str(version)))


def set_version_tags(name: str, version: int, tags: Mapping[str, str]) -> None:
    """Set ``tags`` on version ``version`` of ``name`` (replacing values of the same keys)."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, value)


def set_version_description(name: str, version: int, description: str) -> None:
    """Replace the description of version ``version`` of ``name``."""
    MlflowClient().update_model_version(name, str(version), description=description)


def registered_model_description(name: str = REGISTERED_MODEL) -> str:
    """The description of registered model ``name`` ("" when it has none or does not exist)."""
    try:
        return str(MlflowClient().get_registered_model(name).description or "")
    except MlflowException as exc:
        if exc.error_code in _NOT_FOUND:
            return ""
        raise


def describe_registered_model(name: str, description: str) -> bool:
    """Give registered model ``name`` ``description`` when it has none (set once, never
    replaced: a description edited in the MLflow UI stays).

    Returns:
        True when this call set it.

    Raises:
        mlflow.exceptions.MlflowException: the registry has no model ``name``.
    """
    if registered_model_description(name):
        return False
    MlflowClient().update_registered_model(name, description=description)
    return True


def aliases(name: str = REGISTERED_MODEL) -> dict[str, int]:
    """``{alias: version}`` of registered model ``name``; empty when it does not exist.

    (MLflow's version search does not always fill in aliases; the registered model does.)
    """
    try:
        found = MlflowClient().get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code in _NOT_FOUND:
            return {}
        raise
    return {alias: int(version) for alias, version in (found.aliases or {}).items()}


def set_alias(name: str, alias: str, version: int) -> None:
    """Point ``models:/<name>@<alias>`` at ``version`` (moving it if it pointed elsewhere)."""
    MlflowClient().set_registered_model_alias(name, alias, str(version))


def get_alias_version(name: str, alias: str) -> int | None:
    """The version ``alias`` points at, or None when the model or the alias does not exist."""
    try:
        return int(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in _NOT_FOUND:
            return None
        raise


def alias_uri(
    project_root: Path, name: str = REGISTERED_MODEL, alias: str = CHAMPION
) -> str | None:
    """``models:/<name>@<alias>`` when the project's registry has that alias, else None.

    Configures the store; a SQLite store whose file does not exist is not created just to look.
    """
    if not store_exists(project_root):
        return None
    configure(project_root)
    return f"models:/{name}@{alias}" if get_alias_version(name, alias) is not None else None


def model_version_of(uri: str) -> tuple[int, str] | None:
    """``(version, run id)`` behind ``models:/<name>@<alias>`` or ``models:/<name>/<version>``.

    Returns None for other URIs (``runs:/...``, ``models:/<model id>``) and for a version or
    alias the registry does not have.
    """
    if not uri.startswith("models:/"):
        return None
    ref = uri[len("models:/") :].strip("/")
    client = MlflowClient()
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            found = client.get_model_version_by_alias(name, alias)
        elif ref.count("/") == 1 and ref.rsplit("/", 1)[1].isdigit():
            name, version = ref.rsplit("/", 1)
            found = client.get_model_version(name, version)
        else:
            return None
    except MlflowException as exc:
        if exc.error_code in _NOT_FOUND:
            return None
        raise
    return int(found.version), str(found.run_id)


def pin_version(uri: str) -> VersionRecord:
    """The version that ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` names now.

    Resolving once pins the version, so an alias moved afterwards cannot mix two versions.

    Raises:
        ValueError: another URI form (nothing is asked of the registry).
        NotInStore: no such model, version or alias (MLflow's message).
    """
    match = _VERSION_URI.match(uri)
    if match is None:
        raise ValueError(
            f"expected models:/<name>@<alias> or models:/<name>/<version>, got {uri!r}"
        )
    name, alias, version = match["name"], match["alias"], match["version"]
    client = MlflowClient()
    try:
        if alias is not None:
            found = client.get_model_version_by_alias(name, alias)
        else:
            found = client.get_model_version(name, version)
    except MlflowException as exc:
        raise NotInStore(exc.message) from None
    return _record(found)
