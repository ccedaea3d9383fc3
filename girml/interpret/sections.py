"""A report section as plain data: its numbers and its content blocks in page order.

A :class:`Section` holds its numbers (``data``, written to ``interpretation.json`` under the
section's key) and its blocks (:class:`Paragraph`, :class:`Unavailable`, :class:`Figure`,
:class:`Table`), which :mod:`girml.interpret.render` turns into HTML. Nothing here writes HTML.
The six sections are built by ``sections_<key>.py``: :mod:`.sections_features`,
:mod:`.sections_lam`, :mod:`.sections_sensitivity`, :mod:`.sections_comparisons`,
:mod:`.sections_generalization` and :mod:`.sections_cases`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text."""

    kind: ClassVar[str] = "paragraph"
    text: str


@dataclass(frozen=True)
class Unavailable:
    """Why a section (or part of it) could not be computed."""

    kind: ClassVar[str] = "unavailable"
    reason: str


@dataclass(frozen=True)
class Figure:
    """A PNG figure (written to ``figures/<name>`` and embedded in the page) and its caption."""

    kind: ClassVar[str] = "figure"
    name: str
    png: bytes
    caption: str


@dataclass(frozen=True)
class Table:
    """A table of raw values (formatted for display by :func:`format_value`)."""

    kind: ClassVar[str] = "table"
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]


Block = Paragraph | Unavailable | Figure | Table


@dataclass
class Section:
    """One report section: its anchor, title, content blocks in page order and its numbers."""

    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def figures(self) -> dict[str, bytes]:
        """The section's figures: file name -> PNG bytes."""
        return {b.name: b.png for b in self.blocks if isinstance(b, Figure)}

    def para(self, text: str) -> None:
        self.blocks.append(Paragraph(text))

    def unavailable(self, reason: str) -> None:
        self.data["available"] = False
        self.data["reason"] = reason
        self.blocks.append(Unavailable(reason))

    def figure(self, name: str, png: bytes, caption: str) -> None:
        self.blocks.append(Figure(name, png, caption))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.blocks.append(Table(header, rows))


def format_value(value: Any) -> str:
    """Display text of a value: floats with 3 decimals, None and non-finite floats as ``-``,
    booleans in lower case, lists joined by ``; ``."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.3f}"
    if isinstance(value, list | tuple):
        return "; ".join(format_value(v) for v in value)
    return str(value)
