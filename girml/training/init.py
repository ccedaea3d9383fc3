"""How the network starts: the weights of ``train.init_from``, and ``torch.compile``.

:func:`source_weights` loads a model folder, a ``models:/`` or ``runs:/`` URI or the shipped
release model; :func:`init_weights` puts them into the freshly built network;
:func:`compile_or_eager` compiles it, or falls back to eager mode where no toolchain can.
"""

from __future__ import annotations

import torch
from accelerate.logging import get_logger
from torch import nn

from girml.paths import RELEASE_DIR

log = get_logger(__name__)  # called inside train(): the main process only


def source_weights(source: str) -> dict[str, torch.Tensor]:
    """The weights to start from for ``train.init_from``.

    Args:
        source: a model folder, a ``models:/`` or ``runs:/`` URI, or ``"release"`` for the
            shipped release model (``models/release/``).

    Raises:
        ValueError: the source cannot be loaded (the message names it).
    """
    from girml.models.store import load_model  # MLflow only when a URI is given

    uri = str(RELEASE_DIR) if source == "release" else source
    try:
        return load_model(uri).state_dict()
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise ValueError(f"train.init_from={source!r}: cannot load it: {exc}") from exc


def init_weights(model: nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    """Load ``weights`` (from :func:`source_weights`) into ``model``, in place.

    Raises:
        ValueError: the source's architecture differs from ``model``'s.
    """
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(
            f"train.init_from={source!r}: its weights do not fit params.yaml's model "
            f"section ({first}); use the same model config as the source"
        ) from exc


def compile_or_eager(model: nn.Module, example: torch.Tensor) -> bool:
    """``torch.compile`` ``model`` in place, falling back to eager mode if compiling fails.

    Compilation is lazy, so one forward and backward pass on ``example`` (gradients then
    cleared) triggers it here rather than in the middle of training.

    Args:
        model: the network, in train mode, on its device.
        example: (B,3,P,P) float input of the training shape.

    Returns:
        Whether the model runs compiled.
    """
    model.compile()
    try:
        model(example).float().mean().backward()
    except Exception as exc:  # inductor needs a C++ (CPU) or Triton (GPU) toolchain
        model._compiled_call_impl = None  # undoes nn.Module.compile
        log.warning(f"torch.compile failed ({type(exc).__name__}: {exc}); training eagerly")
        return False
    finally:
        model.zero_grad(set_to_none=True)
    return True
