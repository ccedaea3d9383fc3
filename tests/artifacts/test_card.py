"""``MODEL_CARD.md`` (girml/artifacts/card.py): Hugging Face's layout (YAML metadata, intended
use first, how to start, reproduction, metrics, limits per suite, citation, licence), every
section from the release's own numbers, snippets that run, and the credits of the package
photos it was trained on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from girml.artifacts.card import (
    front_matter,
    known_limits,
    profile_commands,
    reproduce_commands,
    suite_summaries,
)
from girml.artifacts.provenance import spec_sha256, training_data
from girml.artifacts.release import CARD_FILE, export_release
from girml.config import DegradationsConfig
from girml.core.imageio import write_png
from tests.artifacts.common import (
    TINY,
    coverage,
    export,
    metrics_for,
    per_family_rows,
    provenance,
    tiny_model,
)
from tests.factories import textured_image

# Hugging Face's order: what it is for before what it scores
SECTIONS = (
    "# Model card",
    "## Intended use",
    "## Out-of-scope use",
    "## How to get started",
    "## Training data",
    "## Training procedure",
    "### Provenance",
    "## Evaluation",
    "### Metrics",
    "### Harm",
    "## Bias, risks and limitations",
    "## Citation",
    "## License",
    "## Known limits, in full",
)


def card_metadata(card: str) -> dict:
    """The YAML between the card's first two ``---`` lines (it must open the file)."""
    assert card.startswith("---\n")
    block = card[4 : card.index("\n---\n", 4)]
    return yaml.safe_load(block)


def test_card_renders_every_section_in_order(tmp_path: Path, spec: DegradationsConfig) -> None:
    out = tmp_path / "release"
    export(tmp_path, spec, tiny_model(6), out)
    card = (out / CARD_FILE).read_text()
    at = [card.find(f"\n{heading}") for heading in SECTIONS]
    assert -1 not in at, [h for h, i in zip(SECTIONS, at, strict=True) if i < 0]
    assert at == sorted(at)
    assert card.index("## Out-of-scope use") < card.index("| suite | families | model PSNR-Y")
    assert "| single-id | 2 | 22.75 | 0.800 | 20.00 | nlm 22.50 | +2.75 | +0.25 |" in card
    assert "| single-id/blur | 4 | 19.50 | 20.00 | wiener 23.00 | -0.50 | -3.50 |" in card
    assert "| `harm.clean_psnr_y.single-id` | 48.250 |" in card
    assert "| `harm_rate.unseen-content` | not measured |" in card
    assert f"`{'f' * 40}`" in card and "| steps | 1900 |" in card and "554 s" in card
    assert "Test CPU, 2 cores (CPU)" in card
    assert spec_sha256(spec) in card
    assert "`0000000000000000`, `0000000000000001`, `0000000000000002`" in card
    assert "DVC md5 of `data/pairs` when the model was trained: `9e03.dir`" in card
    assert "no real camera noise" in card
    assert "`noise`, `blur`, `jpeg`" in card and "`haze`, `blur+jpeg`" in card
    assert "`scientific`" in card and "64x64 crops" in card
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["weights"]["sha256"] in card
    # out of scope, from the numbers: clean photos change, mild blur gets worse
    scope = card[card.index("## Out-of-scope use") : card.index("## How to get started")]
    assert "48.25 dB" in scope and "mildly\n  degraded by `blur`" in scope
    # limits: one line per suite up front, every family at the end
    risks = card[card.index("## Bias, risks") : card.index("## Citation")]
    assert risks.count("\n- **single-id**") == 1 and "- **unseen**" in risks
    assert "single-id/blur" not in risks
    assert card.index("- single-id/blur: the output is 0.50 dB below") > card.index(
        "## Known limits, in full"
    )
    # citation (GIR and NAFNet) and licence
    cite = card[card.index("## Citation") : card.index("## License")]
    assert "@article{kong2024gir," in cite and "arXiv:2408.15143" in cite
    assert "Kong, Xiangtao and Gu, Jinjin and Liu, Yihao and Zhang, Wenlong" in cite
    assert "Chen, Xiangyu and Qiao, Yu and Dong, Chao" in cite
    assert "Simple Baselines for Image Restoration" in cite and "(ECCV)" in cite
    assert "Apache License 2.0" in card
    assert (
        (Path(__file__).parents[2] / "LICENSE")
        .read_text()
        .startswith("\n                                 Apache License\n")
    )


