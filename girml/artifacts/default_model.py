"""The model ``girml restore`` uses without ``--model``: the champion, the latest or the release.

:func:`choose_default_model` takes the first that exists of ``models:/gir-restorer@champion``
(the project's MLflow registry, asked through :mod:`girml.tracking`, imported only then),
``models/latest`` and the shipped ``models/release``, and says why the others were skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from girml.artifacts.release import is_release_dir
from girml.artifacts.store import WEIGHTS_FILE
from girml.core.errors import ServiceUnreachable, probe_mlflow
from girml.core.paths import MODEL_DIR, RELEASE_DIR
from girml.core.urls import mask_text, mask_url


@dataclass(frozen=True)
class ModelChoice:
    """The model ``girml restore`` uses without ``--model``, and why.

    Attributes:
        uri: what to pass to :func:`girml.artifacts.loading.load_model`.
        kind: ``champion``, ``latest`` or ``release``.
        reason: for the champion, which version it is and why it is champion; for the others,
            why the ones before it in that order were not used.
    """

    uri: str
    kind: str
    reason: str = ""

    def describe(self) -> str:
        """E.g. ``models/release (release: no MLflow store, so no champion; no models/latest)``."""
        return f"{self.uri} ({self.kind}{': ' + self.reason if self.reason else ''})"


def _champion(project_root: Path) -> tuple[str | None, str]:
    """The champion URI and which version it is and why it is champion; or None and why there
    is none: no store, no alias, a tracking server that does not answer, or a store that cannot
    be read. Every URL in the reason is masked.

    A tracking server is first asked for ``/health`` as the stages do
    (:func:`girml.core.errors.probe_mlflow`: two tries, 3 s each), so one that accepts connections
    but never answers costs seconds, not MLflow's minutes of retries.
    """
    try:
        from girml.tracking.registry import champion_info
        from girml.tracking.store import store_exists, tracking_uri
        from girml.tracking.versions import alias_uri

        if not store_exists(project_root):
            return None, "no MLflow store, so no champion"
        probe_mlflow(tracking_uri(project_root))
        uri = alias_uri(project_root)
        info = champion_info() if uri else None
    except ServiceUnreachable as exc:  # already one line, masked
        return None, f"{exc}, so no champion"
    # Restoring must work without a usable registry (a fresh clone, a broken or unreachable
    # store): whatever MLflow raises, fall back and say why.
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, mask_text(f"MLflow registry unreadable ({reason}), so no champion")
    if uri is None:
        from girml.tracking.versions import CHAMPION, REGISTERED_MODEL

        return None, f"no {REGISTERED_MODEL}@{CHAMPION} in the registry"
    return uri, info.describe() if info is not None else ""


def choose_default_model(
    local_dir: Path = MODEL_DIR,
    project_root: Path = Path("."),
    release_dir: Path | None = None,
) -> ModelChoice:
    """What ``girml restore`` uses without ``--model``: the first that exists of
    ``models:/gir-restorer@champion`` (in the project's MLflow registry), ``local_dir`` (a
    trained model folder) and the shipped release folder.

    Args:
        local_dir: the train stage's model folder.
        project_root: where the default MLflow store lives.
        release_dir: the release folder; default ``<project_root>/models/release``.

    Raises:
        FileNotFoundError: none exists; the message says why each was skipped, and to run
            ``dvc repro train`` or pass ``--model``.
    """
    release_dir = project_root / RELEASE_DIR if release_dir is None else release_dir
    uri, why_not = _champion(project_root)
    if uri is not None:
        return ModelChoice(uri, "champion", why_not)
    if (local_dir / WEIGHTS_FILE).is_file():
        return ModelChoice(str(local_dir), "latest", why_not)
    if is_release_dir(release_dir):
        return ModelChoice(str(release_dir), "release", f"{why_not}; no {local_dir}")
    from girml.tracking.store import tracking_uri

    raise FileNotFoundError(
        f"no model: {why_not} (tracking store {mask_url(tracking_uri(project_root))}); {local_dir} "
        f"holds no {WEIGHTS_FILE}; {release_dir} is not a release folder. Run `dvc repro "
        "train` or pass --model"
    )
