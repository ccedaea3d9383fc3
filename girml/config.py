"""Typed, validated views of ``params.yaml`` sections.

Each stage parses its own section once, at the boundary, into a frozen pydantic model; library
functions take these objects, never raw dicts. Unknown keys and bad values raise
:class:`ConfigError` naming the dotted key (``collect.min_size: ...``).
"""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

# re-exported: the stages import every section from here
from girml.config_base import ConfigError, Frozen, load_yaml
from girml.config_collect import (  # noqa: F401
    BuiltinSource,
    CollectConfig,
    FolderSource,
    PackageSource,
    S3Source,
    Source,
    SplitFractions,
    UrlItem,
    UrlSource,
)
from girml.config_model import ModelConfig
from girml.urls import mask_text

T = TypeVar("T", bound=BaseModel)
# one overlay change: (label for errors, key path from the top, value)
Change = tuple[str, list[str], Any]

# The benchmark family whose input is its ground truth (no degradation, see
# girml.data.synthesize.CLEAN_SUITES); evaluation scores it as harm. No degradation family may
# take the name.
CLEAN_FAMILY = "clean"
# What `girml restore` does by default, and so how the `whole` suite restores its photos.
RESTORE_TILE = 256
RESTORE_OVERLAP = 32
# Restore's caps (--max-pixels, --max-file-bytes): tiling bounds the network's memory, so a photo
# far above collect's caps is fine; the decoded image itself still has to fit.
RESTORE_MAX_PIXELS = 400_000_000
RESTORE_MAX_FILE_BYTES = 1_000_000_000


# ConfigError and Frozen live in girml.config_base, the collect section in girml.config_collect
# (re-exported: ``from girml.config import CollectConfig`` keeps working).


# --------------------------------------------------------------------------- degradations

Number = int | float


class ParamRange(Frozen):
    """A sampled parameter: uniform (or log-uniform) within the level's range."""

    id: tuple[Number, Number]
    ood: tuple[Number, Number] | None = None
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> ParamRange:
        for name in ("id", "ood"):
            rng = getattr(self, name)
            if rng is not None and rng[0] > rng[1]:
                raise ValueError(f"{name} range must be [low, high] with low <= high, got {rng}")
            if rng is not None and self.log and rng[0] <= 0:
                raise ValueError(f"log ranges must be positive, got {name}={rng}")
        return self


class ParamChoice(Frozen):
    """A parameter drawn uniformly from a list (per level if ``ood`` is given)."""

    choices: list[Number | str] = Field(min_length=1)
    ood: list[Number | str] | None = None


ParamSpec = Number | str | ParamRange | ParamChoice


class OpSpec(Frozen):
    weight: float = Field(default=1.0, gt=0)
    params: dict[str, ParamSpec] = Field(default_factory=dict)


class FamilySpec(Frozen):
    ops: dict[str, OpSpec] = Field(min_length=1)


class HeldOut(Frozen):
    families: list[str] = Field(default_factory=list)
    combinations: list[list[str]] = Field(default_factory=list)


class MixedSpec(Frozen):
    k: tuple[int, int] = (2, 3)


class SecondOrderSpec(Frozen):
    """Real-ESRGAN-style two rounds of blur -> resize -> noise -> jpeg."""

    second_round_prob: float = Field(default=0.5, ge=0, le=1)
    skip_prob: float = Field(default=0.3, ge=0, le=1, description="chance to skip each op")


