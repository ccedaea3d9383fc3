"""What ``dvc.yaml`` and the stages agree on: output paths and the params keys each stage reads.

``tests/stages/test_contract.py`` checks that ``dvc.yaml`` declares exactly :data:`STAGE_PARAMS`
for each stage and exactly the code each stage module imports.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from girml.config import load_section, read_params

EXPERIMENT = "gir"

# How a stage reports a line to its user: typer.echo's signature (``err=True`` for stderr).
Echo = Callable[..., None]

# The params keys each stage reads, exactly as dvc.yaml's `params:` lists them for its stage:
# a whole section, or "section.key". Stages read params.yaml only through StageParams, which
# refuses anything not listed here, so a stage never depends on a value that DVC does not know
# it depends on.
STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "collect": ("collect",),
    "synthesize": ("degradations", "synthesize"),
    "validate": (
        "collect.min_size",
        "degradations",
        "synthesize.unseen_content_category",
        "validate",
    ),
    "tune": ("degradations", "model", "train", "tune"),
    "train": ("degradations", "model", "train"),
    "specialists": ("degradations", "evaluate.specialists", "evaluate.specialist_families"),
    "evaluate": ("evaluate",),
    "interpret": ("degradations", "interpret"),
    "study": ("study",),
    # one stage per study approach (dvc.yaml `foreach`): ${key} is the approach's name
    "approach": (
        "degradations",
        "model",
        "train",
        "study.approaches.${key}",
        "study.classifier_steps",
    ),
    "approach-eval": ("evaluate", "study.approaches.${key}"),
    # one stage per test set (protocols.sets) and per protocol run (protocols.run)
    "testset": ("protocols.sets.${key}",),
    "protocols": (
        "degradations",
        "evaluate.methods",
        "evaluate.niqe_patch_size",
        "evaluate.self_ensemble",
        "evaluate.tile",
        "protocols.custom",
    ),
}


class StageFailed(Exception):
    """A stage ends with exit code ``code``; ``message`` (if any) is its one error line."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class StageParams:
    """The params of one stage: the sections and keys of :data:`STAGE_PARAMS` for it.

    For a ``foreach`` stage, ``key`` is the item (``approach@<key>``): it replaces ``${key}`` in
    the declared names.

    Raises:
        KeyError: (a bug) on a section or key the stage does not declare.
    """

    def __init__(self, path: Path, stage: str, key: str | None = None) -> None:
        self.path = path
        self.stage = stage
        self.declared = tuple(
            name.replace("${key}", key) if key is not None else name for name in STAGE_PARAMS[stage]
        )

    def _check(self, name: str) -> None:
        section = name.split(".", 1)[0]
        if name not in self.declared and section not in self.declared:
            raise KeyError(
                f"stage {self.stage} reads {name}, which STAGE_PARAMS and dvc.yaml do not "
                "declare for it"
            )

    def section(self, name: str) -> Any:
        """A whole section, parsed and validated (``load_section``)."""
        self._check(name)
        return load_section(self.path, name)

    def value(self, dotted: str) -> Any:
        """One key of a section: ``"collect.min_size"``, or deeper: ``"study.approaches.x"``."""
        self._check(dotted)
        section, *keys = dotted.split(".")
        node = load_section(self.path, section)
        for key in keys:
            node = node[key] if isinstance(node, dict) else getattr(node, key)
        return node

    def entry(self, mapping: str, name: str, what: str, hint: str) -> Any:
        """Entry ``name`` of a keyed mapping (``"study.approaches"``, ``"protocols.sets"``), or
        :class:`StageFailed` naming the file, the mapping and the entry, with ``hint``."""
        try:
            return self.value(f"{mapping}.{name}")
        except KeyError:
            raise StageFailed(f"{self.path}: {mapping} has no {what} {name!r} ({hint})") from None

    def raw(self, name: str) -> dict[str, Any]:
        """A whole section as written in the file (for overlays such as tuned overrides)."""
        self._check(name)
        return dict(read_params(self.path).get(name) or {})
