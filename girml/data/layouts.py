"""How a test set's files lie: the folders and file names of each public set, matched by name.

A :class:`Layout` is a list of :class:`Variant` (the set's usual layout first, then the
``input/`` + ``target/`` layout of the AirNet/PromptIR test harnesses, and so on). A variant is a
regular expression over a file's path relative to the set's root folder, with, for a paired set,
the ground truth's path written with the expression's groups (``norain-{n}.png`` for
``rainy/rain-(?P<n>\\d+).png``). :func:`match_layout` finds the root: the set may sit anywhere in
an archive or a folder (``Rain100L/``, ``rain100L_test/Rain100L/``), so every folder is tried,
the preferred names first (``eval15`` before ``our485``), then the shallowest.

Pure functions over file names: nothing is read here (:mod:`girml.data.testsets` loads).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

Kind = Literal["pairs", "clean", "real"]
# image suffixes a layout accepts where a set's files may come in several types
IMAGE_EXT = r"(?:png|jpe?g|bmp|tiff?|webp)"


class LayoutError(ValueError):
    """The files match a layout only in part (an input without its ground truth)."""


@dataclass(frozen=True)
class Variant:
    """One way a set's files can lie under its root folder.

    Attributes:
        pattern: regular expression matched (whole, any case) against each file's path relative
            to the root, with named groups.
        id: the image's id, a template of the groups (``"{scene}-{frame}"``).
        targets: for a paired set, the ground truth's path relative to the root, as templates
            of the groups; the first that exists is taken. Empty for a set of lone images.
        describe: the layout in words, for messages (``rainy/rain-NNN.png + norain-NNN.png``).
    """

    pattern: str
    describe: str
    id: str = "{id}"
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layout:
    """A set's accepted layouts and what kind of set it is.

    Attributes:
        kind: ``pairs`` (degraded input and ground truth), ``clean`` (ground truth alone: a
            protocol makes the inputs) or ``real`` (degraded photos without ground truth).
        variants: the accepted layouts, in order of preference.
        prefer: a root folder whose name matches this (any case) is tried first.
    """

    kind: Kind
    variants: tuple[Variant, ...]
    prefer: str = ""


@dataclass(frozen=True)
class Matched:
    """One image of a set: its id and its files' names (as the source lists them).

    ``lq`` is None for a clean set's image, ``gt`` None for a real photo.
    """

    id: str
    lq: str | None
    gt: str | None


@dataclass(frozen=True)
class LayoutMatch:
    """Where a layout matched: the root folder (``""`` for the source's own), the variant and
    the images, sorted by id."""

    root: str
    variant: Variant
    images: list[Matched] = field(default_factory=list)


def _safe_id(raw: str) -> str:
    """An id usable as a file name: ``/`` becomes ``-``, other odd characters ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw.replace("/", "-"))


def _roots(names: Sequence[str], prefer: str) -> list[str]:
    """Every folder holding a file of ``names`` (and the top, ``""``), preferred names first,
    then by depth and name."""
    found = {""}
    for name in names:
        found.update(str(p) for p in PurePosixPath(name).parents if str(p) != ".")
    preferred = re.compile(prefer, re.IGNORECASE) if prefer else None

    def order(root: str) -> tuple[bool, int, str]:
        hit = preferred is not None and bool(preferred.fullmatch(PurePosixPath(root).name))
        return (not hit, root.count("/") + bool(root), root)

    return sorted(found, key=order)


def _under(names: Sequence[str], root: str) -> dict[str, str]:
    """``{path relative to root: name}`` for the names under ``root``."""
    if not root:
        return {name: name for name in names}
    prefix = root + "/"
    return {name[len(prefix) :]: name for name in names if name.startswith(prefix)}


def _match_variant(files: dict[str, str], variant: Variant, kind: Kind) -> list[Matched]:
    """The images ``variant`` finds in ``files`` (relative path -> name); [] for none.

    Raises:
        LayoutError: an input matches but none of its ground-truth paths exists.
    """
    pattern = re.compile(variant.pattern, re.IGNORECASE)
    by_lower = {rel.lower(): rel for rel in files}
    images, orphans = [], []
    for rel in sorted(files):
        m = pattern.fullmatch(rel)
        if m is None:
            continue
        groups = m.groupdict()
        image_id = _safe_id(variant.id.format(**groups))
        if kind == "clean":
            images.append(Matched(image_id, None, files[rel]))
        elif kind == "real":
            images.append(Matched(image_id, files[rel], None))
        else:
            wanted = [t.format(**groups) for t in variant.targets]
            target = next((by_lower[w.lower()] for w in wanted if w.lower() in by_lower), None)
            if target is None:
                orphans.append(f"{rel} (no {' or '.join(wanted)})")
            else:
                images.append(Matched(image_id, files[rel], files[target]))
    if images and orphans:
        shown = "; ".join(orphans[:3]) + ("; ..." if len(orphans) > 3 else "")
        raise LayoutError(
            f"{len(orphans)} input(s) without ground truth in layout {variant.describe}: {shown}"
        )
    return images


def match_layout(names: Sequence[str], layout: Layout) -> LayoutMatch | None:
    """Find a set's images among a source's file names.

    Args:
        names: the files' POSIX paths inside the source (folder, archive, S3 prefix).
        layout: the set's layout.

    Returns:
        The first root folder and variant that hold at least one image (roots in
        :func:`_roots` order, variants in the layout's order), or None when nothing matches.

    Raises:
        LayoutError: the matching variant finds inputs without their ground truth, or two
            images that would take the same id.
    """
    for root in _roots(names, layout.prefer):
        files = _under(names, root)
        for variant in layout.variants:
            images = _match_variant(files, variant, layout.kind)
            if images:
                ids = [image.id for image in images]
                twice = sorted({i for i in ids if ids.count(i) > 1})
                if twice:
                    raise LayoutError(f"images with the same id {twice[:5]} under {root or '.'}")
                return LayoutMatch(root, variant, sorted(images, key=lambda im: im.id))
    return None