class DegradationsConfig(Frozen):
    """The study's degradation space. The families have no default, and what names them (held
    out of training, the benchmark's combinations) defaults to nothing: params.yaml states it."""

    families: dict[str, FamilySpec] = Field(min_length=1)
    held_out: HeldOut = HeldOut()
    train_composers: dict[Literal["single", "mixed", "second_order"], float] = Field(
        default_factory=lambda: {"single": 0.4, "mixed": 0.4, "second_order": 0.2}
    )
    mixed: MixedSpec = MixedSpec()
    second_order: SecondOrderSpec = SecondOrderSpec()
    bench_combinations: list[list[str]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _families_known(self) -> DegradationsConfig:
        if CLEAN_FAMILY in self.families:
            raise ValueError(
                f"family name {CLEAN_FAMILY!r} is reserved for the benchmark's undegraded family"
            )
        known = set(self.families)
        named = list(self.held_out.families)
        for combo in [*self.held_out.combinations, *self.bench_combinations]:
            named.extend(combo)
        unknown = sorted(set(named) - known)
        if unknown:
            raise ValueError(f"unknown families {unknown}; declared: {sorted(known)}")
        if not any(w > 0 for w in self.train_composers.values()):
            raise ValueError("train_composers needs at least one positive weight")
        if len(set(self.families) - set(self.held_out.families)) == 0:
            raise ValueError("every family is held out: nothing left to train on")
        return self


# --------------------------------------------------------------------------- synthesize


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


# --------------------------------------------------------------------------- validate


class ValidateConfig(Frozen):
    psnr_band: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {"lowlight": (0.5, 50.0)},
        description="per family: plausible PSNR(LQ, GT) band in dB",
    )
    default_psnr_band: tuple[float, float] = (2.0, 80.0)
    check_decode: bool = True


# --------------------------------------------------------------------------- model
# ModelConfig, with its bounds, lives in girml.config_model (imported above).


# --------------------------------------------------------------------------- train


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
        "machine, girml.cpu_isa); None: the machine's best",
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


# --------------------------------------------------------------------------- evaluate


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
        description="grey levels the whole-photo patch metric (harm.block_shift.whole) may rise",
    )


# Method names the evaluate stage gives its own restorers (girml.evaluation.harness.MODEL_METHOD,
# girml.evaluation.promotion.CHAMPION_METHOD); an outside method may not take them.
RESERVED_METHODS = ("model", "champion")


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


# --------------------------------------------------------------------------- orchestration


class OrchestrationConfig(Frozen):
    """Prefect flow and deployment settings (read by ``pipelines/``, not by the library)."""

    cron: str = Field(default="0 3 * * 1", min_length=9, description="deployment schedule")
    timezone: str = "UTC"
    deployment: str = "scheduled"
    push: bool = Field(default=False, description="dvc push (and report upload) at the end")
    retries: int = Field(default=2, ge=0, description="retries of I/O-bound stages")
    retry_delay_s: float = Field(default=10.0, ge=0)
    io_stages: list[str] = Field(default_factory=lambda: ["collect"])


# --------------------------------------------------------------------------- tune


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


# --------------------------------------------------------------------------- interpret


class InterpretConfig(Frozen):
    """What the interpretation report computes (features, attribution, sensitivity, crops)."""

    layer: str = Field(default="bottleneck", description="feature layer for the t-SNE maps")
    images_per_group: int = Field(default=8, ge=2, description="per suite/family for t-SNE")
    tsne_perplexity: float = Field(default=15.0, gt=1)
    lam_window: int = Field(default=16, ge=4, description="output window side for LAM")
    lam_steps: int = Field(default=16, ge=4, description="integrated-gradients steps")
    lam_images_per_family: int = Field(default=1, ge=1)
    sensitivity_levels: int = Field(default=7, ge=3)
    sensitivity_images: int = Field(default=4, ge=1)
    sensitivity_extend: float = Field(default=1.5, ge=1, description="sweep past the ood range")
    comparisons_per_family: int = Field(default=1, ge=1, description="worst and best each")
    seed: int = 0


# method names of the evaluate stage's own rows (girml/evaluation/harness.py, promotion.py)
RESERVED_METHODS = frozenset({"model", "champion"})


class ApproachConfig(Frozen):
    """One approach of the study (``study.approaches.<name>``; ``girml/evaluation/approaches.py``).

    ``kind``: ``unified`` (one model for every degradation; ``model`` overrides the ``model``
    section, e.g. ``{type: prompt_nafnet}``), ``specialists`` (one model per training family,
    told the family at test time: oracle routing), ``routed`` (a degradation classifier picks a
    specialist of the approach named by ``specialists``, or a classical method, per image) or
    ``release`` (the shipped ``models/release``, not trained).
    """

    kind: Literal["unified", "specialists", "routed", "release"]
    model: dict[str, Any] = Field(default_factory=dict, description="model section overrides")
    specialists: str = Field(default="specialists", description="routed: the specialists' approach")

    @model_validator(mode="after")
    def _model_only_where_trained(self) -> ApproachConfig:
        if self.model and self.kind in ("routed", "release"):
            raise ValueError(f"kind {self.kind!r} trains no restorer: remove model")
        return self


