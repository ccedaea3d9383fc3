"""Registered versions, tags and aliases (girml/tracking/versions.py) in a real SQLite store.

Versions here hold a plain artifact folder: the registry does not care what a version holds.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from girml.tracking.runs import start_run
from girml.tracking.store import NotInStore, configure
from girml.tracking.versions import (
    CHALLENGER,
    CHAMPION,
    REGISTERED_MODEL,
    alias_uri,
    aliases,
    describe_registered_model,
    get_alias_version,
    model_version,
    model_version_of,
    model_versions,
    pin_version,
    registered_model_description,
    set_alias,
    set_version_description,
    set_version_tags,
)

pytestmark = pytest.mark.usefixtures("restore_environ")  # configure() exports variables


def register(root: Path, name: str = REGISTERED_MODEL) -> tuple[int, str]:
    """A new version of ``name`` holding a run's ``m/`` artifacts; ``(version, run id)``."""
    with start_run("girml-test", root, log_system_metrics=False) as run:
        mlflow.log_text("not a model", "m/file.txt")
    client = MlflowClient()
    if not client.search_registered_models(f"name='{name}'"):
        client.create_registered_model(name)
    source = f"{run.info.artifact_uri}/m"
    found = client.create_model_version(name, source, run_id=run.info.run_id)
    return int(found.version), run.info.run_id


def test_versions_tags_and_descriptions(mlflow_store: Path) -> None:
    configure(mlflow_store)
    assert model_versions() == []  # no registered model yet
    (first, run_a), (second, run_b) = register(mlflow_store), register(mlflow_store)
    assert (first, second) == (1, 2)
    set_version_tags(REGISTERED_MODEL, first, {"girml.release": "true", "k": "v"})
    set_version_description(REGISTERED_MODEL, first, "the shipped release")
    records = model_versions()
    assert [(r.version, r.run_id) for r in records] == [(1, run_a), (2, run_b)]
    one = model_version(REGISTERED_MODEL, 1)
    assert one == records[0]
    assert one.tags == {"girml.release": "true", "k": "v"} and records[1].tags == {}
    assert one.description == "the shipped release" and records[1].description == ""
    assert one.uri == f"models:/{REGISTERED_MODEL}/1"
    assert one.source.endswith("/m")
    with pytest.raises(MlflowException):
        model_version(REGISTERED_MODEL, 9)


def test_the_registered_model_is_described_once(mlflow_store: Path) -> None:
    configure(mlflow_store)
    assert registered_model_description() == ""  # no registered model yet
    with pytest.raises(MlflowException):
        describe_registered_model(REGISTERED_MODEL, "what it is")
    register(mlflow_store)
    assert describe_registered_model(REGISTERED_MODEL, "what it is")
    assert not describe_registered_model(REGISTERED_MODEL, "something else")  # kept as set
    assert registered_model_description() == "what it is"


def test_aliases_move_and_resolve(mlflow_store: Path) -> None:
    configure(mlflow_store)
    assert get_alias_version(REGISTERED_MODEL, CHAMPION) is None  # no model at all
    assert aliases() == {}
    (first, run_a), (second, run_b) = register(mlflow_store), register(mlflow_store)
    assert get_alias_version(REGISTERED_MODEL, CHAMPION) is None  # no such alias
    set_alias(REGISTERED_MODEL, CHAMPION, first)
    set_alias(REGISTERED_MODEL, CHALLENGER, second)
    assert aliases() == {CHAMPION: first, CHALLENGER: second}
    set_alias(REGISTERED_MODEL, CHAMPION, second)  # moved, not added
    assert get_alias_version(REGISTERED_MODEL, CHAMPION) == second
    assert aliases() == {CHAMPION: second, CHALLENGER: second}

    assert model_version_of(f"models:/{REGISTERED_MODEL}@{CHAMPION}") == (second, run_b)
    assert model_version_of(f"models:/{REGISTERED_MODEL}/{first}") == (first, run_a)
    assert model_version_of(f"models:/{REGISTERED_MODEL}/9") is None
    assert model_version_of(f"models:/{REGISTERED_MODEL}@nobody") is None
    assert model_version_of(f"runs:/{run_a}/m") is None
    assert model_version_of("models:/m-0123456789") is None  # a logged model id, no version


def test_pin_version_names_one_version_or_says_why_not(mlflow_store: Path) -> None:
    configure(mlflow_store)
    (first, run_a), (second, run_b) = register(mlflow_store), register(mlflow_store)
    set_alias(REGISTERED_MODEL, CHAMPION, first)
    pinned = pin_version(f"models:/{REGISTERED_MODEL}@{CHAMPION}")
    assert (pinned.version, pinned.run_id) == (first, run_a)
    assert pinned.uri == f"models:/{REGISTERED_MODEL}/{first}"  # the alias resolved once
    set_alias(REGISTERED_MODEL, CHAMPION, second)  # moving it later leaves the pin as it was
    assert pinned.version == first
    assert pin_version(f"models:/{REGISTERED_MODEL}/{second}").run_id == run_b
    for uri in ("runs:/abc/model", "models:/gir-restorer", "models:/a/b/c", "models:/x@"):
        with pytest.raises(ValueError, match=r"expected models:/<name>@<alias> or"):
            pin_version(uri)
    with pytest.raises(NotInStore, match="nope"):
        pin_version(f"models:/{REGISTERED_MODEL}@nope")
    with pytest.raises(NotInStore):
        pin_version(f"models:/{REGISTERED_MODEL}/9")
    with pytest.raises(NotInStore):
        pin_version("models:/no-such-model/1")


def test_alias_uri_only_for_an_alias_that_exists(
    mlflow_store: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(mlflow_store)
    register(mlflow_store)
    assert alias_uri(mlflow_store) is None
    set_alias(REGISTERED_MODEL, CHAMPION, 1)
    assert alias_uri(mlflow_store) == f"models:/{REGISTERED_MODEL}@{CHAMPION}"
    assert alias_uri(mlflow_store, alias=CHALLENGER) is None

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    empty = tmp_path_factory.mktemp("no-store")
    assert alias_uri(empty) is None
    assert not (empty / "mlflow.db").exists()  # not created just to look
