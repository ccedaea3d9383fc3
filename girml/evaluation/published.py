"""Published all-in-one results, shown beside the measured protocol scores and never ranked.

The table ``published.csv`` (shipped with the package) holds one row per (protocol, set,
model): the PSNR/SSIM a paper printed, the metric convention its code uses (a key of
:data:`girml.metrics.conventions.CONVENTIONS`), the paper the number comes from, the table that
printed it (``reported_in``: a later paper's table when a method's own paper has no such
experiment, e.g. AirNet's five-task numbers come from IDR's retraining) and where it was read
(``read_at``: the repository file at its commit). A cell no source gives stays empty: it is not
guessed. Every number was read off the source named in its row.

:func:`study_protocols` puts these rows after the measured rows of each protocol
(``metrics/protocols/<protocol>.json``, written by the protocol stage) for ``metrics/study.json``
and the study page. The leaderboard, its ranking and its bootstrap intervals are built from
per-image rows only (:mod:`girml.evaluation.leaderboard`); nothing here reaches them.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from girml.metrics.conventions import CONVENTIONS

PUBLISHED_CSV = Path(__file__).with_name("published.csv")
COLUMNS = (
    "protocol",
    "set",
    "method",
    "model",
    "psnr",
    "ssim",
    "convention",
    "paper",
    "reported_in",
    "read_at",
    "note",
)


@dataclass(frozen=True)
class PublishedResult:
    """One published cell: a model's PSNR/SSIM on one set of a protocol, with its source.

    Attributes:
        protocol: e.g. ``allinone-3``.
        set: e.g. ``rain100l``.
        method: the method's name (``InstructIR``).
        model: the model as the table names it (``InstructIR-3D``).
        psnr: dB, or None where no source gives it.
        ssim: in [0, 1], or None.
        convention: the metric convention of the code behind the number.
        paper: the method's paper.
        reported_in: the paper and table that printed the number ("" without a number).
        read_at: where the number was read (a repository file at a commit).
        note: anything the number needs said (an ambiguity, a disagreeing source).
    """

    protocol: str
    set: str
    method: str
    model: str
    psnr: float | None
    ssim: float | None
    convention: str
    paper: str
    reported_in: str
    read_at: str
    note: str


def _number(text: str, column: str, low: float, high: float, where: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {column} = {text!r} is not a number") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{where}: {column} = {value} is outside [{low}, {high}]")
    return value


def _row(raw: Mapping[str, str], where: str) -> PublishedResult:
    for column in ("protocol", "set", "method", "model", "paper", "read_at"):
        if not raw[column]:
            raise ValueError(f"{where}: {column} is empty")
    if raw["convention"] not in CONVENTIONS:
        raise ValueError(
            f"{where}: convention {raw['convention']!r} is not one of {sorted(CONVENTIONS)}"
        )
    psnr = _number(raw["psnr"], "psnr", 0.0, 100.0, where)
    ssim = _number(raw["ssim"], "ssim", 0.0, 1.0, where)
    if (psnr is not None or ssim is not None) and not raw["reported_in"]:
        raise ValueError(f"{where}: a published number needs reported_in (the table it is from)")
    return PublishedResult(**{**raw, "psnr": psnr, "ssim": ssim})


def load_published(path: Path | None = None) -> tuple[PublishedResult, ...]:
    """The published table, validated.

    Args:
        path: a CSV with the columns :data:`COLUMNS` (default: the shipped table).

    Raises:
        FileNotFoundError: no file (e.g. a package installed without its package data).
        ValueError: other columns, an empty key, a bad number, an unknown convention or a
            repeated (protocol, set, model); the message names the file and line.
    """
    path = Path(path or PUBLISHED_CSV)
    if not path.is_file():
        raise FileNotFoundError(f"published results table {path} not found")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns must be {', '.join(COLUMNS)}")
        rows, seen = [], {}
        for line, raw in enumerate(reader, start=2):
            row = _row(raw, f"{path}:{line}")
            key = (row.protocol, row.set, row.model)
            if key in seen:
                raise ValueError(f"{path}:{line}: {key} repeats line {seen[key]}")
            seen[key] = line
            rows.append(row)
    return tuple(rows)


def read_measured(directory: Path) -> dict[str, dict[str, Any]]:
    """The protocol stage's results, ``<directory>/<protocol>.json``, by protocol name.

    Each file: ``{"protocol", "convention", "sets": {set: {"n", "methods": {method: {"psnr",
    "ssim", "n"}}}}}`` (scores may be null or NaN: shown as not measured); other keys (the
    ``no_reference`` rows, errors) are not shown here. A missing directory gives ``{}`` (no
    protocol was run).

    Raises:
        ValueError: a file that is not valid JSON or lacks that layout (the message names it).
    """
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(directory).glob("*.json")) if Path(directory).is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            name, sets = data["protocol"], data["sets"]
            for stats in sets.values():
                for scores in stats["methods"].values():
                    for key in ("psnr", "ssim"):  # a number, or null where nothing was scored
                        if scores[key] is not None and not isinstance(scores[key], int | float):
                            raise TypeError(f"{key} = {scores[key]!r} is not a number")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"{path}: not a protocol result ({type(exc).__name__}: {exc})"
            ) from None
        out[str(name)] = {"convention": data.get("convention"), "sets": sets, "source": str(path)}
    return out


def _score(value: float | None) -> float | None:
    """A JSON score: rounded to 6 decimals, None when missing or not finite."""
    if value is None or not math.isfinite(float(value)):
        return None
    return round(float(value), 6)


def protocol_tables(
    measured: Mapping[str, Mapping[str, Any]], published: Sequence[PublishedResult]
) -> dict[str, dict[str, Any]]:
    """Per protocol: its sets and its rows, measured first, then published (marked so).

    Returns:
        ``{protocol: {"convention", "sets": [...], "rows": [...]}}``, protocols sorted. A
        measured row is ``{"method", "published": False, "source", "sets": {set: {"psnr",
        "ssim", "n"}}}``; a published row is ``{"method", "model", "published": True, "paper",
        "convention", "sets": {set: {"psnr", "ssim", "reported_in", "read_at", "note"}}, "sources":
        [{"reported_in", "read_at"}] (the distinct ones), "notes": ["<sets>: <note>"]}`` with None
        where the source gives no number.
    """
    tables: dict[str, dict[str, Any]] = {}
    for protocol in sorted({*measured, *(row.protocol for row in published)}):
        mine = measured.get(protocol, {})
        sets = list(mine.get("sets", {}))
        rows: dict[str, dict[str, Any]] = {}
        for set_name, stats in mine.get("sets", {}).items():
            for method, scores in stats["methods"].items():
                row = rows.setdefault(
                    method,
                    {"method": method, "published": False, "source": mine["source"], "sets": {}},
                )
                row["sets"][set_name] = {
                    "psnr": _score(scores["psnr"]),
                    "ssim": _score(scores["ssim"]),
                    "n": int(scores.get("n", stats.get("n", 0))),
                }
        by_model: dict[str, dict[str, Any]] = {}
        for cell in (row for row in published if row.protocol == protocol):
            if cell.set not in sets:
                sets.append(cell.set)
            entry = by_model.setdefault(
                cell.model,
                {
                    "method": cell.method,
                    "model": cell.model,
                    "published": True,
                    "paper": cell.paper,
                    "convention": cell.convention,
                    "sets": {},
                },
            )
            entry["sets"][cell.set] = {
                "psnr": cell.psnr,
                "ssim": cell.ssim,
                "reported_in": cell.reported_in,
                "read_at": cell.read_at,
                "note": cell.note,
            }
        for entry in by_model.values():
            cells = entry["sets"].values()
            entry["sources"] = [
                {"reported_in": r, "read_at": a}
                for r, a in dict.fromkeys((c["reported_in"], c["read_at"]) for c in cells)
            ]
            by_note: dict[str, list[str]] = {}
            for set_name, cell in entry["sets"].items():
                if cell["note"]:
                    by_note.setdefault(cell["note"], []).append(set_name)
            entry["notes"] = [f"{', '.join(names)}: {note}" for note, names in by_note.items()]
        tables[protocol] = {
            "convention": mine.get("convention"),
            "sets": sets,
            "rows": [*rows.values(), *by_model.values()],
        }
    return tables


def study_protocols(measured_dir: Path, published_csv: Path | None = None) -> dict[str, Any]:
    """:func:`protocol_tables` of the measured results in ``measured_dir`` (if any) and the
    published table (default :data:`PUBLISHED_CSV`)."""
    return protocol_tables(read_measured(measured_dir), load_published(published_csv))
