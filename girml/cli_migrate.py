"""``girml migrate-registry``: rewrite the registry's old pickled versions as weights plus config,
once.

Versions registered by older girml versions are pickled modules (MLflow's ``pytorch`` flavour),
which girml refuses to load (:class:`~girml.core.errors.UnsafeModelError`). This command finds them,
converts each with :func:`girml.artifacts.convert.convert_model` (it unpickles them: THIS RUNS
CODE FROM THE FILES, hence ``--i-trust-these-files``), and registers the model folder as a new
version, logged into the old version's run so that its params and metrics stay with it. The new
version carries the old one's tags plus :data:`MIGRATED_FROM_TAG`, and every alias of the old
version (``champion``, ``challenger``) moves to it. The old version is left as it was. A version
that some version was already migrated from is skipped, so a second run does nothing.

:mod:`girml.cli` registers the verb. MLflow, torch and the artifacts are imported inside the
functions, so that ``girml`` starts without them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from girml.cli_common import fail, stage, uses_mlflow

if TYPE_CHECKING:
    from girml.tracking.versions import VersionRecord

MIGRATED_FROM_TAG = "migrated_from"  # on the new version: the old version's number
MIGRATE_EXPERIMENT = "gir-migrate"  # for an old version that was registered outside a run


@dataclass(frozen=True)
class Migration:
    """One old version and what became of it.

    Attributes:
        old: the pickled version.
        aliases: the aliases that pointed at it.
        new: the version registered in its place; None in a dry run.
    """

    old: int
    aliases: tuple[str, ...]
    new: int | None = None


def pickled_versions(name: str) -> list[VersionRecord]:
    """The versions of ``name`` that are pickled models and were not migrated yet.

    Nothing is unpickled: each version's ``MLmodel`` is read (store configured).
    """
    import tempfile

    from girml.core.errors import UnsafeModelError
    from girml.tracking.logged_models import download_model
    from girml.tracking.versions import model_versions

    versions = model_versions(name)
    done = {record.tags.get(MIGRATED_FROM_TAG) for record in versions}
    found = []
    for record in versions:
        if str(record.version) in done or MIGRATED_FROM_TAG in record.tags:
            continue
        with tempfile.TemporaryDirectory(prefix="girml-migrate-") as tmp:
            try:
                download_model(record.uri, Path(tmp))
            except UnsafeModelError:
                found.append(record)
            except ValueError:  # not a model girml reads, pickled or not: left alone
                continue
    return found


def _run_of(record: VersionRecord, project_root: Path) -> AbstractContextManager:
    """The old version's run, reopened; a new run when it was registered outside one."""
    from girml.tracking.runs import resume_run, start_run

    if record.run_id:
        return resume_run(record.run_id)
    return start_run(
        MIGRATE_EXPERIMENT,
        project_root,
        run_name=f"migrate-{record.name}-{record.version}",
        log_system_metrics=False,
    )


def migrate_version(record: VersionRecord, project_root: Path, config: Path | None = None) -> int:
    """Convert pickled version ``record`` (THIS UNPICKLES IT) and register the result.

    The architecture comes from ``config`` (a YAML file with a ``model:`` section), else from
    the version's run's ``model.*`` params (:func:`girml.artifacts.convert.convert_model`).

    Returns:
        The new version number; tags copied (plus :data:`MIGRATED_FROM_TAG`) and aliases moved.
    """
    import tempfile

    import numpy as np
    import torch

    from girml.artifacts.convert import convert_model
    from girml.artifacts.registered import RESTORER_CODE
    from girml.artifacts.store import load_model_dir
    from girml.tracking.logged_models import MODEL_ARTIFACT, log_model_dir
    from girml.tracking.versions import (
        aliases,
        set_alias,
        set_version_description,
        set_version_tags,
    )

    with tempfile.TemporaryDirectory(prefix="girml-migrate-") as tmp:
        folder = Path(tmp) / MODEL_ARTIFACT
        convert_model(record.uri, folder, trusted=True, config=config, project_root=project_root)
        example = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
        with torch.inference_mode():
            output = load_model_dir(folder)(torch.from_numpy(example)).clamp(0, 1).numpy()
        with _run_of(record, project_root):
            new = log_model_dir(
                folder,
                code=RESTORER_CODE,
                input_example=example,
                output_example=output,
                registered_name=record.name,
            )
    set_version_tags(record.name, new, {**record.tags, MIGRATED_FROM_TAG: str(record.version)})
    note = f"Version {record.version} rewritten as weights plus config by girml migrate-registry."
    description = f"{record.description}\n\n{note}" if record.description else note
    set_version_description(record.name, new, description)
    for alias, version in aliases(record.name).items():
        if version == record.version:
            set_alias(record.name, alias, new)
    return new


def migrate_registry(
    name: str, project_root: Path, *, dry_run: bool, config: Path | None = None
) -> list[Migration]:
    """Find the pickled versions of ``name`` and, unless ``dry_run``, migrate each
    (:func:`migrate_version`, with ``config``).

    Returns:
        One :class:`Migration` per pickled version, oldest first.
    """
    from girml.tracking.store import configure
    from girml.tracking.versions import aliases

    configure(project_root)
    found = []
    for record in pickled_versions(name):
        moved = tuple(sorted(a for a, v in aliases(name).items() if v == record.version))
        new = None if dry_run else migrate_version(record, project_root, config)
        found.append(Migration(record.version, moved, new))
    return found


@stage
@uses_mlflow
def migrate_registry_command(
    registered_model: Annotated[
        str | None,
        typer.Option(help="the registered model whose versions to migrate [default: gir-restorer]"),
    ] = None,
    i_trust_these_files: Annotated[
        bool,
        typer.Option(
            "--i-trust-these-files",
            help="confirm that you trust the registry: converting runs any code its versions hold",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what would be migrated; change nothing")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            help="YAML file with the model: section the old versions were trained with, for "
            "versions whose MLflow run has no model.* params"
        ),
    ] = None,
) -> None:
    """Rewrite the registry's old pickled versions as weights plus config (once).

    WARNING: THIS RUNS CODE FROM THE FILES. Versions registered by older girml versions are
    pickled PyTorch modules (MLflow's pytorch flavour), which girml refuses to load. This command
    unpickles each of them once, because you ask it to, converts it as `girml convert-model`
    does, and registers the result as a new version with the old one's tags plus
    migrated_from=<old version>. Aliases (champion, challenger) move from the old version to the
    new one; the old version is left as it was.

    Use it only on a registry that you or your team filled. --dry-run lists what it would
    migrate without unpickling anything.
    """
    from girml.core.urls import mask_url
    from girml.tracking.store import store_exists, tracking_uri
    from girml.tracking.versions import REGISTERED_MODEL

    name = registered_model or REGISTERED_MODEL
    if not (i_trust_these_files or dry_run):
        fail(
            f"migrate-registry unpickles the old versions of {name}, which runs any code in "
            "them: pass --i-trust-these-files only if you trust where they came from "
            "(--dry-run lists them without unpickling)",
            2,
        )
    root = Path.cwd()
    if not store_exists(root):
        typer.echo(f"no MLflow store at {mask_url(tracking_uri(root))}: nothing to migrate")
        return
    done = migrate_registry(name, root, dry_run=dry_run, config=config)
    if not done:
        typer.echo(f"{name}: no pickled versions to migrate")
    for item in done:
        moved = f" (aliases: {', '.join(item.aliases)})" if item.aliases else ""
        if item.new is None:
            typer.echo(f"would migrate {name} version {item.old}{moved}")
        else:
            typer.echo(f"migrated {name} version {item.old} -> {item.new}{moved}")