class StudyConfig(Frozen):
    """The study (DVC stages ``approach@<name>``, ``approach-eval@<name>`` and ``study``).

    ``approaches``: name -> :class:`ApproachConfig`, each trained at the compute of the ``train``
    section's run (FLOP-matched; README, "The study"). Empty in the quick profile;
    ``profiles/study.yaml`` lists the approaches the GIR literature compares.
    """

    reference: str = Field(default="model", description="the method paired differences are against")
    seed: int = Field(default=0, description="bootstrap seed")
    n_boot: int = Field(default=2000, ge=100, description="bootstrap resamples per interval")
    approaches: dict[str, ApproachConfig] = Field(default_factory=dict)
    classifier_steps: int = Field(default=400, ge=1, description="routed: classifier steps")

    @field_validator("approaches")
    @classmethod
    def _names(cls, value: dict[str, ApproachConfig]) -> dict[str, ApproachConfig]:
        for name, approach in value.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(
                    f"approach name {name!r} must be lower case letters, digits and _ "
                    "(it names a DVC stage and a folder)"
                )
            if name in RESERVED_METHODS:
                raise ValueError(f"approach name {name!r} is taken by the evaluate stage's rows")
            if approach.kind == "routed":
                target = value.get(approach.specialists)
                if target is None or target.kind != "specialists":
                    raise ValueError(
                        f"approach {name!r} routes to {approach.specialists!r}, which is not an "
                        "approach of kind specialists"
                    )
        return value


SECTIONS: dict[str, type[BaseModel]] = {
    "collect": CollectConfig,
    "degradations": DegradationsConfig,
    "synthesize": SynthesizeConfig,
    "validate": ValidateConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
    "orchestration": OrchestrationConfig,
    "tune": TuneConfig,
    "interpret": InterpretConfig,
    "study": StudyConfig,
}


def read_params(path: str | Path) -> dict[str, Any]:
    """Read a params YAML file into a dict, rejecting unknown top-level sections and keys given
    twice in one mapping (:func:`girml.config_base.load_yaml`)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: params file not found")
    raw = load_yaml(p.read_text(encoding="utf-8"), str(p)) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: top level must be a mapping of sections")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{p}: unknown section(s) {unknown}; known: {sorted(SECTIONS)}")
    return raw


def _key_path(section: str, loc: tuple[int | str, ...], raw: Any) -> str:
    """``collect.sources[0].items[1].url`` from a pydantic error location.

    List indices are bracketed, and the tag that pydantic inserts after the index of a
    discriminated union member (``sources.0.urls.items``) is dropped: it is no key of the file.
    """
    key, node = section, raw
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
            node = node[part] if isinstance(node, list) and -len(node) <= part < len(node) else None
        elif isinstance(node, dict) and part not in node and node.get("type") == part:
            continue  # the union tag
        else:
            key += f".{part}"
            node = node.get(part) if isinstance(node, dict) else None
    return key


def parse_section(raw: Any, section: str, model: type[T], source: str = "params") -> T:
    """Validate one section's raw mapping into ``model``; errors name the dotted key.

    The bad value is shown with any URL credentials masked (:func:`girml.urls.mask_text`).
    """
    try:
        return model.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = _key_path(section, err["loc"], raw)
            value = err.get("input")
            shown = "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
            lines.append(mask_text(f"{key}: {err['msg']}{shown}"))
        raise ConfigError(f"{source}: invalid config\n  " + "\n  ".join(lines)) from None


def load_section(path: str | Path, section: str) -> Any:
    """Load and validate ``section`` of the params file at ``path``."""
    if section not in SECTIONS:
        raise ConfigError(f"unknown section {section!r}; known: {sorted(SECTIONS)}")
    raw = read_params(path)
    if section not in raw:
        raise ConfigError(f"{path}: section {section!r} is missing")
    return parse_section(raw[section], section, SECTIONS[section], source=str(path))


def _quoted(value: Any) -> Any:
    """``value`` with every string double-quoted when dumped.

    ruamel writes YAML 1.2, where a plain ``no`` or ``on`` is a string; PyYAML (how the stages
    read params) takes those as booleans, so strings written into params are always quoted.
    """
    if isinstance(value, str):
        return DoubleQuotedScalarString(value)
    if isinstance(value, list):
        return [_quoted(v) for v in value]
    if isinstance(value, dict):
        return {k: _quoted(v) for k, v in value.items()}
    return value


def _round_trip() -> YAML:
    """A ruamel loader/dumper that keeps comments, quotes and this project's list indentation."""
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 100
    rt.indent(mapping=2, sequence=4, offset=2)
    rep = rt.representer  # per instance: ruamel's add_representer would change the class
    rep.yaml_representers = {
        **rep.yaml_representers,
        type(None): lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"),
    }
    return rt


