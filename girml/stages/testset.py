"""Stage ``testset@<name>``: fetch one test set of ``protocols.sets`` into data/protocols/<name>/.

The set comes through its source (``urls`` pinned by sha256 at the first download, ``folder`` or
``s3``), is found in its usual layout and written decoded, with ``set.json``
(:func:`girml.data.testsets.prepare_set`); DVC caches it, so each set is fetched once for every
protocol that scores on it.
"""

from __future__ import annotations

from pathlib import Path

from girml.config import TestSetConfig
from girml.core.paths import PROTOCOL_DATA_DIR
from girml.data.testsets import TestSetError, prepare_set
from girml.stages.contract import Echo, StageFailed, StageParams


def set_of(reads: StageParams, name: str) -> TestSetConfig:
    """``protocols.sets.<name>``, or :class:`StageFailed` naming the file and the set."""
    hint = "docs/protocols.md lists the sets and where to get them"
    return reads.entry("protocols.sets", name, "set", hint)


def run(params: Path, name: str, echo: Echo) -> None:
    """Fetch set ``name`` and write data/protocols/<name>/ (replaced only on success)."""
    reads = StageParams(params, "testset", key=name)
    cfg = set_of(reads, name)
    out = PROTOCOL_DATA_DIR / name
    try:
        prepared = prepare_set(name, cfg, out)
    except TestSetError as exc:
        raise StageFailed(str(exc)) from None
    echo(f"test set {name}: {len(prepared.images)} images ({prepared.kind}); wrote {out}/")
