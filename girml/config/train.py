"""The ``train`` and ``tune`` sections: the training loop's settings, and the Ray Tune search
over the ``model``/``train`` keys whose trials run that same loop."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from girml.config.base import Frozen
from girml.config.model import ModelConfig


class TrainConfig(Frozen):
    """The training loop (accelerate): optimisation, data, validation and checkpoint cadence."""

    seed: int = 0
    steps: int = Field(default=2600, ge=1, description="optimizer steps")
    batch_size: int = Field(default=8, ge=1)
    patch_size: int = Field(default=64, ge=8, description="random crop side, pixels")
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    betas: tuple[float, float] = (0.9, 0.9)
    warmup_steps: int = Field(default=100, ge=0)
    min_lr_ratio: float = Field(default=0.01, ge=0, le=1, description="cosine floor / lr")
    grad_clip: float = Field(default=0.5, ge=0, description="max grad norm; 0 disables")
    grad_accum: int = Field(default=1, ge=1)
    ema_decay: float = Field(default=0.999, ge=0, lt=1, description="0 disables EMA")
    loss: Literal["l1", "charbonnier", "l2", "psnr"] = "psnr"
    freq_weight: float = Field(default=0.0, ge=0, description="weight of the FFT L1 term")
    psnr_eps: float = Field(
        default=1e-5, gt=0, le=1, description="psnr loss: added to each MSE (1e-5: 50 dB cap)"
    )
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    online_degradation_prob: float = Field(
        default=0.5, ge=0, le=1, description="chance a sample gets a fresh recipe on the fly"
    )
    black_region_prob: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="chance an on-the-fly sample's clean crop gets a black region first",
    )
    clean_prob: float = Field(
        default=0.12,
        ge=0,
        le=1,
        description="chance a sample's input is its clean crop (identity target: do no harm)",
    )
    init_from: str | None = Field(
        default=None,
        description="fine-tune from a model: folder, models:/ or runs:/ URI, or 'release'",
    )
    channels_last: bool = Field(default=True, description="NHWC memory format for the model")
    compile: bool = Field(default=False, description="torch.compile the model (eager fallback)")
    fused_optim: bool = Field(default=False, description="fused AdamW kernel (CPU and CUDA)")
    val_every: int = Field(default=1300, ge=1)
    curve_every: int = Field(
        default=200,
        ge=0,
        description="steps between the points of the logging-only validation curve (curve.val_* "
        "on the val pairs; no part in the weight selection, the same weights); 0 = off",
    )
    ckpt_every: int = Field(default=650, ge=1)
    log_every: int = Field(default=25, ge=1)
    num_workers: int = Field(default=1, ge=0, description="DataLoader worker processes")
    num_threads: int = Field(
        default=1, ge=0, description="torch threads while training; 0 = torch's default"
    )
    use_tuned: bool = Field(default=False, description="overlay tune/best.yaml when present")
    cpu_isa: Literal["avx2", "default"] | None = Field(
        default="avx2",
        description="pin the CPU kernels' instruction set (same weights on any x86-64 "
        "machine, girml.core.cpu_isa); None: the machine's best",
    )
    select: Literal["best", "last"] = Field(
        default="best",
        description="weights the run returns: the best-scoring validation (harm counted) or "
        "the last step",
    )
    select_harm_weight: float = Field(
        default=1.0, ge=0, description="selection score lost per dB of harm"
    )
    select_clean_floor: float = Field(
        default=45.0, description="PSNR-Y (dB) the clean selection photos should keep"
    )


class SearchDim(Frozen):
    """One dimension of the search space (keys are dotted: ``train.lr``, ``model.width``)."""

    type: Literal["uniform", "loguniform", "randint", "choice"]
    low: float | None = None
    high: float | None = None
    values: list[Any] | None = None

    @model_validator(mode="after")
    def _shape(self) -> SearchDim:
        if self.type == "choice":
            if not self.values:
                raise ValueError("choice needs a non-empty `values` list")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError(f"{self.type} needs low < high, got low={self.low} high={self.high}")
        elif self.type == "loguniform" and self.low <= 0:
            raise ValueError(f"loguniform needs low > 0, got {self.low}")
        return self


class TuneConfig(Frozen):
    """Ray Tune search over model/train keys; trials run the same training loop as ``train``."""

    space: dict[str, SearchDim] = Field(min_length=1)
    num_samples: int = Field(default=8, ge=1)
    searcher: Literal["random", "optuna"] = "random"
    scheduler: Literal["asha", "fifo"] = "asha"
    steps_per_trial: int = Field(default=100, ge=1, description="per-trial step budget")
    report_every: int = Field(default=25, ge=1, description="validate + tune.report cadence")
    grace_period: int = Field(default=1, ge=1, description="ASHA: reports before stopping")
    reduction_factor: int = Field(default=2, ge=2)
    max_concurrent: int = Field(default=2, ge=1)
    cpus_per_trial: float = Field(default=1.0, gt=0)
    gpus_per_trial: float = Field(default=0.0, ge=0)
    time_budget_s: float | None = Field(default=None, gt=0)
    address: str | None = Field(default=None, description="Ray cluster; RAY_ADDRESS wins")
    storage_path: str | None = Field(default=None, description="local folder or s3://...")
    seed: int = 0

    @model_validator(mode="after")
    def _keys(self) -> TuneConfig:
        for key in self.space:
            section, _, name = key.partition(".")
            known = {"train": TrainConfig, "model": ModelConfig}.get(section)
            if known is None or name not in known.model_fields:
                raise ValueError(f"space key {key!r} must name a field of train.* or model.*")
        return self
