"""The pair records of the synthesize stage, validated once where a stage reads them.

Synthesize writes one :class:`PairRecord` per line of every ``pairs.jsonl`` (training and
validation pairs) and ``recipes.jsonl`` (benchmark suites), with :func:`write_jsonl`: keys
sorted, image paths relative to the JSONL's folder, e.g.

    {"category": "cat0", "crop": [43, 40, 32, 32], "family": "jpeg", "gt": "gt/0000.png",
     "id": "0000", "lq": "lq/0000.png", "recipe": {...}, "source_id": "...", "suite": "mixed"}

A reader passes :func:`read_jsonl` the model of the part it needs (:class:`TrainPair` for
training, :class:`BenchPair` for evaluation, :class:`PairRecord` for validation,
:class:`BenchContent` for the interpretation report); keys that model does not name are
ignored, so each stage refuses exactly the records it cannot use. A bad record raises
``ValueError`` naming the file, the line and the field:
``data/pairs/train/pairs.jsonl:7: record lacks key(s) ['gt']``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, ValidationError

from girml.degradations.recipe import Recipe

R = TypeVar("R", bound=BaseModel)


def _to_recipe(value: Any) -> Recipe:
    """A :class:`Recipe` as is, or one parsed from its ``to_dict`` form.

    Every problem is a ``ValueError`` (pydantic reports only those as validation errors): an
    unknown op (the registry's ``KeyError``) and a non-scalar param (``TypeError``) included.
    """
    if isinstance(value, Recipe):
        return value
    try:
        return Recipe.from_dict(value)
    except (KeyError, TypeError) as exc:
        raise ValueError(exc.args[0] if exc.args else repr(exc)) from None


RecipeField = Annotated[
    Recipe, PlainValidator(_to_recipe), PlainSerializer(lambda recipe: recipe.to_dict())
]


class _Record(BaseModel):
    # unknown keys are ignored: a reader's model names only what that reader needs
    model_config = ConfigDict(frozen=True, extra="ignore")


class PairFiles(_Record):
    """A pair's id and its two images.

    Attributes:
        id: pair id, unique in its JSONL (``train-000007``, ``0003``).
        gt: the clean image's path, relative to the JSONL's folder (``gt/<id>.png``).
        lq: the degraded image's path, likewise (``lq/<id>.png``).
    """

    id: str
    gt: str
    lq: str


class TrainPair(PairFiles):
    """What training reads of a pair (``load_pairs``).

    Attributes:
        family: the recipe's families joined by ``+`` (``blur+noise``), or ``clean``.
    """

    family: str


class BenchPair(PairFiles):
    """What evaluation reads of a benchmark pair (``scan_bench``).

    Attributes:
        source_id: id of the clean photo the crop comes from.
        recipe: the degradation that made ``lq`` from ``gt``.
    """

    source_id: str
    recipe: RecipeField


class PairRecord(TrainPair, BenchPair):
    """One line of ``pairs.jsonl`` or ``recipes.jsonl``, as synthesize writes it.

    Attributes:
        category: the clean photo's content category.
        crop: ``(y, x, h, w)`` of the crop in the clean photo, pixels.
        suite: ``train``/``val`` for pairs, the benchmark suite (``single-id`` ...) otherwise.
    """

    category: str
    crop: tuple[int, int, int, int]
    suite: str


class BenchContent(_Record):
    """What the interpretation report reads of a benchmark pair: its content.

    Attributes:
        id: pair id.
        source_id: the clean photo's id; None in records that lack it.
        category: the photo's content category; None in records that lack it (older
            benchmarks).
    """

    id: str
    source_id: str | None = None
    category: str | None = None


def field_path(loc: tuple[int | str, ...]) -> str:
    """``crop[1]`` or ``params.train.lr`` from a pydantic error location."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)[1:]


def _problem(exc: ValidationError) -> str:
    """What is wrong with one record: its missing keys, else every bad field."""
    errors = exc.errors()
    missing = sorted(
        str(err["loc"][0]) for err in errors if err["type"] == "missing" and len(err["loc"]) == 1
    )
    if missing:
        return f"record lacks key(s) {missing}"
    problems = []
    for err in errors:
        if not err["loc"]:
            problems.append(f"record must be a JSON object, got {err['input']!r}")
        elif err["type"] == "value_error":  # raised by girml's own checks, value included
            problems.append(f"field {field_path(err['loc'])!r}: {err['ctx']['error']}")
        else:
            value = err["input"]
            shown = "" if isinstance(value, Mapping | list) else f" (got {value!r})"
            problems.append(f"field {field_path(err['loc'])!r}: {err['msg']}{shown}")
    return "; ".join(problems)


def read_jsonl(path: Path, model: type[R]) -> list[R]:
    """Parse and validate a JSONL file of records (one JSON object per line, blanks skipped).

    Args:
        path: a ``pairs.jsonl`` or ``recipes.jsonl``.
        model: the record model every line must satisfy (keys it does not name are ignored).

    Returns:
        The records in file order (possibly none).

    Raises:
        ValueError: a line is not JSON, lacks a key of ``model`` or has a bad value; the
            message is ``path:line: ...`` and names the key (``record lacks key(s) ['gt']``,
            ``field 'crop[1]': Input should be a valid integer (got 'a')``).
    """
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        try:
            records.append(model.model_validate(data))
        except ValidationError as exc:
            raise ValueError(f"{path}:{n}: {_problem(exc)}") from None
    return records


def write_jsonl(path: Path, records: Iterable[PairRecord]) -> None:
    """Write one record per line: JSON with sorted keys (nested ones too), default separators."""
    with path.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec.model_dump(), sort_keys=True) + "\n")
