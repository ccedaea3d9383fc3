"""Registered versions of ``gir-restorer``: a network logged as weights plus config, loaded back.

A version is a model folder (:mod:`.store`) logged through :mod:`girml.tracking.logged_models`
as an MLflow pyfunc whose code is :mod:`.restorer_model`; this module turns a network into that
folder (:func:`log_and_register_model`) and a URI back into a network (:func:`load_logged_model`),
so that tracking deals in folders and URIs only. The shipped release is registered once per
weights file (:func:`register_release`) and becomes the first champion
(:func:`champion_or_release`), so the first trained model must beat what ships to replace it
(DESIGN.md, "Stages and their outputs").
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import girml
from girml.artifacts.release import CARD_FILE, is_release_dir, load_release
from girml.artifacts.release import WEIGHTS_FILE as RELEASE_WEIGHTS
from girml.artifacts.store import load_model_dir, read_model_config, save_model_dir
from girml.config import ModelConfig, parse_section
from girml.core.errors import UnsafeModelError
from girml.core.hashing import file_digest
from girml.tracking.logged_models import (
    MODEL_ARTIFACT,
    check_example,
    download_model,
    log_model_dir,
)
from girml.tracking.registry import (
    RELEASE_EXPERIMENT,
    RELEASE_SHA_TAG,
    RELEASE_TAG,
    find_release_version,
    set_champion,
)
from girml.tracking.runs import start_run
from girml.tracking.store import configure
from girml.tracking.versions import (
    CHAMPION,
    REGISTERED_MODEL,
    describe_registered_model,
    get_alias_version,
    set_version_description,
    set_version_tags,
)

log = logging.getLogger(__name__)

# the models-from-code file MLflow runs to serve a version (never imported here)
RESTORER_CODE = Path(__file__).with_name("restorer_model.py")
# the package it imports, shipped with each version so that it serves where girml is not
# installed (and keeps the code it was logged with)
GIRML_PACKAGE = Path(girml.__file__).parent
# the registered model's own description, set once when it is created (link-free text)
MODEL_DESCRIPTION = (
    "girml's general image restorer: one network (NAFNet by default) that removes blur, "
    "noise, JPEG artefacts, haze, low light and downscaling, alone or mixed, from RGB photos. "
    "It takes PNG/JPEG images (bytes or base64) or float32 arrays (batch, 3, H, W) in [0, 1] "
    "and returns PNG or arrays of the same size. Versions are trained by the `train` stage "
    "(each describes its data, steps and validation gains and harm, tagged with the git "
    "commit, params hash and data hashes) or are the shipped release (tagged "
    "girml.release = true, with MODEL_CARD.md among its artifacts). @champion is the "
    "version that passed the promotion gate on the benchmark suites; @challenger a trained "
    "version that did not."
)


def log_and_register_model(
    model: nn.Module,
    input_example: np.ndarray,
    *,
    model_cfg: ModelConfig,
    registered_name: str = REGISTERED_MODEL,
    artifact_name: str = "model",
    card: Path | None = None,
) -> int:
    """Log ``model`` to the active run as weights plus config and register it as a new version.

    The logged model is a pyfunc (:mod:`girml.artifacts.restorer_model`) holding the model
    folder :func:`~girml.artifacts.store.save_model_dir` writes, with a tensor signature
    inferred from ``input_example`` and the model's output on it, relaxed to (-1,3,-1,-1) since
    the networks accept any size (:func:`girml.tracking.logged_models.log_model_dir`). The
    girml package is copied into the model as code (``code/girml/``) and the packages it needs
    are its pip requirements, so ``mlflow.pyfunc.load_model`` and ``mlflow models serve`` load
    it where girml is not installed (the girml version is in the model's metadata). A registered
    model created by this call gets :data:`MODEL_DESCRIPTION`.

    Args:
        model: restoration network built from ``model_cfg``, on any device; not modified.
        input_example: (1,3,H,W) float32 in [0,1]; keep it small (it is stored as JSON).
        model_cfg: the architecture config ``build_model`` rebuilds the network from.
        registered_name: registered model name.
        artifact_name: name of the logged model within the run.
        card: a model card, shipped in the model folder as ``MODEL_CARD.md`` (so it is among
            the version's artifacts); None for none.

    Returns:
        The new version number.

    Raises:
        ValueError: ``input_example`` is not (1,3,H,W) float32.
        FileNotFoundError: ``card`` is given and is not a file.
        RuntimeError: no active run.
    """
    check_example(input_example)
    if card is not None and not card.is_file():
        raise FileNotFoundError(f"model card {card} not found")
    cpu_model = copy.deepcopy(model).cpu().eval()
    with torch.inference_mode():
        output = cpu_model(torch.from_numpy(input_example)).clamp(0, 1).numpy()
    with tempfile.TemporaryDirectory(prefix="girml-log-model-") as tmp:
        folder = save_model_dir(cpu_model, model_cfg, Path(tmp) / MODEL_ARTIFACT)
        if card is not None:
            shutil.copyfile(card, folder / CARD_FILE)
        version = log_model_dir(
            folder,
            code=RESTORER_CODE,
            input_example=input_example,
            output_example=output,
            name=artifact_name,
            registered_name=registered_name,
            code_paths=[GIRML_PACKAGE],
        )
    describe_registered_model(registered_name, MODEL_DESCRIPTION)
    return version


def load_logged_model(uri: str) -> nn.Module:
    """Load a model logged by :func:`log_and_register_model`, on the CPU, in eval mode.

    The version's model folder is read directly (``weights.pt`` with torch's weights-only
    unpickler, ``config.yaml`` with ``safe_load``) and the network rebuilt from its config; the
    pyfunc's code file is not run. Nothing is unpickled.

    Args:
        uri: ``models:/<name>@<alias>``, ``models:/<name>/<version>``, ``runs:/<id>/<name>``,
            ``models:/<model id>`` or a local MLflow model folder.

    Raises:
        ValueError: the URI does not resolve to a loadable model (the message names it).
        girml.core.errors.UnsafeModelError: a pickled model (MLflow's ``pytorch`` flavour, or a
            ``weights.pt`` holding Python objects): one line naming ``uri`` and how to convert it.
    """
    with tempfile.TemporaryDirectory(prefix="girml-model-") as tmp:
        folder = download_model(uri, Path(tmp))
        try:
            return load_model_dir(folder)
        except UnsafeModelError as exc:  # it named the folder inside
            raise UnsafeModelError(uri, exc.what) from None
        except (FileNotFoundError, ValueError) as exc:
            raise ValueError(f"cannot load model {uri}: {exc}") from None


def model_config_from_params(params: Mapping[str, str], source: str) -> ModelConfig:
    """Rebuild a :class:`ModelConfig` from a run's flattened ``model.*`` params.

    Values were logged as text (lists as JSON, None as ``None``).

    Raises:
        ValueError: the run has no ``model.*`` params; ConfigError: they do not validate.
    """
    raw: dict[str, Any] = {}
    for key, text in params.items():
        if not key.startswith("model."):
            continue
        name = key.removeprefix("model.")
        if text == "None":
            raw[name] = None
        else:
            try:
                raw[name] = json.loads(text)
            except json.JSONDecodeError:
                raw[name] = text
    if not raw:
        raise ValueError(f"{source}: its MLflow run has no model.* params to rebuild it from")
    return parse_section(raw, "model", ModelConfig, source=f"{source} (run params)")


@dataclass(frozen=True)
class ReleaseVersion:
    """The registry version of a release folder's weights.

    Attributes:
        version: the version number of :data:`~girml.tracking.versions.REGISTERED_MODEL`.
        sha256: the weights file's sha256.
        registered: True when this call registered it, False when it was there already.
    """

    version: int
    sha256: str
    registered: bool


def register_release(release_dir: Path, project_root: Path) -> ReleaseVersion:
    """Register ``release_dir`` as a version of its own, unless its weights already are.

    The version is logged like a trained model (a pyfunc over a girml model folder, so
    ``mlflow models serve`` and ``girml restore`` load it the same way), with the folder's
    ``MODEL_CARD.md`` among its artifacts when there is one, and tagged ``girml.release =
    true`` with the weights' sha256 and the ``git_commit``, ``params_hash`` and ``profile`` its
    ``config.yaml`` records.

    Args:
        release_dir: a release folder (``model.safetensors``, ``config.yaml``).
        project_root: where the default MLflow store lives.

    Returns:
        The :class:`ReleaseVersion`.

    Raises:
        FileNotFoundError, ValueError: not a loadable release folder (see
            :func:`girml.artifacts.release.load_release`).
    """
    model = load_release(release_dir)  # checks the folder before anything is registered
    sha256 = file_digest(Path(release_dir) / RELEASE_WEIGHTS)
    configure(project_root)
    existing = find_release_version(sha256)
    if existing is not None:
        return ReleaseVersion(existing, sha256, registered=False)
    config = read_model_config(release_dir)
    model_cfg = ModelConfig(**config["model"])
    provenance = config.get("provenance") or {}
    tags = {RELEASE_TAG: "true", RELEASE_SHA_TAG: sha256}
    with start_run(
        RELEASE_EXPERIMENT,
        project_root,
        run_name="release",
        tags={**tags, "girml.release.source": str(provenance.get("source", ""))},
        log_system_metrics=False,
    ):
        example = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
        card = Path(release_dir) / CARD_FILE
        version = log_and_register_model(
            model, example, model_cfg=model_cfg, card=card if card.is_file() else None
        )
    known = {
        key: str(provenance[key])
        for key in ("git_commit", "params_hash", "profile")
        if provenance.get(key)
    }
    set_version_tags(REGISTERED_MODEL, version, {**tags, **known})
    set_version_description(
        REGISTERED_MODEL,
        version,
        f"The shipped release model ({release_dir}, weights sha256 {sha256[:12]}...), "
        "registered so that a trained model replaces it as @champion only by passing the "
        "promotion gate against it. Its card: MODEL_CARD.md among this version's artifacts"
        + ("." if card.is_file() else " (the release folder had none)."),
    )
    log.info("registered the release %s as version %d", release_dir, version)
    return ReleaseVersion(version, sha256, registered=True)


def champion_or_release(release_dir: Path, project_root: Path) -> int | None:
    """The ``@champion`` version; when there is none and ``release_dir`` is a release folder,
    the release, registered (:func:`register_release`) and made the champion.

    Returns:
        The champion version, or None (no champion and no release folder).
    """
    configure(project_root)
    version = get_alias_version(REGISTERED_MODEL, CHAMPION)
    if version is not None or not is_release_dir(release_dir):
        return version
    release = register_release(release_dir, project_root)
    set_champion(release.version, "no champion yet: the shipped release is the first champion")
    return release.version