def test_front_matter_is_hugging_face_metadata(tmp_path: Path, spec: DegradationsConfig) -> None:
    out = tmp_path / "release"
    base = provenance(tmp_path, spec)
    sets = {"skimage.data": {"train": 3, "test": 1}, "debian:gnome-backgrounds": {"val": 1}}
    prov = base.model_copy(update={"data": base.data.model_copy(update={"sources": sets})})
    metrics = metrics_for(per_family_rows())
    export_release(
        tiny_model(6), TINY, out, provenance=prov, metrics=metrics, coverage=coverage(spec)
    )
    meta = card_metadata((out / CARD_FILE).read_text())
    assert meta["license"] == "apache-2.0" and meta["library_name"] == "girml"
    assert meta["pipeline_tag"] == "image-to-image"
    assert {"image-restoration", "denoising", "deblurring", "nafnet"} <= set(meta["tags"])
    assert "dehazing" not in meta["tags"]  # haze is held out of training in the tiny spec
    assert meta["datasets"] == ["skimage.data", "debian:gnome-backgrounds"]
    assert meta["metrics"] == ["psnr", "ssim"]
    (index,) = meta["model-index"]
    assert index["name"] == "gir-restorer release"
    results = {r["dataset"]["config"]: r for r in index["results"]}
    assert list(results) == ["single-id", "unseen"]
    assert results["single-id"]["task"]["type"] == "image-to-image"
    assert [(m["type"], m["value"]) for m in results["single-id"]["metrics"]] == [
        ("psnr", 22.75),
        ("ssim", 0.8),
    ]
    card = (out / CARD_FILE).read_text()
    assert "| `debian:gnome-backgrounds` | 0 | 1 | 0 | wallpapers of the Debian/Ubuntu" in card
    # without photo sets (an older manifest) the key is left out, the rest stays
    bare = front_matter(
        title="t", arch="nafnet", metrics=metrics, coverage=coverage(spec), photo_sets=[]
    )
    assert "datasets" not in card_metadata(bare) and bare.endswith("---\n")


def test_limits_summarised_per_suite() -> None:
    metrics = metrics_for(per_family_rows())
    single, unseen = suite_summaries(metrics)
    assert single == (
        "**single-id** (2 families): +2.75 dB over the degraded input, +0.25 dB over the best "
        "classical method (`nlm`) on average; below the input on 1 of 2 families (worst "
        "`blur`, -0.50 dB); a classical method is better on 1 (worst `blur`: `wiener` by "
        "3.50 dB); 25% of its degraded images come out more than 0.1 dB below their input."
    )
    assert unseen.endswith("better than the input and every classical method on every family.")
    assert len(known_limits(metrics)) == 3  # the full list keeps every family


def test_reproduce_commands_name_the_profile_or_say_none_was_recorded(
    tmp_path: Path, spec: DegradationsConfig
) -> None:
    plain = provenance(tmp_path, spec).model_dump(mode="json")
    lines = reproduce_commands({**plain, "profile": "profiles/long.yaml"})
    commands = [line for line in lines if not line.startswith("#")]
    assert commands == [
        f"git checkout {'f' * 40}",
        "make install && source .venv/bin/activate",
        "girml profile profiles/long.yaml",
        "dvc repro",
        "girml release --model models/latest -o models/release",
    ]
    assert "# every stage; the train stage runs `girml train --params params.yaml`" in lines
    none = reproduce_commands(
        plain | {"git_commit": "unknown", "git_dirty": "true"},
        "python benchmarks/real_photos.py --model models/release --json real.json",
    )
    assert none[0] == "# git commit not recorded: use the commit that holds this card"
    assert "sha256sum params.yaml" in none and "girml profile" not in "\n".join(none)
    assert any("no profile recorded: params.yaml as committed" in line for line in none)
    assert any("starts aa11bb22cc33dd44" in line for line in none)
    assert none[-3] == "python benchmarks/real_photos.py --model models/release --json real.json"
    card = export(tmp_path, spec, tiny_model(6), tmp_path / "release").out_dir / CARD_FILE
    assert "| profile | not recorded: params.yaml as committed |" in card.read_text()


