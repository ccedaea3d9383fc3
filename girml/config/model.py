"""The ``model`` section: the architecture and its sizes, bounded before anything is allocated.

The same section is read from ``params.yaml`` and from every model folder's ``config.yaml``, so
its bounds guard what a downloaded or hand-edited model folder may ask
:func:`girml.models.build_model` to allocate: a ``width: 12000`` is refused here, by validation,
before a byte of the network exists. The bounds are far above any published configuration
(NAFNet's largest is width 64 with 28 blocks at one level; PromptIR uses 5 prompt components);
the total size is bounded too, by the parameter count of the network built on PyTorch's
``meta`` device (:func:`girml.models.shapes.planned_shapes`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from girml.config.base import Frozen

MAX_WIDTH = 256  # channels at the first level
MAX_LEVELS = 6  # U-Net levels: inputs are padded to a multiple of 2**levels
MAX_BLOCKS = 64  # blocks per level, in the middle, or in the plain CNN's body (MAX_PLAIN_BLOCKS)
MAX_PLAIN_BLOCKS = 256
MAX_PROMPT_LEN = 64

LevelBlocks = Annotated[int, Field(ge=0, le=MAX_BLOCKS)]


class ModelConfig(Frozen):
    """Architecture choice (``type`` is a name in ``girml.models.ARCHS``) and its sizes."""

    type: str = "nafnet"
    width: int = Field(default=16, ge=4, le=MAX_WIDTH, description="channels at the first level")
    enc_blocks: list[LevelBlocks] = Field(
        default=[1, 1, 2], min_length=1, max_length=MAX_LEVELS, description="per level"
    )
    middle_blocks: int = Field(default=2, ge=0, le=MAX_BLOCKS)
    dec_blocks: list[LevelBlocks] | None = Field(
        default=None, max_length=MAX_LEVELS, description="per level; ones if omitted"
    )
    prompt_len: int = Field(
        default=5, ge=1, le=MAX_PROMPT_LEN, description="prompt components (prompt models)"
    )
    plain_blocks: int = Field(
        default=8, ge=1, le=MAX_PLAIN_BLOCKS, description="residual blocks (plain_cnn)"
    )
    sca_max: bool = Field(
        default=True, description="nafnet models: channel attention also pools the maximum"
    )

    @model_validator(mode="after")
    def _levels_match(self) -> ModelConfig:
        if self.dec_blocks is not None and len(self.dec_blocks) != len(self.enc_blocks):
            raise ValueError(
                f"dec_blocks needs one entry per level ({len(self.enc_blocks)}), "
                f"got {self.dec_blocks}"
            )
        return self
