"""Which model ``girml restore`` runs, named as its users read it: the registry version behind
an alias (pinned, so that an alias moved mid-run cannot change the model), or the folder.

:func:`resolve_restore_model` settles it without loading any weights, so the inputs can be
checked before the model loads; :func:`girml.artifacts.loading.load_model` then loads
:attr:`RestoreModel.load`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from girml.artifacts.onnx_runtime import is_onnx_file
from girml.artifacts.release import is_release_dir
from girml.artifacts.store import WEIGHTS_FILE
from girml.core.urls import mask_text

_MLMODEL = "MLmodel"


@dataclass(frozen=True)
class RestoreModel:
    """The model a restore runs.

    Attributes:
        load: what to pass to :func:`~girml.artifacts.loading.load_model`: for a registry alias
            the pinned ``models:/<name>/<version>``, otherwise what was asked for.
        requested: what was asked for (``--model``, or the default's URI or folder).
        description: the text after ``model:`` on the line ``girml restore`` prints; it names
            the registry version, or the folder and what kind of folder it is.
        version: the registered version, for ``models:/`` URIs; else None.
        alias: the alias asked for (``champion``), else None.
        folder: the model's folder, absolute, for folder models; else None.
    """

    load: str
    requested: str
    description: str
    version: int | None = None
    alias: str | None = None
    folder: Path | None = None

    def as_json(self) -> dict[str, Any]:
        """The model as ``girml restore --json`` records it."""
        return {
            "uri": self.load,
            "requested": self.requested,
            "version": self.version,
            "alias": self.alias,
            "folder": None if self.folder is None else str(self.folder),
            "description": self.description,
        }


def resolve_restore_model(model: str | None) -> RestoreModel:
    """The model ``girml restore --model MODEL`` runs; nothing is loaded.

    Without ``model``: :func:`girml.artifacts.default_model.choose_default_model` (the
    champion, ``models/latest`` or the shipped release; the description says which and why).
    A ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` is looked up in the project's
    registry (``MLFLOW_TRACKING_URI``, else ``./mlflow.db``) and pinned to its version. A
    folder is named with its kind (model, release or MLflow model folder), an ``.onnx`` file
    as an ONNX model. Other URIs (``runs:/...``) are passed on as given.

    Raises:
        FileNotFoundError: no default model exists (the message says why each was skipped), or
            the ``.onnx`` file named does not.
        ValueError: a ``models:/`` URI that the registry does not have, or no registry to ask
            (URLs masked).
    """
    from girml.artifacts.loading import URI_PATTERN

    if model is None:
        from girml.artifacts.default_model import choose_default_model

        choice = choose_default_model()
        if choice.kind == "champion":  # the store is configured: the choice asked it
            version, load = _pin(choice.uri)
            alias = choice.uri.rsplit("@", 1)[-1]
            return RestoreModel(load, choice.uri, choice.describe(), version, alias)
        return RestoreModel(choice.uri, choice.uri, choice.describe(), folder=_abs(choice.uri))
    if model.startswith("models:/"):
        from girml.tracking.store import configure, store_exists, tracking_uri

        if not store_exists(Path.cwd()):
            store = mask_text(tracking_uri(Path.cwd()))
            raise ValueError(f"cannot load model {model}: no MLflow store at {store}")
        configure(Path.cwd())
        version, load = _pin(model)
        alias = model.rsplit("@", 1)[-1] if "@" in model else None
        said = f"{model} (version {version})" if alias is not None else model
        return RestoreModel(load, model, said, version, alias)
    if is_onnx_file(model) and not URI_PATTERN.match(model):
        if not Path(model).is_file():
            raise FileNotFoundError(f"ONNX model {model} not found")
        return RestoreModel(model, model, f"{model} (ONNX model, onnxruntime on the CPU)")
    if URI_PATTERN.match(model) or not Path(model).is_dir():
        return RestoreModel(model, model, model)
    return RestoreModel(model, model, f"{model} ({_folder_kind(Path(model))})", folder=_abs(model))


def _pin(uri: str) -> tuple[int | None, str]:
    """``(version, models:/<name>/<version>)`` for an alias or version URI; ``(None, uri)`` for
    other ``models:/`` forms (a logged model's id). The store must be configured.

    Raises:
        ValueError: the registry has no such model, version or alias, or cannot be read.
    """
    from girml.tracking.store import NotInStore
    from girml.tracking.versions import pin_version

    try:
        record = pin_version(uri)
    except ValueError:  # not an alias or version URI: nothing was asked of the registry
        return None, uri
    except NotInStore as exc:
        raise ValueError(
            mask_text(f"cannot load model {uri}: not in the registry ({exc})")
        ) from None
    # MLflow raises many kinds (a broken store, a server that refuses): one line, exit code 2
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(mask_text(f"cannot load model {uri}: {reason}")) from None
    return record.version, record.uri


def _folder_kind(folder: Path) -> str:
    """``release folder``, ``MLflow model folder``, ``model folder`` or ``folder``."""
    if is_release_dir(folder):
        return "release folder"
    if (folder / _MLMODEL).is_file():
        return "MLflow model folder"
    return "model folder" if (folder / WEIGHTS_FILE).is_file() else "folder"


def _abs(path: str) -> Path:
    return Path(path).resolve()
