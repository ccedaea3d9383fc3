"""Typed, validated views of ``params.yaml`` sections.

Each stage parses its own section once, at the boundary, into a frozen pydantic model; library
functions take these objects, never raw dicts. Unknown keys and bad values raise
:class:`ConfigError` naming the dotted key (``collect.min_size: ...``).

One module per job; this package re-exports their public names, so ``from girml.config import
TrainConfig`` is the one way in:

- :mod:`.base`: :class:`ConfigError`, the frozen base model and the strict YAML reader;
- one module per section: :mod:`.collect`, :mod:`.degradations`, :mod:`.synthesize` (with
  ``validate``), :mod:`.model`, :mod:`.train` (with ``tune``), :mod:`.evaluate` (with the
  promotion rules and restore's defaults), :mod:`.interpret`, :mod:`.study`,
  :mod:`.orchestration`, :mod:`.protocols`;
- :mod:`.params`: the table of sections, reading a params file and parsing a section;
- :mod:`.profiles`: laying a profile or overrides over a params file, comments kept.
"""

from girml.config.base import ConfigError, Frozen, load_yaml
from girml.config.collect import (
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
from girml.config.degradations import (
    CLEAN_FAMILY,
    DegradationsConfig,
    FamilySpec,
    HeldOut,
    MixedSpec,
    Number,
    OpSpec,
    ParamChoice,
    ParamRange,
    ParamSpec,
    SecondOrderSpec,
)
from girml.config.evaluate import (
    RESERVED_METHODS,
    RESTORE_MAX_FILE_BYTES,
    RESTORE_MAX_PIXELS,
    RESTORE_OVERLAP,
    RESTORE_TILE,
    EvaluateConfig,
    MethodSpec,
    PromotionConfig,
)
from girml.config.interpret import InterpretConfig
from girml.config.model import ModelConfig
from girml.config.orchestration import OrchestrationConfig
from girml.config.params import (
    PROFILE_KEY,
    SECTIONS,
    UNNAMED_PROFILE,
    check_profile_name,
    load_section,
    params_profile,
    parse_section,
    read_params,
)
from girml.config.profiles import (
    Change,
    deep_merge,
    overlay_params,
    profile_changes,
    profile_name,
    profile_text,
    set_leaves,
)
from girml.config.protocols import (
    BUILTIN_PROTOCOLS,
    GENERIC_LAYOUTS,
    KNOWN_SETS,
    ProtocolsConfig,
    ProtocolSpec,
    ProtocolTask,
    TestSetConfig,
)
from girml.config.study import ApproachConfig, StudyConfig
from girml.config.synthesize import SynthesizeConfig, ValidateConfig, held_categories
from girml.config.train import SearchDim, TrainConfig, TuneConfig

__all__ = [
    "BUILTIN_PROTOCOLS",
    "CLEAN_FAMILY",
    "GENERIC_LAYOUTS",
    "KNOWN_SETS",
    "PROFILE_KEY",
    "RESERVED_METHODS",
    "RESTORE_MAX_FILE_BYTES",
    "RESTORE_MAX_PIXELS",
    "RESTORE_OVERLAP",
    "RESTORE_TILE",
    "SECTIONS",
    "UNNAMED_PROFILE",
    "ApproachConfig",
    "BuiltinSource",
    "Change",
    "CollectConfig",
    "ConfigError",
    "DegradationsConfig",
    "EvaluateConfig",
    "FamilySpec",
    "FolderSource",
    "Frozen",
    "HeldOut",
    "InterpretConfig",
    "MethodSpec",
    "MixedSpec",
    "ModelConfig",
    "Number",
    "OpSpec",
    "OrchestrationConfig",
    "PackageSource",
    "ParamChoice",
    "ParamRange",
    "ParamSpec",
    "PromotionConfig",
    "ProtocolSpec",
    "ProtocolTask",
    "ProtocolsConfig",
    "S3Source",
    "SearchDim",
    "SecondOrderSpec",
    "Source",
    "SplitFractions",
    "StudyConfig",
    "SynthesizeConfig",
    "TestSetConfig",
    "TrainConfig",
    "TuneConfig",
    "UrlItem",
    "UrlSource",
    "ValidateConfig",
    "check_profile_name",
    "deep_merge",
    "held_categories",
    "load_section",
    "load_yaml",
    "overlay_params",
    "params_profile",
    "parse_section",
    "profile_changes",
    "profile_name",
    "profile_text",
    "read_params",
    "set_leaves",
]
