"""The ``synthesize`` and ``validate`` sections: how clean photos become training pairs and
benchmark suites, and the checks the pairs must pass."""

from __future__ import annotations

from pydantic import Field

from girml.config.base import Frozen


class SynthesizeConfig(Frozen):
    seed: int = 0
    patch_size: int = Field(default=128, ge=16, description="side of train/val pairs")
    train_pairs: int = Field(default=1600, ge=1)
    val_pairs: int = Field(default=96, ge=1)
    bench_crop: int = Field(default=128, ge=16)
    bench_per_family: int = Field(default=24, ge=1)
    max_crops_per_image: int = Field(default=16, ge=1)
    unseen_content_category: str | list[str] | None = Field(
        default="scientific",
        description="content categories held out of training: the unseen-content suite",
    )
    whole_photos: int | None = Field(
        default=None,
        ge=0,
        description="test photos in the whole-photo suite, at full size (None: all; 0: none)",
    )
    select_side: int = Field(
        default=512,
        ge=0,
        description="longer side of the whole validation photos that select the kept "
        "checkpoint (pairs/select); 0: no selection set",
    )
    workers: int = Field(default=0, ge=0, description="processes; 0 means every core")

    @property
    def held_categories(self) -> list[str]:
        """``unseen_content_category`` as a list (empty when None)."""
        return held_categories(self.unseen_content_category)


def held_categories(value: str | list[str] | None) -> list[str]:
    """``synthesize.unseen_content_category`` (a name, a list of names or None) as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class ValidateConfig(Frozen):
    psnr_band: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {"lowlight": (0.5, 50.0)},
        description="per family: plausible PSNR(LQ, GT) band in dB",
    )
    default_psnr_band: tuple[float, float] = (2.0, 80.0)
    check_decode: bool = True
