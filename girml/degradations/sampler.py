"""Sampling recipes from the ``degradations`` section of ``params.yaml``.

Sample, then apply: every draw comes from the ``numpy.random.Generator`` passed in and ends in an
explicit :class:`~girml.degradations.recipe.Recipe` (random ops receive a drawn ``seed``).
Held-out families are never drawn automatically; a held-out combination is excluded when the
set of families of a recipe equals it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations

import numpy as np

from girml.config import DegradationsConfig, OpSpec, ParamChoice, ParamRange, ParamSpec
from girml.degradations.ops import OPS, ParamValue, check_param, format_number
from girml.degradations.recipe import COMPOSERS, Recipe, Step

SAMPLE_LEVELS = ("id", "ood")
SECOND_ORDER_FAMILIES = ("blur", "resize", "noise", "jpeg")
_PREFIX = "degradations.families"
_MAX_REDRAWS = 100


# --------------------------------------------------------------------------- spec checking


def _check_value(op: str, name: str, value: object, key: str, what: str) -> str | None:
    try:
        check_param(op, name, value)
    except (TypeError, ValueError) as exc:
        return f"{key}: {what} {value!r} is invalid ({exc})"
    return None


def _check_param_spec(op: str, name: str, spec: ParamSpec, key: str) -> list[str]:
    meta = OPS.meta(op)
    kind, domain = meta["kinds"][name], meta["domain"][name]
    if isinstance(spec, ParamChoice):
        values = [("choice", v) for v in spec.choices] + [("ood choice", v) for v in spec.ood or []]
        errors = [_check_value(op, name, v, key, what) for what, v in values]
        return [e for e in errors if e]
    if not isinstance(spec, ParamRange):
        error = _check_value(op, name, spec, key, "value")
        return [error] if error else []
    if kind is str:
        return [f"{key}: {name} is a string param; give a constant or choices, not a range"]
    if kind in (int, bool) and not spec.integer:
        return [f"{key}: {name} is an integer param; its range needs integer: true"]
    errors = []
    valid = f"[{format_number(domain[0])}, {format_number(domain[1])}]"
    for level, bounds in (("id", spec.id), ("ood", spec.ood)):
        if bounds is not None and not (domain[0] <= bounds[0] and bounds[1] <= domain[1]):
            low, high = format_number(bounds[0]), format_number(bounds[1])
            errors.append(f"{key}: {level} range ({low}, {high}) outside valid domain {valid}")
    return errors


def _check_op(family: str, op: str, op_spec: OpSpec) -> list[str]:
    key = f"{_PREFIX}.{family}.ops.{op}"
    family_ops = [name for name in OPS if OPS.meta(name)["family"] == family]
    listing = ", ".join(family_ops) or "none registered"
    if op not in OPS:
        return [f"{key}: unknown op {op!r}; ops of family {family!r}: {listing}"]
    meta = OPS.meta(op)
    if meta["family"] != family:
        return [
            f"{key}: op {op!r} belongs to family {meta['family']!r}; "
            f"ops of family {family!r}: {listing}"
        ]
    errors = []
    for name, spec in op_spec.params.items():
        if name == "seed":
            errors.append(f"{key}.params.seed: seed is drawn by the sampler; do not declare it")
        elif name not in meta["domain"]:
            errors.append(
                f"{key}.params.{name}: unknown param of {op}; params: {', '.join(meta['domain'])}"
            )
        else:
            errors.extend(_check_param_spec(op, name, spec, f"{key}.params.{name}"))
    missing = [name for name in meta["required"] if name not in op_spec.params]
    if missing:
        errors.append(f"{key}.params: missing required param(s) {missing} of {op}")
    return errors


def check_spec(spec: DegradationsConfig) -> None:
    """Check a degradation spec against the registered ops and their domains.

    Every op must be registered under the family it is listed in; every declared param must
    exist, every required param be declared, and every constant, choice and range (id and ood)
    lie inside the op's domain with the right type.

    Raises:
        ValueError: listing every problem, each prefixed by its dotted key, e.g.
            ``degradations.families.noise.ops.gaussian_noise.params.sigma: ood range (50, 300)
            outside valid domain [0, 255]``.
    """
    errors = [
        error
        for family, family_spec in spec.families.items()
        for op, op_spec in family_spec.ops.items()
        for error in _check_op(family, op, op_spec)
    ]
    if errors:
        raise ValueError("invalid degradation spec:\n  " + "\n  ".join(errors))


# --------------------------------------------------------------------------- sampling


def _check_level(level: str) -> None:
    if level not in SAMPLE_LEVELS:
        raise ValueError(f"level must be one of {list(SAMPLE_LEVELS)}, got {level!r}")


def _check_family(spec: DegradationsConfig, family: str) -> None:
    if family not in spec.families:
        raise ValueError(f"unknown family {family!r}; declared: {sorted(spec.families)}")


def _op_spec(spec: DegradationsConfig, family: str, op: str) -> OpSpec:
    _check_family(spec, family)
    ops = spec.families[family].ops
    if op not in ops:
        raise ValueError(f"op {op!r} is not declared in family {family!r}; declared: {list(ops)}")
    return ops[op]


def _draw_param(spec: ParamSpec, level: str, rng: np.random.Generator) -> ParamValue:
    if isinstance(spec, ParamChoice):
        pool = spec.ood if level == "ood" and spec.ood else spec.choices
        return pool[int(rng.integers(len(pool)))]
    if not isinstance(spec, ParamRange):
        return spec
    low, high = spec.ood if level == "ood" and spec.ood is not None else spec.id
    if spec.log:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = float(rng.uniform(low, high))
    if spec.integer:
        return int(np.clip(round(value), math.ceil(low), math.floor(high)))
    return value


def sample_step(
    spec: DegradationsConfig, family: str, level: str, rng: np.random.Generator
) -> Step:
    """Draw one op of ``family`` (by weight) and all its params at ``level``.

    Ranges are uniform (log-uniform if ``log``) within the level's bounds (``ood`` falls back to
    ``id`` when absent), ``integer`` params are rounded, and random ops get
    ``seed = int(rng.integers(2**31))``.

    Args:
        spec: a checked degradation spec.
        family: a family declared in ``spec``.
        level: ``id`` or ``ood``.
        rng: the only source of randomness.

    Returns:
        The sampled step.
    """
    _check_level(level)
    _check_family(spec, family)
    ops = spec.families[family].ops
    names = list(ops)
    weights = np.array([ops[name].weight for name in names], dtype=np.float64)
    op = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    params = {name: _draw_param(p, level, rng) for name, p in ops[op].params.items()}
    if OPS.meta(op)["random"]:
        params["seed"] = int(rng.integers(2**31))
    return Step(op=op, family=family, params=params)


def _allowed(spec: DegradationsConfig, families: Sequence[str]) -> bool:
    """Whether a training recipe may use this set of families."""
    chosen = set(families)
    if chosen & set(spec.held_out.families):
        return False
    # a recipe holding every family of a held-out combination (a superset) shows it too
    return not any(set(combo) <= chosen for combo in spec.held_out.combinations)


def _training_families(spec: DegradationsConfig) -> list[str]:
    return [f for f in spec.families if f not in spec.held_out.families]


def _pick(
    spec: DegradationsConfig, candidates: Sequence[Sequence[str]], rng: np.random.Generator
) -> int:
    """Index of one candidate family set, drawn by the product of its families' weights.

    With every weight at 1 this is the uniform draw it always was (the same random numbers, so
    the same data), and the weights change nothing else.
    """
    weights = np.array(
        [np.prod([spec.families[f].weight for f in c]) for c in candidates], dtype=np.float64
    )
    if np.all(weights == weights[0]):
        return int(rng.integers(len(candidates)))
    return int(rng.choice(len(candidates), p=weights / weights.sum()))


def _single(
    spec: DegradationsConfig, level: str, rng: np.random.Generator, families: Sequence[str] | None
) -> tuple[Step, ...]:
    if families is None:
        pool = [f for f in _training_families(spec) if _allowed(spec, [f])]
        if not pool:
            raise ValueError("no training family is left for a 'single' recipe")
        family = pool[_pick(spec, [(f,) for f in pool], rng)]
    elif len(families) == 1:
        family = families[0]
    else:
        raise ValueError(f"a 'single' recipe takes exactly one family, got {list(families)}")
    return (sample_step(spec, family, level, rng),)


def _mixed(
    spec: DegradationsConfig, level: str, rng: np.random.Generator, families: Sequence[str] | None
) -> tuple[Step, ...]:
    if families is None:
        train = _training_families(spec)
        k_min, k_max = spec.mixed.k
        k_max = min(k_max, len(train))
        if k_min > k_max:
            raise ValueError(
                f"degradations.mixed.k: needs at least {k_min} training families, "
                f"have {len(train)} ({train})"
            )
        k = int(rng.integers(k_min, k_max + 1))
        candidates = [c for c in combinations(train, k) if _allowed(spec, c)]
        if not candidates:
            raise ValueError(f"every set of {k} training families is a held-out combination")
        families = candidates[_pick(spec, candidates, rng)]
    order = [families[i] for i in rng.permutation(len(families))]  # the BSRGAN shuffle
    return tuple(sample_step(spec, family, level, rng) for family in order)


def _second_order(
    spec: DegradationsConfig, level: str, rng: np.random.Generator, families: Sequence[str] | None
) -> tuple[Step, ...]:
    if families is None:
        usable = [f for f in SECOND_ORDER_FAMILIES if f in _training_families(spec)]
        check_allowed = True
    else:
        unknown = sorted(set(families) - set(SECOND_ORDER_FAMILIES))
        if unknown:
            raise ValueError(f"second_order only uses {list(SECOND_ORDER_FAMILIES)}, got {unknown}")
        usable = [f for f in SECOND_ORDER_FAMILIES if f in families]
        check_allowed = False
    if not usable:
        raise ValueError(f"second_order needs one of {list(SECOND_ORDER_FAMILIES)} in the spec")
    probs = spec.second_order
    for _ in range(_MAX_REDRAWS):
        rounds = 2 if rng.random() < probs.second_round_prob else 1
        chosen = [f for _ in range(rounds) for f in usable if rng.random() >= probs.skip_prob]
        if chosen and (not check_allowed or _allowed(spec, chosen)):
            return tuple(sample_step(spec, family, level, rng) for family in chosen)
    raise ValueError(
        f"second_order: no allowed non-empty recipe in {_MAX_REDRAWS} draws "
        f"(skip_prob={probs.skip_prob}, held-out combinations {spec.held_out.combinations})"
    )


_COMPOSE = {"single": _single, "mixed": _mixed, "second_order": _second_order}


def sample_recipe(
    spec: DegradationsConfig,
    composer: str,
    level: str,
    rng: np.random.Generator,
    families: Sequence[str] | None = None,
) -> Recipe:
    """Draw a recipe with the given composer.

    Args:
        spec: a checked degradation spec.
        composer: ``single`` (one family), ``mixed`` (k distinct families in random order) or
            ``second_order`` (Real-ESRGAN: up to two rounds of blur -> resize -> noise -> jpeg,
            each op skipped with ``skip_prob``, the second round kept with
            ``second_round_prob``).
        level: ``id`` or ``ood`` parameter ranges.
        rng: the only source of randomness.
        families: use exactly these families (held-out ones allowed, e.g. for benchmarks);
            when None they are drawn from the training families, never forming a held-out
            combination.

    Returns:
        The sampled recipe.
    """
    if composer not in COMPOSERS:
        raise ValueError(f"composer must be one of {list(COMPOSERS)}, got {composer!r}")
    _check_level(level)
    if families is not None:
        if isinstance(families, str):
            raise TypeError(f"families must be a sequence of names, got the string {families!r}")
        if not families or len(set(families)) != len(families):
            raise ValueError(f"families must be distinct and non-empty, got {list(families)}")
        for family in families:
            _check_family(spec, family)
    steps = _COMPOSE[composer](spec, level, rng, families)
    return Recipe(composer=composer, level=level, steps=steps)


def sample_train_recipe(spec: DegradationsConfig, rng: np.random.Generator) -> Recipe:
    """Draw a training recipe: composer by ``train_composers`` weight, level ``id``.

    Never uses a held-out family, nor a family set equal to a held-out combination.
    """
    names = [c for c, w in spec.train_composers.items() if w > 0]
    weights = np.array([spec.train_composers[c] for c in names], dtype=np.float64)
    composer = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    return sample_recipe(spec, composer, "id", rng)


def param_bounds(
    spec: DegradationsConfig, family: str, op: str, param: str, level: str
) -> tuple[float, float] | None:
    """The declared numeric range of one param at ``level`` (``ood`` falls back to ``id``).

    A constant gives ``(v, v)`` and numeric choices ``(min, max)`` of the level's pool.

    Returns:
        ``(low, high)``, or None when the param is not declared (defaults, ``seed``) or is
        not numeric.
    """
    _check_level(level)
    declared = _op_spec(spec, family, op).params.get(param)
    if isinstance(declared, ParamRange):
        low, high = declared.ood if level == "ood" and declared.ood is not None else declared.id
        return float(low), float(high)
    if isinstance(declared, ParamChoice):
        pool = declared.ood if level == "ood" and declared.ood else declared.choices
        values = [v for v in pool if not isinstance(v, str)]
        return (float(min(values)), float(max(values))) if len(values) == len(pool) else None
    if declared is None or isinstance(declared, str):
        return None
    return float(declared), float(declared)