def overlay_params(text: str, changes: Sequence[Change], source: str) -> tuple[str, dict[str, Any]]:
    """Set values in params text, keeping its comments and order, and validate the result.

    The one way settings are laid over ``params.yaml``: ``girml profile`` (a profile's leaves),
    the flow's ``-S``-style overrides (``pipelines.flows.apply_overrides``) and anything else
    that edits the file go through it.

    Args:
        text: the params file's text.
        changes: ``(label, key path, value)``: the label names the change in errors (an
            override's text, a profile's dotted key); the key path starts with a section; a
            value replaces what is there (mappings are replaced whole only when given as a leaf).
        source: where the changes come from, for validation messages.

    Returns:
        The new text and the new params as plain data (as the stages will read them).

    Raises:
        ConfigError: an unknown section, a key path through a non-mapping, or a section that
            no longer validates (the message names the dotted key).
    """
    rt = _round_trip()
    data = rt.load(text) or {}
    for label, keys, _ in changes:
        if keys[0] not in SECTIONS:
            raise ConfigError(f"{label}: unknown section {keys[0]!r}; known: {sorted(SECTIONS)}")
    set_leaves(data, [(label, keys, _quoted(value)) for label, keys, value in changes])
    buffer = io.StringIO()
    rt.dump(data, buffer)
    plain = yaml.safe_load(buffer.getvalue()) or {}
    for section, raw in plain.items():
        parse_section(raw, section, SECTIONS[section], source=source)
    return buffer.getvalue(), plain


def profile_changes(profile: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[Change]:
    """A profile's leaves as :func:`overlay_params` changes: mappings are walked, every other
    value (lists included) replaces what the base has."""
    changes: list[Change] = []
    for key, value in profile.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and value:
            changes += profile_changes(value, path)
        else:
            changes.append((".".join(path), list(path), value))
    return changes


def set_leaves(data: MutableMapping[str, Any], changes: Sequence[Change]) -> None:
    """Set each change's key path in ``data`` (in place): the overlay rule, in one place.

    Missing or null mappings on the way are created; a value replaces what is there.

    Raises:
        ConfigError: a key path runs through a value that is not a mapping (names the label).
    """
    for label, keys, value in changes:
        node = data
        for depth, key in enumerate(keys[:-1]):
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
            if not isinstance(node, MutableMapping):
                where = ".".join(keys[: depth + 1])
                raise ConfigError(f"{label}: {where} is not a mapping")
        node[keys[-1]] = value


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` laid over it by the same rule as :func:`overlay_params`
    (:func:`profile_changes`, then :func:`set_leaves`): its in-memory form, for the tuning
    overlays on model/train settings that are not a file."""
    out = copy.deepcopy(dict(base))
    set_leaves(out, profile_changes(dict(override)))
    return out


def apply_profile(base_path: str | Path, profile_path: str | Path) -> dict[str, Any]:
    """Lay a profile (a partial params file) over a params file and validate every section.

    Returns:
        The merged params mapping (see :func:`profile_text` for the file with its comments).
    """
    return profile_text(base_path, profile_path)[1]


def profile_text(base_path: str | Path, profile_path: str | Path) -> tuple[str, dict[str, Any]]:
    """The base params file with the profile laid over it (:func:`overlay_params`): its text,
    comments kept, and the merged mapping."""
    read_params(base_path)  # the base exists and is valid before it is edited
    changes = profile_changes(read_params(profile_path))
    text = Path(base_path).read_text(encoding="utf-8")
    return overlay_params(text, changes, source=str(profile_path))
