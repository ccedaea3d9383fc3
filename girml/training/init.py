"""How the network starts: the weights of ``train.init_from``, and ``torch.compile``.

The caller loads the weights ``train.init_from`` names (a model folder, a ``models:/`` or
``runs:/`` URI or the shipped release model: :func:`girml.artifacts.loading.source_weights`,
a layer above training); :func:`check_init` holds them to the config, :func:`init_weights`
puts them into the freshly built network; :func:`compile_or_eager` compiles it, or falls back
to eager mode where no toolchain can.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from accelerate.logging import get_logger
from torch import nn

log = get_logger(__name__)  # called inside train(): the main process only


def check_init(init_from: str | None, init: Mapping[str, torch.Tensor] | None) -> None:
    """Refuse starting weights that ``train.init_from`` does not name, and the reverse.

    The caller loads the weights of ``init_from`` (a model folder, a URI or ``release``:
    :func:`girml.artifacts.loading.source_weights`); the run's fingerprint names the source, so
    the two must go together.

    Raises:
        ValueError: ``init_from`` is set and no weights were given, or weights without it.
    """
    if init_from is not None and init is None:
        raise ValueError(
            f"train.init_from={init_from!r}: its weights were not loaded (the caller loads them "
            "with girml.artifacts.loading.source_weights and passes them as init)"
        )
    if init_from is None and init is not None:
        raise ValueError("starting weights given, but train.init_from does not name them")


def init_weights(model: nn.Module, weights: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``weights`` (the caller's, see :func:`check_init`) into ``model``, in place.

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
