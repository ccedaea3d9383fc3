"""The DVC pipeline as an ordered list of stages, read from ``dvc.yaml``.

Stage B depends on stage A when one of B's ``deps`` paths equals, lies under or lies above one
of A's ``outs``/``metrics``/``plots`` paths (the rule DVC itself applies). The stages come back
in topological order, ties broken by their order in the file, so a stage added to ``dvc.yaml``
(``evaluate``, ``tune``, ``interpret`` ...) joins the Prefect flow without code changes.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

OUTPUT_KEYS = ("outs", "metrics", "plots")


@dataclass(frozen=True)
class Stage:
    """One ``dvc.yaml`` stage: its name and the paths (relative to the project) it touches."""

    name: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]


def _norm(wdir: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(wdir, path))


def _paths(entries: Any, where: str) -> list[str]:
    """Paths of a ``deps``/``outs`` list whose items are strings or ``{path: options}``."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ValueError(f"{where} must be a list, got {type(entries).__name__}")
    paths = []
    for item in entries:
        if isinstance(item, str):
            paths.append(item)
        elif isinstance(item, Mapping) and len(item) == 1:
            paths.append(str(next(iter(item))))
        else:
            raise ValueError(f"{where}: entries must be a path or {{path: options}}, got {item!r}")
    return paths


def read_stages(dvc_yaml: str | Path) -> list[Stage]:
    """Parse the stages of a ``dvc.yaml`` file, in file order.

    Args:
        dvc_yaml: path of the file.

    Returns:
        One :class:`Stage` per entry of ``stages``, paths normalised and made relative to the
        file's folder (``wdir`` applied).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a DVC pipeline this reader understands (``matrix`` stages
            are not supported; a ``foreach`` stage gives one stage ``name@key`` per item, its
            ``${...}`` looked up in ``params.yaml`` beside the file).
    """
    path = Path(dvc_yaml)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dvc.yaml")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    stages = raw.get("stages") if isinstance(raw, Mapping) else None
    if not isinstance(stages, Mapping) or not stages:
        raise ValueError(f"{path}: no 'stages' mapping")
    out = []
    for name, body in stages.items():
        if not isinstance(body, Mapping):
            raise ValueError(f"{path}: stage {name!r} must be a mapping")
        if "matrix" in body:
            raise ValueError(f"{path}: stage {name!r}: matrix stages are not supported")
        if "foreach" in body:
            for key, item in _foreach_items(path, name, body["foreach"]):
                stage = _substitute(body.get("do") or {}, key, item, f"{name}@{key}")
                out.append(_stage(f"{name}@{key}", stage))
        else:
            out.append(_stage(str(name), body))
    return out


def _stage(name: str, body: Mapping[str, Any]) -> Stage:
    wdir = str(body.get("wdir", "."))
    deps = [_norm(wdir, p) for p in _paths(body.get("deps"), f"{name}.deps")]
    outs = [_norm(wdir, p) for key in OUTPUT_KEYS for p in _paths(body.get(key), f"{name}.{key}")]
    return Stage(name=name, deps=tuple(deps), outs=tuple(outs))


_REF = re.compile(r"\$\{\s*([\w.-]+)\s*\}")


def _foreach_items(path: Path, name: str, spec: Any) -> list[tuple[str, Any]]:
    """The ``(key, item)`` pairs of a ``foreach`` stage, as DVC names them ``name@key``: a
    mapping's keys, or a list's values (scalars); ``${a.b}`` is looked up in ``params.yaml``
    beside ``dvc.yaml``."""
    if isinstance(spec, str):
        ref = _REF.fullmatch(spec.strip())
        if ref is None:
            raise ValueError(
                f"{path}: stage {name!r}: foreach must be a list, a mapping or ${{...}}"
            )
        params_file = path.parent / "params.yaml"
        params = (
            yaml.safe_load(params_file.read_text(encoding="utf-8")) if params_file.is_file() else {}
        )
        spec = _lookup(params or {}, ref.group(1), f"{path}: stage {name!r}")
    if isinstance(spec, Mapping):
        return [(str(key), value) for key, value in spec.items()]
    if isinstance(spec, list):
        return [(str(value), value) for value in spec]
    raise ValueError(f"{path}: stage {name!r}: foreach must be a list or a mapping, got {spec!r}")


def _lookup(data: Any, dotted: str, where: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, Mapping) or part not in data:
            raise ValueError(f"{where}: ${{{dotted}}} is not defined")
        data = data[part]
    return data


def _substitute(value: Any, key: str, item: Any, where: str) -> Any:
    """``value`` with ``${key}``, ``${item}`` and ``${item.a.b}`` replaced in every string, mapping
    keys included (``metrics: [{metrics/${item}.json: {cache: false}}]``)."""
    if isinstance(value, Mapping):
        return {
            _substitute(k, key, item, where): _substitute(v, key, item, where)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute(v, key, item, where) for v in value]
    if not isinstance(value, str):
        return value

    def resolve(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "key":
            return key
        if name == "item" or name.startswith("item."):
            found = _lookup({"item": item}, name, where)
            return str(found)
        return match.group(0)  # a params reference DVC resolves itself; no path here uses one

    return _REF.sub(resolve, value)


def _overlaps(a: str, b: str) -> bool:
    """True when path ``a`` equals, lies under or lies above path ``b``."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def upstream(stages: Sequence[Stage]) -> dict[str, list[str]]:
    """For each stage, the stages whose outputs it depends on (file order).

    Raises:
        ValueError: two stages declare overlapping outputs.
    """
    for i, a in enumerate(stages):
        for b in stages[i + 1 :]:
            clash = [(x, y) for x in a.outs for y in b.outs if _overlaps(x, y)]
            if clash:
                raise ValueError(
                    f"stages {a.name!r} and {b.name!r} both output {clash[0][0]!r}/{clash[0][1]!r}"
                )
    return {
        stage.name: [
            other.name
            for other in stages
            if other.name != stage.name
            and any(_overlaps(dep, out) for dep in stage.deps for out in other.outs)
        ]
        for stage in stages
    }


def stage_order(dvc_yaml: str | Path) -> list[str]:
    """The stage names of ``dvc_yaml`` in DAG order, stable by file order.

    Kahn's algorithm that always takes the earliest ready stage in file order, so independent
    stages keep the order in which ``dvc.yaml`` lists them.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is malformed or the stages form a cycle (named in the message).
    """
    stages = read_stages(dvc_yaml)
    needs = {name: set(ups) for name, ups in upstream(stages).items()}
    order: list[str] = []
    pending = [s.name for s in stages]
    while pending:
        ready = next((name for name in pending if not needs[name] - set(order)), None)
        if ready is None:
            raise ValueError(f"{dvc_yaml}: dependency cycle among stages {pending}")
        order.append(ready)
        pending.remove(ready)
    return order
