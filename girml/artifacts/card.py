"""A release's ``MODEL_CARD.md`` (:mod:`girml.artifacts.release`), rendered from a jinja2 template.

The card follows Hugging Face's model-card layout (https://huggingface.co/docs/hub/model-cards):
YAML metadata first (:func:`front_matter`: licence, tags, datasets, metrics and a
``model-index`` of the suite means), then intended and out-of-scope use, how to get started,
the training data and the commands that reproduce the model (:func:`reproduce_commands`), the
numbers (:mod:`.card_metrics`), the limits summarised per suite (:func:`suite_summaries`) with
what the training data does not cover (:class:`Coverage`), the citation, the licence, the photo
credits and, last, every known limit (:func:`known_limits`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

from girml.artifacts.card_metrics import CardMetrics, SuiteScore
from girml.config import UNNAMED_PROFILE, DegradationsConfig, held_categories

if TYPE_CHECKING:
    from girml.artifacts.real_photos import RealPhotos


def known_limits(metrics: CardMetrics, margin_db: float = 0.0) -> list[str]:
    """Where the model does worse than doing nothing or than a classical method, as sentences.

    Args:
        metrics: the card's numbers.
        margin_db: a loss smaller than this is not listed.
    """
    limits = []
    worse = [g for g in metrics.groups if g.vs_identity < -margin_db]
    for g in worse:
        limits.append(
            f"{g.suite}/{g.family}: the output is {-g.vs_identity:.2f} dB below the degraded input "
            f"({g.psnr_y:.2f} vs {g.input_psnr_y:.2f} dB PSNR-Y, {g.n} images)."
        )
    beaten = [g for g in metrics.groups if g.vs_best is not None and g.vs_best < -margin_db]
    for g in beaten:
        limits.append(
            f"{g.suite}/{g.family}: the classical `{g.best_name}` is {-g.vs_best:.2f} dB better "
            f"({g.best_psnr_y:.2f} vs {g.psnr_y:.2f} dB PSNR-Y)."
        )
    for key, value in metrics.harm.items():
        if key.startswith("harm_rate.") and value is not None and value > 0:
            suite = key.removeprefix("harm_rate.")
            limits.append(
                f"{suite}: {100 * value:.0f}% of the degraded images come out more than 0.1 dB "
                "(PSNR-Y) below their input."
            )
    return limits


def suite_summaries(metrics: CardMetrics) -> list[str]:
    """One sentence per suite: the mean gains, where the model loses and how often it harms.

    The short form of :func:`known_limits` (which lists every family) for the card's
    "Bias, risks and limitations".
    """
    lines = []
    for s in metrics.suites:
        groups = [g for g in metrics.groups if g.suite == s.suite]
        text = (
            f"**{s.suite}** ({s.families} families): {_num(s.vs_identity, 2, True)} dB over "
            "the degraded input"
        )
        if s.vs_best is not None:
            text += (
                f", {_num(s.vs_best, 2, True)} dB over the best classical method (`{s.best_name}`)"
            )
        text += " on average"
        below = [g for g in groups if g.vs_identity < 0]
        if below:
            worst = min(below, key=lambda g: g.vs_identity)
            text += (
                f"; below the input on {len(below)} of {len(groups)} families (worst "
                f"`{worst.family}`, {worst.vs_identity:+.2f} dB)"
            )
        beaten = [g for g in groups if g.vs_best is not None and g.vs_best < 0]
        if beaten:
            worst = min(beaten, key=lambda g: g.vs_best or 0.0)
            text += (
                f"; a classical method is better on {len(beaten)} (worst `{worst.family}`: "
                f"`{worst.best_name}` by {-(worst.vs_best or 0.0):.2f} dB)"
            )
        rate = metrics.harm.get(f"harm_rate.{s.suite}")
        if rate is not None and rate > 0:
            text += (
                f"; {100 * rate:.0f}% of its degraded images come out more than 0.1 dB below "
                "their input"
            )
        if not below and not beaten and not rate:
            text += "; better than the input and every classical method on every family"
        lines.append(text + ".")
    return lines


@dataclass(frozen=True)
class Coverage:
    """What the training data spans, for the card's fixed paragraph on what it does not."""

    trained_families: tuple[str, ...]
    held_out_families: tuple[str, ...]
    held_out_combinations: tuple[str, ...]
    unseen_content_category: str | None
    train_patch_size: int | None

    @classmethod
    def from_spec(
        cls,
        spec: DegradationsConfig,
        unseen_content_category: str | list[str] | None,
        train_patch_size: int | None,
    ) -> Coverage:
        held = set(spec.held_out.families)
        return cls(
            trained_families=tuple(f for f in spec.families if f not in held),
            held_out_families=tuple(spec.held_out.families),
            held_out_combinations=tuple("+".join(c) for c in spec.held_out.combinations),
            unseen_content_category=", ".join(held_categories(unseen_content_category)) or None,
            train_patch_size=train_patch_size,
        )


def _num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


