"""Whole-file check of ``params.yaml``: every section, plus the checks that span sections.

Each stage verb parses only the sections it reads, but DVC deletes a stage's outputs before it
runs the command, and a stage that fails half-way can leave its scratch state (checkpoints,
Ray results) changed. :func:`check_params` runs first in every stage verb, so a typo anywhere
in the file stops the stage before it touches anything, with the message naming the key that
is wrong (not a key of the stage that happened to run first).

Registry checks (architectures, baselines, degradation ops, builtin images) import their
registries lazily, inside the check, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from girml.config import PROFILE_KEY, SECTIONS, ConfigError, parse_section, read_params

__all__ = ["check_params", "cross_section_errors"]


def _section_errors(path: Path, raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Parse every section present in ``raw``; return the parsed ones and the error lines."""
    parsed: dict[str, Any] = {}
    errors: list[str] = []
    for section, value in raw.items():
        if section == PROFILE_KEY:  # a name, checked by read_params
            continue
        try:
            parsed[section] = parse_section(value, section, SECTIONS[section], source=str(path))
        except ConfigError as exc:
            # parse_section's message: "<source>: invalid config\n  <key>: <msg>\n  ..."
            errors.extend(line.strip() for line in str(exc).splitlines()[1:])
    return parsed, errors


def _architecture(cfgs: dict[str, Any]) -> list[str]:
    if "model" not in cfgs:
        return []
    from girml.models import ARCHS

    try:
        ARCHS.get(cfgs["model"].type)
    except KeyError as exc:
        return [f"model.type: {exc.args[0]}"]
    from girml.models.shapes import planned_shapes

    try:  # what a model folder may hold (its size, on the meta device: nothing allocated)
        planned_shapes(cfgs["model"], "params")
    except ConfigError as exc:  # "params: model: <n> parameters ..."
        return [str(exc).split(": ", 1)[1]]
    return []


def _patch_sizes(cfgs: dict[str, Any]) -> list[str]:
    if "train" not in cfgs or "synthesize" not in cfgs:
        return []
    train, synth = cfgs["train"].patch_size, cfgs["synthesize"].patch_size
    if train > synth:
        return [
            f"train.patch_size: {train} is larger than synthesize.patch_size {synth} "
            "(training crops are cut from the synthesized pairs)"
        ]
    return []


def _degradations(cfgs: dict[str, Any]) -> list[str]:
    if "degradations" not in cfgs:
        return []
    from girml.degradations import check_spec

    try:
        check_spec(cfgs["degradations"])
    except ValueError as exc:
        return [line.strip() for line in str(exc).splitlines()[1:]] or [str(exc)]
    return []


def _evaluate(cfgs: dict[str, Any]) -> list[str]:
    if "evaluate" not in cfgs:
        return []
    from girml.baselines import BASELINES

    errors = []
    for i, name in enumerate(cfgs["evaluate"].baselines):
        try:
            BASELINES.get(name)
        except KeyError as exc:
            errors.append(f"evaluate.baselines.{i}: {exc.args[0]}")
    wanted = cfgs["evaluate"].specialist_families
    if wanted is not None and "degradations" in cfgs:
        unknown = sorted(set(wanted) - set(cfgs["degradations"].families))
        if unknown:
            errors.append(
                f"evaluate.specialist_families: unknown families {unknown}; declared in "
                f"degradations.families: {sorted(cfgs['degradations'].families)}"
            )
    return errors


def _collect(cfgs: dict[str, Any]) -> list[str]:
    if "collect" not in cfgs:
        return []
    from girml.data.sources import BUILTIN_IMAGES

    errors = []
    for i, source in enumerate(cfgs["collect"].sources):
        unknown = [n for n in (getattr(source, "include", None) or []) if n not in BUILTIN_IMAGES]
        if source.type == "builtin" and unknown:
            errors.append(
                f"collect.sources.{i}.include: unknown builtin image(s) {unknown}; available: "
                f"{', '.join(sorted(BUILTIN_IMAGES))}"
            )
    return errors


def _tune(cfgs: dict[str, Any]) -> list[str]:
    # the base model/train must be valid first, or every tune.space key would take the blame
    if "tune" not in cfgs or "model" not in cfgs or "train" not in cfgs:
        return []
    from girml.tuning.space import check_space

    try:
        check_space(cfgs["tune"], cfgs["model"], cfgs["train"])
    except ConfigError as exc:
        return [str(exc)]
    return []