def _lone(pattern: str, describe: str, id_: str = "{id}") -> Variant:
    return Variant(pattern=pattern, describe=describe, id=id_)


# the test harnesses' layout (AirNet, PromptIR, Restormer): input/X and target/X, same names
HARNESS = Variant(
    pattern=rf"input/(?P<file>(?P<id>[^/]+)\.{IMAGE_EXT})",
    describe="input/<name> + target/<name>",
    targets=("target/{file}",),
)
LQ_GT = Variant(
    pattern=rf"lq/(?P<file>(?P<id>[^/]+)\.{IMAGE_EXT})",
    describe="lq/<name> + gt/<name>",
    targets=("gt/{file}",),
)
# SOTS: <id>_<A>_<beta>.jpg, one or several per ground truth <id>.png (.jpg in some copies)
_SOTS_TARGETS = ("{dir}/{gid}.png", "{dir}/{gid}.jpg")
_SOTS_GT = tuple(t.replace("{dir}", d) for d in ("gt", "clear") for t in _SOTS_TARGETS)

LAYOUTS: dict[str, Layout] = {
    "cbsd68": Layout(
        "clean",
        (_lone(rf"(?P<id>[^/]+)\.{IMAGE_EXT}", "CBSD68/<id>.png (68 colour BSDS images)"),),
        prefer=r"cbsd68|original_png",
    ),
    "kodak24": Layout(
        "clean", (_lone(r"(?P<id>kodim\d\d)\.png", "Kodak24/kodimNN.png (kodim01..kodim24)"),)
    ),
    "mcmaster": Layout(
        "clean",
        (_lone(rf"(?P<id>\d+)\.{IMAGE_EXT}", "McMaster/N.tif (1..18; .png also read)"),),
        prefer=r"mcmaster|mcm",
    ),
    "urban100": Layout(
        "clean",
        (
            _lone(r"(?P<id>img_?\d{3})\.png", "Urban100/img_NNN.png (the HR images)"),
            _lone(
                r"(?P<id>img_\d{3})_SRF_\d+_HR\.png", "Urban100/image_SRF_N/img_NNN_SRF_N_HR.png"
            ),
        ),
        prefer=r"urban100",
    ),
    "rain100l": Layout(
        "pairs",
        (
            Variant(
                pattern=r"rainy/rain-(?P<n>\d+)\.png",
                describe="Rain100L/rainy/rain-NNN.png + Rain100L/norain-NNN.png",
                id="rain-{n}",
                targets=("norain-{n}.png", "norain/norain-{n}.png"),
            ),
            HARNESS,
        ),
        prefer=r"rain100l",
    ),
    "sots-outdoor": Layout(
        "pairs",
        (
            Variant(
                pattern=r"hazy/(?P<id>(?P<gid>\d+)_[^/]*)\.(?:jpg|png)",
                describe="SOTS/outdoor/hazy/<id>_<A>_<beta>.jpg + SOTS/outdoor/gt/<id>.png",
                targets=tuple(
                    t.replace("{dir}", d) for d in ("gt", "clear") for t in _SOTS_TARGETS
                ),
            ),
            Variant(
                pattern=r"input/(?P<id>(?P<gid>\d+)_[^/]*)\.(?:jpg|png)",
                describe="input/<id>_<A>_<beta>.jpg + target/<id>.png (AirNet/PromptIR)",
                targets=tuple(t.replace("{dir}", "target") for t in _SOTS_TARGETS),
            ),
            Variant(
                pattern=rf"IN/(?P<file>(?P<id>[^/]+)\.{IMAGE_EXT})",
                describe="IN/<name> + GT/<name> (InstructIR)",
                targets=("GT/{file}",),
            ),
        ),
        prefer=r"outdoor",
    ),
    "gopro": Layout(
        "pairs",
        (
            Variant(
                pattern=r"(?P<scene>[^/]+)/blur/(?P<frame>[^/]+)\.png",
                describe="GOPRO_Large/test/<scene>/blur/<frame>.png + <scene>/sharp/<frame>.png",
                id="{scene}-{frame}",
                targets=("{scene}/sharp/{frame}.png",),
            ),
            HARNESS,
        ),
        prefer=r"test",
    ),
    "lol-v1": Layout(
        "pairs",
        (
            Variant(
                pattern=rf"low/(?P<file>(?P<id>[^/]+)\.{IMAGE_EXT})",
                describe="LOLdataset/eval15/low/<n>.png + eval15/high/<n>.png",
                targets=("high/{file}",),
            ),
            HARNESS,
        ),
        prefer=r"eval15",
    ),
    "real-photos": Layout(
        "real", (_lone(rf"(?P<id>.+)\.{IMAGE_EXT}", "any image files, in any folders"),)
    ),
    # the layouts of a set of your own (protocols.sets.<name>.layout)
    "clean": Layout(
        "clean", (_lone(rf"(?P<id>.+)\.{IMAGE_EXT}", "clean image files, in any folders"),)
    ),
    "pairs": Layout("pairs", (HARNESS, LQ_GT)),
    "real": Layout(
        "real", (_lone(rf"(?P<id>.+)\.{IMAGE_EXT}", "any image files, in any folders"),)
    ),
}
