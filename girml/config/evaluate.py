"""The ``evaluate`` section: the benchmark's metrics and baselines, the outside methods scored
beside the model, and the rules that promote a new ``@champion``; with the defaults of
``girml restore``, which the whole-photo suite restores its photos by."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from girml.config.base import Frozen

# What `girml restore` does by default, and so how the `whole` suite restores its photos.
RESTORE_TILE = 256
RESTORE_OVERLAP = 32
# Restore's caps (--max-pixels, --max-file-bytes): tiling bounds the network's memory, so a photo
# far above collect's caps is fine; the decoded image itself still has to fit.
RESTORE_MAX_PIXELS = 400_000_000
RESTORE_MAX_FILE_BYTES = 1_000_000_000


class PromotionConfig(Frozen):
    """When a new model version replaces the registry's ``@champion``."""

    min_gir_gain: float = Field(default=0.05, ge=0, description="dB of gir_score to gain")
    max_family_regression: float = Field(
        default=0.25, ge=0, description="dB any (suite, family) may lose against the champion"
    )
    max_harm_rate_increase: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="how much any suite's harm_rate (a fraction) may rise over the champion's",
    )
    max_clean_psnr_drop: float = Field(
        default=1.0,
        ge=0,
        description="dB any suite's harm.clean_psnr_y may lose against the champion",
    )
    max_block_shift_rise: float = Field(
        default=1.0,
        ge=0,
        description="grey levels any suite's patch metric (harm.block_shift.<suite>) may rise",
    )


# Method names the evaluate stage gives its own restorers (girml.evaluation.harness.MODEL_METHOD,
# girml.evaluation.gate.CHAMPION_METHOD); an outside method may not take them.
# Method names the evaluate stage gives its own rows (girml.evaluation.harness.MODEL_METHOD,
# girml.evaluation.gate.CHAMPION_METHOD); an outside method or a study approach may not
# take them.
RESERVED_METHODS = frozenset({"model", "champion"})


class MethodSpec(Frozen):
    """An outside restorer scored next to the model and the baselines (``evaluate.methods``).

    Exactly one source: ``command`` (a program that restores a folder; ``{in}`` and ``{out}``
    stand for the input and output folders), ``mlflow`` (a model URI such as
    ``models:/name@alias``) or ``python`` (``package.module:function``). ``kind`` (python only)
    says what the function is: a ``restorer`` ((H,W,3) uint8 -> (H,W,3) uint8) or a
    ``module_factory`` (called without arguments, returns a torch ``nn.Module``).
    ``timeout_s`` and ``batch`` (command only): seconds one run of the program may take, and
    whether it runs once per (suite, family) folder or once over every image.
    """

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", description="its rows' method name")
    command: str | None = Field(default=None, description="e.g. 'tool --in {in} --out {out}'")
    mlflow: str | None = Field(default=None, description="a model URI, e.g. models:/name@alias")
    python: str | None = Field(default=None, description="package.module:function")
    kind: Literal["restorer", "module_factory"] = "restorer"
    timeout_s: float = Field(default=3600.0, gt=0, description="per run of the command")
    batch: Literal["family", "all"] = "family"

    @model_validator(mode="after")
    def _one_source(self) -> MethodSpec:
        given = [key for key in ("command", "mlflow", "python") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(
                f"method {self.name!r} needs exactly one of command, mlflow, python; got "
                f"{given or 'none'}"
            )
        if self.command is not None:
            missing = [p for p in ("{in}", "{out}") if p not in self.command]
            if missing:
                raise ValueError(
                    f"method {self.name!r}: command {self.command!r} lacks {' and '.join(missing)}"
                )
        if self.python is not None:
            module, _, function = self.python.partition(":")
            if not module or not function:
                raise ValueError(
                    f"method {self.name!r}: python must be 'package.module:function', "
                    f"got {self.python!r}"
                )
        misplaced = [
            f"{key} (only with {source})"
            for key, source in (("kind", "python"), ("timeout_s", "command"), ("batch", "command"))
            if key in self.model_fields_set and getattr(self, source) is None
        ]
        if misplaced:
            raise ValueError(f"method {self.name!r}: {', '.join(misplaced)}")
        return self


class EvaluateConfig(Frozen):
    """Benchmark evaluation: metrics, baselines, optional suites and the champion decision."""

    crop_border: int = Field(default=0, ge=0, description="pixels removed before PSNR/SSIM")
    tile: int | None = Field(default=None, ge=16, description="tiled inference; None = whole")
    self_ensemble: Literal[1, 2, 4, 8] = Field(
        default=8, description="flips/transposes averaged per image for the project's networks"
    )
    baselines: list[str] = Field(
        default_factory=lambda: [
            "identity",
            "nlm",
            "wiener",
            "deblock",
            "dark_channel",
            "clahe",
            "median",
            "bicubic_sharpen",
        ]
    )
    real_dir: str | None = Field(default=None, description="real degraded photos (no GT)")
    lpips_weights: str | None = Field(default=None, description="local AlexNet-LPIPS weights")
    niqe_patch_size: int = Field(default=64, ge=16)
    specialists: bool = Field(default=False, description="train one-family specialists too")
    specialist_families: list[str] | None = None
    promotion: PromotionConfig = PromotionConfig()
    methods: list[MethodSpec] = Field(default=[], description="outside restorers to score")

    @model_validator(mode="after")
    def _method_names(self) -> EvaluateConfig:
        taken = {name: "a baseline" for name in self.baselines}
        taken.update(dict.fromkeys(RESERVED_METHODS, "reserved"))
        for spec in self.methods:
            if spec.name in taken:
                raise ValueError(f"method name {spec.name!r} is taken ({taken[spec.name]})")
            taken[spec.name] = "another method"
        return self
