"""``MODEL_CARD.md`` (girml/artifacts/card.py): every section, from the release's own numbers, and
the credits of the package photos it was trained on."""

from __future__ import annotations

from pathlib import Path

import yaml

from girml.artifacts.provenance import spec_sha256, training_data
from girml.artifacts.release import CARD_FILE, export_release
from girml.config import DegradationsConfig
from tests.artifacts.common import (
    TINY,
    coverage,
    export,
    metrics_for,
    per_family_rows,
    provenance,
    tiny_model,
)


def test_card_renders_every_section(tmp_path: Path, spec: DegradationsConfig) -> None:
    out = tmp_path / "release"
    export(tmp_path, spec, tiny_model(6), out)
    card = (out / CARD_FILE).read_text()
    for heading in (
        "# Model card",
        "## Provenance",
        "### Training data",
        "## Metrics",
        "## Harm",
        "## Known limits",
    ):
        assert heading in card
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
    base = provenance(tmp_path, spec)
    prov = base.model_copy(
        update={
            "data": base.data.model_copy(
                update={
                    "photo_credits": data.photo_credits,
                    "package_pins_sha256": data.package_pins_sha256,
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
    assert "### Photo credits" in card
    assert (
        "| `/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg` | lomiri-wallpapers-16.04 "
        "| photo | train | Sander Klootwijk | CC-BY-SA-4.0 |"
    ) in card