LICENSE_ID = "apache-2.0"  # pyproject.toml's Apache-2.0; the LICENSE file at the root
LIBRARY = "girml"
# Hugging Face task tags of the degradation families the model was trained on
FAMILY_TAGS = {
    "noise": "denoising",
    "blur": "deblurring",
    "jpeg": "jpeg-artifact-removal",
    "haze": "dehazing",
    "lowlight": "low-light-image-enhancement",
    "rain": "deraining",
}
# What each photo set of :func:`girml.artifacts.provenance.photo_set` is, for the card
PHOTO_SETS = {
    "skimage.data": "the sample photos shipped inside scikit-image (`skimage/data`)",
    "sklearn.datasets.images": "the sample photos shipped inside scikit-learn",
    "folder": "photos from a local folder (`collect.sources: folder`)",
    "s3": "photos from an S3 bucket (`collect.sources: s3`)",
    "urls": "photos downloaded from sha256-pinned URLs (`collect.sources: urls`)",
}


def photo_set_description(name: str) -> str:
    """One phrase on what a photo set (a ``datasets`` entry of the card) holds."""
    if name.startswith("debian:"):
        return (
            f"wallpapers of the Debian/Ubuntu package `{name.removeprefix('debian:')}`, each "
            "pinned by sha256 in `girml/data/package_photos.csv`"
        )
    return PHOTO_SETS.get(name, f"photos of the `{name}` source")


def _suite_result(s: SuiteScore) -> dict[str, Any] | None:
    """A ``model-index`` result: one suite's mean PSNR-Y and SSIM-Y (None without numbers)."""
    values = [
        {"type": metric, "name": name, "value": round(value, digits)}
        for metric, name, value, digits in (
            ("psnr", "PSNR-Y (dB)", s.psnr_y, 2),
            ("ssim", "SSIM-Y", s.ssim_y, 4),
        )
        if math.isfinite(value)
    ]
    if not values:
        return None
    return {
        "task": {"type": "image-to-image", "name": "General image restoration"},
        "dataset": {
            "type": "girml-benchmark",
            "name": f"girml synthetic benchmark, suite {s.suite}",
            "config": s.suite,
        },
        "metrics": values,
    }


def front_matter(
    *, title: str, arch: str, metrics: CardMetrics, coverage: Coverage, photo_sets: list[str]
) -> str:
    """The card's YAML metadata block (between ``---`` lines), as the Hugging Face Hub reads it.

    Args:
        title: the model's name in ``model-index``.
        arch: ``model.type`` (a tag).
        metrics: the suite means become ``model-index`` results.
        coverage: the trained families become task tags (:data:`FAMILY_TAGS`).
        photo_sets: the ``datasets`` (:func:`girml.artifacts.provenance.photo_set` names).
    """
    tags = ["image-restoration", "general-image-restoration"]
    tags += [FAMILY_TAGS[f] for f in coverage.trained_families if f in FAMILY_TAGS]
    tags += [arch.lower(), "pytorch", "safetensors"]
    meta: dict[str, Any] = {
        "license": LICENSE_ID,
        "library_name": LIBRARY,
        "pipeline_tag": "image-to-image",
        "tags": list(dict.fromkeys(tags)),
    }
    if photo_sets:
        meta["datasets"] = list(photo_sets)
    meta["metrics"] = ["psnr", "ssim"]
    results = [r for r in (_suite_result(s) for s in metrics.suites) if r is not None]
    if results:
        meta["model-index"] = [{"name": title, "results": results}]
    body = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{body}---\n"


def _uses(metrics: CardMetrics, coverage: Coverage) -> dict[str, Any]:
    """The measured facts the card's out-of-scope list names."""
    suites = {s.suite: s for s in metrics.suites}
    return {
        "held_out": [*coverage.held_out_families, *coverage.held_out_combinations],
        "clean_psnr_y": metrics.harm.get("harm.clean_psnr_y.single-id"),
        "single_losses": [
            g.family for g in metrics.groups if g.suite == "single-id" and g.vs_identity < 0
        ],
        "unseen_content": suites.get("unseen-content"),
    }


def profile_commands(profile: str) -> list[str]:
    """The ``girml profile`` commands that remake a params file of ``profile``: a run's tag
    (``release``, or ``long+study`` for one profile laid over another) names files under
    ``profiles/``; a path (``girml release --profile profiles/long.yaml``) is used as it is."""
    return [
        f"girml profile {part if part.endswith('.yaml') else f'profiles/{part}.yaml'}"
        for part in profile.split("+")
    ]


