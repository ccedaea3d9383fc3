"""The field's test sets: what each one is, where to get it, and fetching it in a fixed form.

:data:`CATALOG` describes each set girml knows by name (size, licence, where it is published,
its layout: :data:`girml.data.layouts.LAYOUTS`). :func:`prepare_set` (DVC stage
``testset@<name>``) lists a set's source (``urls`` pinned by sha256, ``folder`` or ``s3``, through
:mod:`girml.data.sources`), finds its files in their usual layout and writes them, decoded, as
``<out>/{lq,gt}/<id>.png`` with ``set.json`` listing every image and its file in the source. A
set that is missing, or lies in no known layout, raises :class:`TestSetError` saying how to get
it.
:func:`read_prepared` reads such a folder back for the protocols.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from girml.config import TestSetConfig
from girml.core.imageio import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    staged_dir,
    write_png,
    write_text,
)
from girml.core.urls import mask_url
from girml.data.archives import DEFAULT_MAX_MEMBER_BYTES
from girml.data.layouts import LAYOUTS, Kind, LayoutError, match_layout
from girml.data.sources import Rejection, SourceError, SourceItem, list_source

log = logging.getLogger(__name__)

SET_FILE = "set.json"
# Bumped when the prepared form changes; read_prepared refuses another.
FORMAT = 1


@dataclass(frozen=True)
class SetInfo:
    """A public test set: what it holds and where it is published.

    Attributes:
        title: its usual name (``Rain100L``).
        images: how many images (pairs) the published set holds.
        content: what they are, with their size.
        licence: the terms it is published under, as its page states them.
        where: the page to download it from.
        folder: the folder name it unpacks to, for the messages' example.
    """

    title: str
    images: int | None
    content: str
    licence: str
    where: str
    folder: str


CATALOG: dict[str, SetInfo] = {
    "cbsd68": SetInfo(
        "CBSD68",
        68,
        "colour BSDS500 test photos, 481x321",
        "BSDS: free for non-commercial research and education",
        "https://github.com/clausmichele/CBSD68-dataset",
        "CBSD68",
    ),
    "kodak24": SetInfo(
        "Kodak24",
        24,
        "Kodak PhotoCD photos, 768x512",
        "released by Kodak for unrestricted use",
        "https://r0k.us/graphics/kodak/",
        "Kodak24",
    ),
    "mcmaster": SetInfo(
        "McMaster",
        18,
        "colour crops, 500x500 (Zhang et al., JEI 2011)",
        "research use (no licence stated)",
        "https://www4.comp.polyu.edu.hk/~cslzhang/CDM_Dataset.htm",
        "McMaster",
    ),
    "urban100": SetInfo(
        "Urban100",
        100,
        "city photos, ~1024x768 (Huang et al., CVPR 2015)",
        "research use (Flickr images under their own terms)",
        "https://github.com/jbhuang0604/SelfExSR",
        "Urban100",
    ),
    "rain100l": SetInfo(
        "Rain100L",
        100,
        "synthetic light rain pairs, 481x321 (Yang et al., CVPR 2017)",
        "research use (no licence stated)",
        "https://github.com/XLearning-SCU/2022-CVPR-AirNet#dataset (Google Drive)",
        "Rain100L",
    ),
    "sots-outdoor": SetInfo(
        "SOTS-outdoor",
        500,
        "synthetic outdoor haze pairs, ~550x413 (RESIDE, Li et al., TIP 2019)",
        "RESIDE: non-commercial research use",
        "https://sites.google.com/view/reside-dehaze-datasets/reside-v0",
        "SOTS/outdoor",
    ),
    "gopro": SetInfo(
        "GoPro (test)",
        1111,
        "motion-blur pairs from 11 videos, 1280x720 (Nah et al., CVPR 2017)",
        "CC BY 4.0",
        "https://seungjunnah.github.io/Datasets/gopro",
        "GOPRO_Large/test",
    ),
    "lol-v1": SetInfo(
        "LOL-v1 (eval15)",
        15,
        "real low-light / normal-light pairs, 600x400 (Wei et al., BMVC 2018)",
        "research use (no licence stated)",
        "https://daooshee.github.io/BMVC2018website/",
        "LOLdataset/eval15",
    ),
    "real-photos": SetInfo(
        "your real photos",
        None,
        "real degraded photos without ground truth (no-reference metrics)",
        "yours",
        "your own folder",
        "real",
    ),
}


class TestSetError(RuntimeError):
    """A test set cannot be fetched or read; the message says how to get it."""

    __test__ = False


@dataclass(frozen=True)
class PreparedImage:
    """One image of a prepared set: its id and files (``lq`` None for a clean set's image, ``gt``
    None for a real photo)."""

    id: str
    lq: Path | None
    gt: Path | None


@dataclass(frozen=True)
class PreparedSet:
    """A set as :func:`prepare_set` wrote it."""

    name: str
    kind: Kind
    images: list[PreparedImage]


def how_to_get(name: str, cfg: TestSetConfig | None = None) -> str:
    """Where to get set ``name`` and how to point ``params.yaml`` at it (for messages)."""
    layout = LAYOUTS.get(cfg.layout if cfg is not None and cfg.layout else name)
    shown = " or ".join(v.describe for v in layout.variants) if layout else "its layout"
    info = CATALOG.get(name)
    where = f"Get {info.title} from {info.where} ({info.licence}); " if info else ""
    folder = info.folder if info else name
    return (
        f"{where}give it as protocols.sets.{name}.source in params.yaml: a folder (e.g. "
        f"{{type: folder, path: /data/{folder}}}), an s3 prefix or urls of its archive, with the "
        f"files laid out as {shown} (anywhere inside). See docs/protocols.md."
    )


def _listed(name: str, cfg: TestSetConfig, max_member_bytes: int) -> dict[str, SourceItem]:
    """The source's items by name; TestSetError when it cannot be listed or a file failed."""
    try:
        entries = list_source(cfg.source, max_member_bytes=max_member_bytes)
    except SourceError as exc:
        raise TestSetError(f"test set {name}: {exc}. {how_to_get(name, cfg)}") from None
    failed = [e for e in entries if isinstance(e, Rejection)]
    if failed:
        shown = "; ".join(f"{mask_url(e.origin)}: {e.reason}" for e in failed[:3])
        raise TestSetError(
            f"test set {name}: {len(failed)} file(s) could not be fetched ({shown}). "
            "A test set is fixed: every file must load. " + how_to_get(name, cfg)
        )
    items: dict[str, SourceItem] = {}
    for entry in entries:
        if isinstance(entry, SourceItem):
            if entry.name in items:
                raise TestSetError(f"test set {name}: two files named {entry.name!r} in its source")
            items[entry.name] = entry
    return items


