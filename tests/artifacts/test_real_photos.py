"""Real-photo scores (girml/artifacts/real_photos.py): read and validated, shown on the card only
for the very weights they were measured on, and accepted as the script writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from girml.artifacts.real_photos import read_real_photos
from girml.artifacts.release import CARD_FILE, WEIGHTS_FILE
from girml.cli import app
from girml.config import DegradationsConfig
from girml.core.imageio import write_png
from tests.artifacts.common import export, real_record, tiny_model
from tests.factories import textured_image, tiny_params, write_params


def test_real_photos_section_only_for_the_released_weights(
    tmp_path: Path, spec: DegradationsConfig
) -> None:
    model = tiny_model(13)
    out, again = tmp_path / "release", tmp_path / "again"
    export(tmp_path, spec, model, out)
    export(tmp_path, spec, model, again)  # a re-release of the same model: the same bytes
    weights = (out / WEIGHTS_FILE).read_bytes()
    assert (again / WEIGHTS_FILE).read_bytes() == weights
    card = (out / CARD_FILE).read_text()
    assert "Real photos" not in card and "real_photos.py" not in card

    sha = yaml.safe_load((out / "config.yaml").read_text())["weights"]["sha256"]
    path = tmp_path / "real.json"
    path.write_text(json.dumps(real_record(sha)))
    export(tmp_path, spec, model, out, real_photos=read_real_photos(path))
    card = (out / CARD_FILE).read_text()
    section = card[card.index("## Real photos outside the project") :]
    assert "`python benchmarks/real_photos.py --model models/release --json real.json`" in section
    assert "3 crops of 256x256 px" in section
    assert "`grace_hopper.jpg` (512x600), 2 crop(s)," in section
    assert "`f3.jpg`, 1 crop(s)." in section
    assert "| gaussian_noise_25 | 20.50 | +6.75 | +4.50 (nlm) | 0.30 / 0.40 |" in section
    assert "| haze_b1.0_A0.9 | 12.00 | -0.50 | n/a (n/a) | 31.25 / 30.00 |" in section
    assert "| **mean of the 2 degraded** | 16.25 | +3.12 | +4.50 (per-row best) |" in section
    assert "scores 44.50 dB PSNR-Y\nagainst the clean input" in section
    assert "on 1 of\n2 degradations (`haze_b1.0_A0.9`)." in section
    assert (out / WEIGHTS_FILE).read_bytes() == weights
    assert "real" not in yaml.safe_load((out / "config.yaml").read_text())  # card only

    before = card
    for record, match in (
        (real_record("0" * 64), r"real\.json: scored on other weights \(models/release"),
        (real_record(None), r"real\.json: records no weights sha256"),
    ):
        path.write_text(json.dumps(record))
        with pytest.raises(ValueError, match=match):
            export(tmp_path, spec, tiny_model(13), out, real_photos=read_real_photos(path))
        assert (out / CARD_FILE).read_text() == before  # the old release is untouched
    path.write_text(json.dumps(real_record(sha)))  # another model, the old hash
    with pytest.raises(ValueError, match="scored on other weights"):
        export(tmp_path, spec, tiny_model(14), out, real_photos=read_real_photos(path))


def test_real_photos_script_json_is_accepted_on_a_re_release(
    tmp_path: Path, spec: DegradationsConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual flow: release, score the release with the script, release again with it."""
    import importlib.util
    import sys

    # as `python benchmarks/real_photos.py` runs it: its folder first on the path
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "benchmarks"))
    loader = importlib.util.spec_from_file_location(
        "real_photos", Path(__file__).parents[2] / "benchmarks" / "real_photos.py"
    )
    script = importlib.util.module_from_spec(loader)
    sys.modules["real_photos"] = script  # dataclasses look their module up
    try:
        loader.loader.exec_module(script)
        model, out = tiny_model(15), tmp_path / "release"
        export(tmp_path, spec, model, out)
        write_png(tmp_path / "photo.png", textured_image(1, 40, 72))
        argv = ["--model", str(out), "--photos", str(tmp_path / "photo.png"), "--crop", "32"]
        argv += ["--methods", "model,identity,wiener", "--json", str(tmp_path / "real.json")]
        assert script.main(argv) == 0
    finally:
        del sys.modules["real_photos"]
    real = read_real_photos(tmp_path / "real.json")
    assert real.photos[0].width == 72 and real.crops == 2 and len(real.degraded) == 12
    assert real.command is not None and real.command.endswith("real.json")
    export(tmp_path, spec, model, out, real_photos=real)
    assert "`photo.png` (72x40), 2 crop(s)." in (out / CARD_FILE).read_text()


def test_malformed_real_photos_json_is_refused_naming_the_file(
    offline: Path, spec: DegradationsConfig
) -> None:
    bad = offline / "real.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"real\.json: not valid JSON"):
        read_real_photos(bad)
    record = real_record("a" * 64)
    del record["rows"]["clean"]["methods"]["model"]
    bad.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"real\.json: .*rows without a 'model' score: clean"):
        read_real_photos(bad)
    bad.write_text(json.dumps({**real_record("a" * 64), "crops": "many"}))
    with pytest.raises(ValueError, match=r"real\.json: not a benchmarks/real_photos.py .* crops:"):
        read_real_photos(bad)
    with pytest.raises(FileNotFoundError, match=r"nothing\.json not found"):
        read_real_photos(offline / "nothing.json")

    # the verb fails with one line naming the file, before anything is loaded or written
    write_params(offline / "params.yaml", tiny_params())
    export(offline, spec, tiny_model(16), Path("models/release"))
    before = Path("models/release", CARD_FILE).read_bytes()
    for name in ("real.json", "nothing.json"):
        result = CliRunner().invoke(
            app, ["release", "--model", "models/latest", "--real-photos", name]
        )
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"error: {name}") and result.output.count("\n") == 1
    assert Path("models/release", CARD_FILE).read_bytes() == before
