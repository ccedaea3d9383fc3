"""params.yaml parsing: typed sections, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from girml.config import (
    CollectConfig,
    ConfigError,
    DegradationsConfig,
    SynthesizeConfig,
    load_section,
    parse_section,
)
from girml.degradations import check_spec
from tests.factories import tiny_params, write_params

ROOT = Path(__file__).resolve().parents[1]


def test_repository_params_parse_and_spec_is_valid() -> None:
    for section in ("collect", "degradations", "synthesize", "validate", "model"):
        try:
            load_section(ROOT / "params.yaml", section)
        except ConfigError as exc:
            if "is missing" not in str(exc):
                raise
    check_spec(load_section(ROOT / "params.yaml", "degradations"))


def test_unknown_key_names_the_key(tmp_path: Path) -> None:
    params = tiny_params()
    params["synthesize"]["patchsize"] = 64
    path = write_params(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match=r"synthesize\.patchsize: Extra inputs"):
        load_section(path, "synthesize")


def test_bad_value_names_key_and_value(tmp_path: Path) -> None:
    params = tiny_params()
    params["collect"]["min_size"] = -3
    path = write_params(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match=r"collect\.min_size: .*greater than 0.*-3"):
        load_section(path, "collect")


def test_unknown_section_and_missing_file(tmp_path: Path) -> None:
    params = tiny_params()
    params["colect"] = {}
    path = write_params(tmp_path / "params.yaml", params)
    with pytest.raises(ConfigError, match="unknown section"):
        load_section(path, "collect")
    with pytest.raises(ConfigError, match="not found"):
        load_section(tmp_path / "nope.yaml", "collect")


def test_degradation_spec_cross_checks() -> None:
    raw = tiny_params()["degradations"]
    raw["held_out"]["families"] = ["rain"]
    with pytest.raises(ConfigError, match="unknown families"):
        parse_section(raw, "degradations", DegradationsConfig)
    raw = tiny_params()["degradations"]
    raw["families"]["noise"]["ops"]["gaussian_noise"]["params"]["sigma"]["id"] = [50, 15]
    with pytest.raises(ConfigError, match=r"degradations\.families\.noise.*low <= high"):
        parse_section(raw, "degradations", DegradationsConfig)


def test_config_objects_are_frozen() -> None:
    cfg = parse_section(tiny_params()["synthesize"], "synthesize", SynthesizeConfig)
    with pytest.raises(ValueError):
        cfg.seed = 3  # type: ignore[misc]
    src = parse_section({"sources": [{"type": "folder", "path": "x"}]}, "collect", CollectConfig)
    assert src.sources[0].type == "folder"


@pytest.mark.parametrize("profile", sorted(p.name for p in (ROOT / "profiles").glob("*.yaml")))
def test_every_profile_applies_and_validates(profile: str) -> None:
    from girml.config import TrainConfig, apply_profile, parse_section

    merged = apply_profile(ROOT / "params.yaml", ROOT / "profiles" / profile)
    train = parse_section(merged["train"], "train", TrainConfig)
    # the budget ladder's profiles keep the do-no-harm identity samples of the quick profile
    if profile in {"long.yaml", "gpu.yaml"}:
        assert train.clean_prob > 0 and train.steps > 1900
    if profile == "gpu.yaml":
        assert train.mixed_precision == "bf16" and train.compile
    if profile in {"gpu.yaml", "paper.yaml"}:  # the quick profile's one thread is for 2 cores
        assert train.num_threads == 0


def test_smoke_profile_shrinks_every_stage_and_passes_the_cross_checks(tmp_path: Path) -> None:
    import yaml

    from girml.config import apply_profile
    from girml.params_check import check_params

    merged = tmp_path / "params.yaml"
    merged.write_text(
        yaml.safe_dump(apply_profile(ROOT / "params.yaml", ROOT / "profiles/smoke.yaml"))
    )
    cfg = check_params(merged)  # patch sizes, baselines, tune space: what `dvc repro` checks
    base = check_params(ROOT / "params.yaml")
    assert cfg["train"].steps <= 50 and cfg["train"].val_every <= cfg["train"].steps
    assert cfg["train"].ckpt_every <= cfg["train"].steps
    assert cfg["tune"].num_samples * cfg["tune"].steps_per_trial <= 50
    assert len(cfg["evaluate"].baselines) < len(base["evaluate"].baselines)
    assert cfg["synthesize"].train_pairs < base["synthesize"].train_pairs
    for key in ("images_per_group", "lam_steps", "sensitivity_levels", "sensitivity_images"):
        assert getattr(cfg["interpret"], key) < getattr(base["interpret"], key), key


def test_girml_profile_keeps_the_base_comments_and_lays_the_profile_over_it(
    tmp_path: Path,
) -> None:
    import yaml
    from typer.testing import CliRunner

    from girml.cli import app
    from girml.config import apply_profile, deep_merge, read_params

    out = tmp_path / "params.yaml"
    base = ROOT / "params.yaml"
    profile = ROOT / "profiles" / "long.yaml"
    result = CliRunner().invoke(
        app, ["profile", str(profile), "--base", str(base), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    comments = [line.strip() for line in base.read_text().splitlines() if line.strip()[:1] == "#"]
    assert comments and all(line in text for line in comments)  # every comment line kept
    assert "# identity samples (input = clean crop)" in text  # and the inline ones
    merged = yaml.safe_load(text)
    assert (
        merged
        == apply_profile(base, profile)
        == deep_merge(read_params(base), read_params(profile))
    )
    assert merged["model"]["width"] == 24 and merged["train"]["steps"] == 7000


def test_a_bad_profile_names_its_file_and_key(tmp_path: Path) -> None:
    from girml.config import apply_profile

    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  clean_prob: 1.5\n")
    with pytest.raises(ConfigError, match=r"(?s)bad\.yaml.*train\.clean_prob.*got 1\.5"):
        apply_profile(ROOT / "params.yaml", bad)


def test_code_defaults_are_the_values_params_yaml_states() -> None:
    """One set of defaults: every value params.yaml states equals its field's default in code.

    A key params.yaml does not state takes the code default; a required field (no default, e.g.
    collect.sources) is params.yaml's alone, and so is a field that names degradation families
    (its default names none: a spec's families are its own).
    """
    NAMES_FAMILIES = {"degradations.held_out", "degradations.bench_combinations"}
    from pydantic import BaseModel

    from girml.config import SECTIONS, parse_section, read_params

    def disagreements(section: str, model: type[BaseModel], raw: dict, parsed: BaseModel):
        # a BaseModel-valued field with a default is compared whole
        for name, field in model.model_fields.items():
            if name not in raw:
                continue
            if field.is_required():  # params.yaml's alone, insides included
                continue
            if f"{section}.{name}" in NAMES_FAMILIES:  # defaults to naming nothing
                default = field.get_default(call_default_factory=True)
                named = default.model_dump().values() if isinstance(default, BaseModel) else default
                assert not any(named), f"{section}.{name} defaults to {default!r}"
                continue
            value, default = getattr(parsed, name), field.get_default(call_default_factory=True)
            if value != default:
                yield f"{section}.{name}: params.yaml {value!r}, code default {default!r}"

    params = read_params(ROOT / "params.yaml")
    found = [
        line
        for section, model in SECTIONS.items()
        if section in params
        for line in disagreements(
            section, model, params[section], parse_section(params[section], section, model)
        )
    ]
    assert not found, "params.yaml and girml/config.py disagree:\n" + "\n".join(found)


def test_a_duplicate_key_names_the_key_and_both_lines(tmp_path: Path) -> None:
    """Before: ``batch_size: 8`` then ``batch_size: 16`` was accepted, and 16 was used."""
    from typer.testing import CliRunner

    from girml.cli import app
    from girml.config import read_params
    from girml.tuning.results import load_tuned_overrides

    params = tmp_path / "params.yaml"
    params.write_text("train:\n  batch_size: 8\n  steps: 10\n  batch_size: 16\n")
    expected = f"{params}: duplicate key 'batch_size' on lines 2 and 4 (keep one)"
    with pytest.raises(ConfigError) as info:
        read_params(params)
    assert str(info.value) == expected
    flow = tmp_path / "flow.yaml"  # flow style, on one line: same line twice
    flow.write_text("collect: {min_size: 8, min_size: 9}\n")
    with pytest.raises(ConfigError, match="duplicate key 'min_size' on lines 1 and 1"):
        read_params(flow)
    merged = tmp_path / "merged.yaml"  # overriding a merged key is what `<<` is for
    merged.write_text("model:\n  <<: {width: 8}\n  width: 16\n")
    assert read_params(merged)["model"] == {"width": 16}

    # a stage verb and `girml profile` stop with one line and exit code 2
    result = CliRunner().invoke(app, ["validate", "--params", str(params)])
    assert result.exit_code == 2 and result.output.strip() == f"error: {expected}"
    profile = tmp_path / "profile.yaml"
    profile.write_text("model:\n  width: 8\nmodel:\n  width: 16\n")
    args = ["profile", str(profile), "--base", str(ROOT / "params.yaml")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out.yaml")])
    assert result.exit_code == 2, result.output
    assert f"{profile}: duplicate key 'model' on lines 1 and 3" in result.output
    assert not (tmp_path / "out.yaml").exists()
    best = tmp_path / "best.yaml"  # tune/best.yaml too
    best.write_text("params:\n  train: {lr: 0.001}\n  train: {lr: 0.1}\n")
    with pytest.raises(ConfigError, match="duplicate key 'train' on lines 2 and 3"):
        load_tuned_overrides(best)