def _study(cfgs: dict[str, Any]) -> list[str]:
    """Each approach's ``model`` overrides make a valid model section of a known architecture,
    and no approach takes the name of a baseline or an outside method."""
    if "study" not in cfgs:
        return []
    from pydantic import ValidationError

    from girml.config import ModelConfig
    from girml.models import ARCHS

    errors = []
    taken = set()
    if "evaluate" in cfgs:
        taken = {*cfgs["evaluate"].baselines, *(m.name for m in cfgs["evaluate"].methods)}
    for name, approach in cfgs["study"].approaches.items():
        if name in taken:
            errors.append(f"study.approaches.{name}: the name of an evaluate method or baseline")
        if not approach.model or "model" not in cfgs:
            continue
        where = f"study.approaches.{name}.model"
        try:
            cfg = ModelConfig(**{**cfgs["model"].model_dump(), **approach.model})
            ARCHS.get(cfg.type)
        except ValidationError as exc:
            errors += [f"{where}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        except KeyError as exc:
            errors.append(f"{where}.type: {exc.args[0]}")
    return errors


def _protocols(cfgs: dict[str, Any]) -> list[str]:
    """Each protocol's metric conventions exist, and each set a protocol of ``protocols.run``
    needs is listed in ``protocols.sets`` (the message says where to get it)."""
    if "protocols" not in cfgs or not (cfgs["protocols"].run or cfgs["protocols"].custom):
        return []  # off (the quick profile): nothing to import
    from girml.config import BUILTIN_PROTOCOLS
    from girml.data.testsets import how_to_get
    from girml.metrics.conventions import CONVENTIONS

    cfg = cfgs["protocols"]
    errors = []
    for name, spec in {**BUILTIN_PROTOCOLS, **cfg.custom}.items():
        unknown = sorted(
            {c for c in (spec.convention, *(t.convention for t in spec.tasks)) if c}
            - set(CONVENTIONS)
        )
        if unknown:
            errors.append(
                f"protocols.custom.{name}: unknown convention(s) {unknown}; known: "
                f"{sorted(CONVENTIONS)}"
            )
    missing: dict[str, list[str]] = {}
    for name in cfg.run:
        for task in cfg.protocol(name).tasks:
            if task.set not in cfg.sets and not task.optional:
                missing.setdefault(task.set, []).append(name)
    for set_name, needs in missing.items():
        errors.append(
            f"protocols.run: {', '.join(dict.fromkeys(needs))} need(s) test set {set_name!r}, "
            f"which protocols.sets does not list. {how_to_get(set_name)}"
        )
    return errors


# Run in this order; a check that needs valid base sections comes after the ones that check them.
CROSS_CHECKS: tuple[Callable[[dict[str, Any]], list[str]], ...] = (
    _collect,
    _degradations,
    _architecture,
    _patch_sizes,
    _evaluate,
    _study,
    _protocols,
    _tune,
)


def cross_section_errors(cfgs: dict[str, Any]) -> list[str]:
    """Problems that one section's schema cannot see: unknown registry names, sizes that must
    agree between sections, a search space that cannot produce valid trials.

    Args:
        cfgs: parsed sections by name (absent sections are skipped, and so are the checks
            that need them).

    Returns:
        One ``dotted.key: message`` line per problem; empty when all is well. The ``tune``
        check runs only when the other checks found nothing, so a bad ``model``/``train``
        value is reported under its own key, never under a ``tune.space`` key.
    """
    errors: list[str] = []
    for check in CROSS_CHECKS:
        if check is _tune and errors:
            break
        errors.extend(check(cfgs))
    return errors


def check_params(path: str | Path) -> dict[str, Any]:
    """Validate every section of the params file at ``path`` and the checks between them.

    Sections that are absent are not required here (each stage still requires its own).

    Returns:
        The parsed sections by name.

    Raises:
        ConfigError: listing every problem found, one ``dotted.key: message`` line each, e.g.
            ``model.type: unknown architecture 'unet9000'; available: nafnet, plain_cnn,
            prompt_nafnet``.
    """
    path = Path(path)
    raw = read_params(path)
    cfgs, errors = _section_errors(path, raw)
    if not errors:
        errors = cross_section_errors(cfgs)
    if errors:
        raise ConfigError(f"{path}: invalid config\n  " + "\n  ".join(errors))
    return cfgs