def reproduce_commands(provenance: Mapping[str, Any], real_command: str | None = None) -> list[str]:
    """The shell lines that remake the release from a clone, each after a comment line.

    The commit, the profile (or ``params.yaml`` as committed when none was recorded, with
    the params hash to check it against), the pipeline, the real-photo scoring when the card
    has it and the release command, all as recorded (no path of the release machine).
    """
    p = provenance
    commit = p.get("git_commit")
    lines: list[tuple[str, str]] = []
    if commit and commit != "unknown":
        dirty = " (its work tree had uncommitted changes)" if p.get("git_dirty") == "true" else ""
        lines.append((f"git checkout {commit}", f"the commit it was trained at{dirty}"))
    else:
        lines.append(("", "git commit not recorded: use the commit that holds this card"))
    lines.append(("make install && source .venv/bin/activate", "the locked environment"))
    profile = p.get("profile")
    if profile and profile not in ("quick", UNNAMED_PROFILE):
        lines += [(cmd, "the profile it was trained with") for cmd in profile_commands(profile)]
    elif profile == "quick":
        lines.append(("", "the quick profile: params.yaml as committed"))
    elif p.get("params_hash"):
        lines.append(
            (
                "sha256sum params.yaml",
                f"no profile recorded: params.yaml as committed; it trained with a params file "
                f"whose sha256 starts {p['params_hash']}",
            )
        )
    else:
        lines.append(("", "no profile recorded: params.yaml as committed"))
    if p.get("init_from"):
        lines.append(("", f"fine-tuned from {p['init_from']} (train.init_from): make it first"))
    train = p.get("train_command") or "not recorded"
    lines.append(("dvc repro", f"every stage; the train stage runs `{train}`"))
    if real_command:
        lines.append((real_command, "scores on real photos, for the card"))
    lines.append((str(p.get("release_command") or "girml release"), "this release"))
    return [line for command, comment in lines for line in (f"# {comment}", command) if line]


# The card's layout, beside this module (jinja2, Markdown)
CARD_TEMPLATE = "model_card.md.j2"
TEMPLATES_DIR = Path(__file__).with_name("templates")


def _template() -> jinja2.Template:
    """The card's Jinja template: strict, Markdown (not escaped), with a ``tick`` filter."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML
    )
    env.filters["tick"] = lambda text: f"`{text}`"
    return env.get_template(CARD_TEMPLATE)


def _real_command(real_photos: RealPhotos | None) -> str:
    """The command that scored the real photos, as Markdown code."""
    if real_photos is not None and real_photos.command:
        return f"`{real_photos.command}`"
    return "`benchmarks/real_photos.py` (command line not recorded)"


CITATION = """\
@article{kong2024gir,
  title   = {A Preliminary Exploration Towards General Image Restoration},
  author  = {Kong, Xiangtao and Gu, Jinjin and Liu, Yihao and Zhang, Wenlong and
             Chen, Xiangyu and Qiao, Yu and Dong, Chao},
  journal = {arXiv preprint arXiv:2408.15143},
  year    = {2024}
}

@inproceedings{chen2022nafnet,
  title     = {Simple Baselines for Image Restoration},
  author    = {Chen, Liangyu and Chu, Xiaojie and Zhang, Xiangyu and Sun, Jian},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year      = {2022}
}"""


def render_card(
    *,
    title: str,
    arch: str,
    n_params: int,
    weights: Mapping[str, Any],
    provenance: Mapping[str, Any],
    metrics: CardMetrics,
    coverage: Coverage,
    fp16: Any = None,
    real_photos: RealPhotos | None = None,
) -> str:
    """``MODEL_CARD.md`` text.

    Args:
        title: the card's heading.
        arch: ``model.type``.
        n_params: parameter count.
        weights: ``file``, ``dtype``, ``bytes``, ``sha256`` of the weights file.
        provenance: the release provenance as plain values (see
            :class:`girml.artifacts.provenance.Provenance`); ``data`` holds the training data
            summary.
        metrics: :func:`~girml.artifacts.card_metrics.card_metrics`.
        coverage: what the training data spans.
        fp16: the fp16 check (``diffs``, ``max_abs_diff``, ``tolerance_db``) when stored in fp16.
        real_photos: ``benchmarks/real_photos.py`` scores of these weights: a section
            "Real photos outside the project" (none without).
    """
    data = {"sources": {}, **provenance["data"]}  # a provenance from before photo sets
    provenance = {"profile": None, **provenance, "data": data}  # and before profiles
    photo_sets = list(data["sources"])
    real_command = real_photos.command if real_photos is not None else None
    return _template().render(
        front_matter=front_matter(
            title=title, arch=arch, metrics=metrics, coverage=coverage, photo_sets=photo_sets
        ),
        title=title,
        arch=arch,
        n_params=n_params,
        weights=weights,
        p=provenance,
        data=data,
        photo_sets={name: photo_set_description(name) for name in photo_sets},
        reproduce=reproduce_commands(provenance, real_command),
        m=metrics,
        uses=_uses(metrics, coverage),
        suites=suite_summaries(metrics),
        limits=known_limits(metrics),
        cov=coverage,
        fp16=fp16,
        real=real_photos,
        real_command=_real_command(real_photos),
        citation=CITATION,
        num=_num,
        code=lambda v: "not recorded" if v in (None, "", "unknown") else f"`{v}`",
    )