def _load(item: SourceItem, name: str) -> np.ndarray:
    try:
        return item.load(max_pixels=DEFAULT_MAX_PIXELS)
    except ImageReadError as exc:
        raise TestSetError(f"test set {name}: {exc}") from None


def prepare_set(
    name: str,
    cfg: TestSetConfig,
    out_dir: Path,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
) -> PreparedSet:
    """Fetch test set ``name`` from its source and write it in the prepared form.

    Args:
        name: the set (``protocols.sets`` key): a :data:`CATALOG` name or one with a layout.
        cfg: its source and layout.
        out_dir: replaced, only when everything succeeded, by ``{lq,gt}/<id>.png`` and
            :data:`SET_FILE`.
        max_member_bytes: largest archive member extracted.

    Returns:
        The prepared set (as :func:`read_prepared` would read it).

    Raises:
        TestSetError: the source cannot be listed, a file fails to download or decode, or no
            file lies in the set's layout; the message says where to get the set.
    """
    layout = LAYOUTS[cfg.layout or name]
    items = _listed(name, cfg, max_member_bytes)
    try:
        match = match_layout(sorted(items), layout)
    except LayoutError as exc:
        raise TestSetError(f"test set {name}: {exc}") from None
    if match is None:
        raise TestSetError(
            f"test set {name}: none of the {len(items)} image file(s) of its {cfg.source.type} "
            f"source lies in its layout. {how_to_get(name, cfg)}"
        )
    info = CATALOG.get(name)
    if info is not None and info.images is not None and len(match.images) != info.images:
        log.warning(
            "test set %s: %d images, the published %s has %d",
            name,
            len(match.images),
            info.title,
            info.images,
        )
    records = []
    with staged_dir(out_dir) as staging:
        for image in match.images:
            record: dict[str, str | None] = {"id": image.id, "lq": None, "gt": None}
            for role, file in (("lq", image.lq), ("gt", image.gt)):
                if file is not None:
                    write_png(staging / role / f"{image.id}.png", _load(items[file], name))
                    record[role] = f"{role}/{image.id}.png"
                    record[f"{role}_file"] = file  # its path inside the source
            records.append(record)
        manifest = {
            "format": FORMAT,
            "set": name,
            "kind": layout.kind,
            "layout": match.variant.describe,
            "root": match.root,
            "source": cfg.source.type,
            "published_images": info.images if info else None,
            "images": records,
        }
        write_text(staging / SET_FILE, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    log.info("test set %s: %d images (%s) in %s", name, len(records), layout.kind, out_dir)
    return read_prepared(out_dir)


def read_prepared(set_dir: Path) -> PreparedSet:
    """A set written by :func:`prepare_set`.

    Raises:
        FileNotFoundError: no :data:`SET_FILE` in ``set_dir``.
        ValueError: the file is not a prepared set of this format (the message names it).
    """
    path = Path(set_dir) / SET_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `girml testset {Path(set_dir).name}`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        images = [
            PreparedImage(
                str(rec["id"]),
                Path(set_dir) / rec["lq"] if rec.get("lq") else None,
                Path(set_dir) / rec["gt"] if rec.get("gt") else None,
            )
            for rec in data["images"]
        ]
        kind = data["kind"]
        if kind not in ("pairs", "clean", "real"):
            raise ValueError(f"kind {kind!r}")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a prepared test set ({exc})") from None
    return PreparedSet(str(data["set"]), kind, images)