def test_reproduce_commands_from_a_profile_tag(tmp_path: Path, spec: DegradationsConfig) -> None:
    """A run's ``profile`` tag is a name: files under profiles/, in the order laid; ``quick``
    is params.yaml as committed; ``custom`` says none and gives the params hash."""
    plain = provenance(tmp_path, spec).model_dump(mode="json")

    def lines(profile: str) -> list[str]:
        return reproduce_commands({**plain, "profile": profile})

    assert [line for line in lines("long+study") if line.startswith("girml profile")] == [
        "girml profile profiles/long.yaml",
        "girml profile profiles/study.yaml",
    ]
    assert profile_commands("release") == ["girml profile profiles/release.yaml"]
    quick = lines("quick")
    assert "# the quick profile: params.yaml as committed" in quick
    assert not any(line.startswith("girml profile") for line in quick)
    assert "sha256sum params.yaml" in lines("custom")


def test_get_started_python_snippet_runs(
    tmp_path: Path, spec: DegradationsConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The card's Python block, as a user would paste it, next to the release folder."""
    export(tmp_path, spec, tiny_model(6), tmp_path / "models" / "release")
    card = (tmp_path / "models" / "release" / CARD_FILE).read_text()
    blocks = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    snippet = next(b for b in blocks if "girml.core.inference" in b)
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "photo.jpg", textured_image(2, 40, 56))  # read by its content
    exec(snippet, {})  # the card's own code, verbatim
    assert (tmp_path / "restored.png").is_file()
    assert any("mlflow.pyfunc.load_model(" in b for b in blocks)
    assert "girml restore photo.jpg -o restored/ --model models/release" in card


def test_package_photos_are_credited_on_the_card(tmp_path: Path, spec: DegradationsConfig) -> None:
    manifest = tmp_path / "manifest.csv"
    origin = "lomiri-wallpapers-16.04:/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg"
    manifest.write_text(
        "id,source,origin,width,height,category,split\n"
        f"e3a66fd24e87ebd3,packages,{origin},1451,816,photo,train\n"
        "27026bce76d47536,builtin,china,640,427,scene,test\n",
        encoding="utf-8",
    )
    data = training_data(manifest, tmp_path / "no.jsonl")
    assert data.photo_credits == [
        {
            "package": "lomiri-wallpapers-16.04",
            "path": "/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg",
            "category": "photo",
            "split": "train",
            "author": "Sander Klootwijk",
            "license": "CC-BY-SA-4.0",
        }
    ]
    assert len(data.package_pins_sha256 or "") == 64
    assert data.sources == {
        "debian:lomiri-wallpapers-16.04": {"train": 1},
        "sklearn.datasets.images": {"test": 1},
    }
    base = provenance(tmp_path, spec)
    prov = base.model_copy(
        update={
            "data": base.data.model_copy(
                update={
                    "photo_credits": data.photo_credits,
                    "package_pins_sha256": data.package_pins_sha256,
                    "sources": data.sources,
                }
            )
        }
    )
    out = tmp_path / "release"
    export_release(
        tiny_model(21),
        TINY,
        out,
        provenance=prov,
        metrics=metrics_for(per_family_rows()),
        coverage=coverage(spec),
    )
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "\n## Photo credits\n" in card
    assert card.index("## License") < card.index("## Photo credits") < card.index("## Known limits")
    assert card_metadata(card)["datasets"] == [
        "debian:lomiri-wallpapers-16.04",
        "sklearn.datasets.images",
    ]
    assert (
        "| `/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg` | lomiri-wallpapers-16.04 "
        "| photo | train | Sander Klootwijk | CC-BY-SA-4.0 |"
    ) in card
