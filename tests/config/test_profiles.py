"""Laying profiles and overrides over params (girml/config/profiles.py): one overlay rule,
comments kept, every section validated."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from girml.config import (
    ConfigError,
    TrainConfig,
    deep_merge,
    overlay_params,
    parse_section,
    profile_changes,
    profile_text,
    read_params,
    set_leaves,
)
from girml.params_check import check_params

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("profile", sorted(p.name for p in (ROOT / "profiles").glob("*.yaml")))
def test_every_profile_applies_and_validates(profile: str) -> None:
    _, merged = profile_text(ROOT / "params.yaml", ROOT / "profiles" / profile)
    train = parse_section(merged["train"], "train", TrainConfig)
    # the budget ladder's profiles keep the do-no-harm identity samples of the quick profile
    if profile in {"long.yaml", "gpu.yaml"}:
        assert train.clean_prob > 0 and train.steps > 1900
    if profile == "gpu.yaml":
        assert train.mixed_precision == "bf16" and train.compile
    if profile in {"gpu.yaml", "paper.yaml"}:  # the quick profile's one thread is for 2 cores
        assert train.num_threads == 0


def test_smoke_profile_shrinks_every_stage_and_passes_the_cross_checks(tmp_path: Path) -> None:
    merged = tmp_path / "params.yaml"
    merged.write_text(profile_text(ROOT / "params.yaml", ROOT / "profiles/smoke.yaml")[0])
    cfg = check_params(merged)  # patch sizes, baselines, tune space: what `dvc repro` checks
    base = check_params(ROOT / "params.yaml")
    assert cfg["train"].steps <= 50 and cfg["train"].val_every <= cfg["train"].steps
    assert cfg["train"].ckpt_every <= cfg["train"].steps
    assert cfg["tune"].num_samples * cfg["tune"].steps_per_trial <= 50
    assert len(cfg["evaluate"].baselines) < len(base["evaluate"].baselines)
    assert cfg["synthesize"].train_pairs < base["synthesize"].train_pairs
    for key in ("images_per_group", "lam_steps", "sensitivity_levels", "sensitivity_images"):
        assert getattr(cfg["interpret"], key) < getattr(base["interpret"], key), key


def test_the_profile_text_is_the_in_memory_merge() -> None:
    base, profile = ROOT / "params.yaml", ROOT / "profiles" / "long.yaml"
    text, merged = profile_text(base, profile)
    named = deep_merge(read_params(base), read_params(profile)) | {"profile": "long"}
    assert yaml.safe_load(text) == merged == named
    assert merged["model"]["width"] == 24 and merged["train"]["steps"] == 7000


def test_a_bad_profile_names_its_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  clean_prob: 1.5\n")
    with pytest.raises(ConfigError, match=r"(?s)bad\.yaml.*train\.clean_prob.*got 1\.5"):
        profile_text(ROOT / "params.yaml", bad)


def test_profile_changes_walk_mappings_and_replace_everything_else() -> None:
    profile = {"train": {"steps": 5, "betas": [0.8, 0.9]}, "evaluate": {"promotion": {}}}
    assert profile_changes(profile) == [
        ("train.steps", ["train", "steps"], 5),
        ("train.betas", ["train", "betas"], [0.8, 0.9]),  # a list replaces, never merges
        ("evaluate.promotion", ["evaluate", "promotion"], {}),  # an empty mapping is a leaf
    ]


def test_set_leaves_creates_missing_mappings_and_refuses_to_run_through_a_value() -> None:
    data: dict = {"train": None, "model": {"width": 8}}
    set_leaves(data, [("a", ["train", "steps"], 3), ("b", ["model", "width"], 16)])
    assert data == {"train": {"steps": 3}, "model": {"width": 16}}
    with pytest.raises(ConfigError, match=r"^override 'x': model\.width is not a mapping$"):
        set_leaves(data, [("override 'x'", ["model", "width", "deep"], 1)])
    base = {"model": {"width": 8, "enc_blocks": [1, 1]}}
    merged = deep_merge(base, {"model": {"enc_blocks": [2]}})
    assert merged == {"model": {"width": 8, "enc_blocks": [2]}}
    assert base["model"]["enc_blocks"] == [1, 1]  # a copy: the base is left alone


def test_overlay_keeps_comments_quotes_strings_and_validates() -> None:
    text = "# the model\nmodel:\n  type: nafnet  # the architecture\n  width: 8\n"
    new, plain = overlay_params(text, [("t", ["model", "type"], "no")], source="test")
    # a plain `no` would read back as False under PyYAML (what the stages use): it is quoted
    lines = new.splitlines()
    assert lines[0] == "# the model" and lines[3] == "  width: 8"
    assert lines[2].startswith('  type: "no"') and lines[2].endswith("# the architecture")
    assert plain == {"model": {"type": "no", "width": 8}}
    with pytest.raises(ConfigError, match=r"^t: unknown section 'modle'"):
        overlay_params(text, [("t", ["modle", "width"], 8)], source="test")
    with pytest.raises(ConfigError, match=r"(?s)^test: invalid config.*model\.width"):
        overlay_params(text, [("t", ["model", "width"], 1)], source="test")


def test_the_merged_params_name_the_profiles_they_were_made_from(tmp_path: Path) -> None:
    """``profile``: the profile's stem over the quick defaults, ``a+b`` for b laid over a, the
    file's own ``profile:`` key when it sets one, ``custom`` under a base that names none."""
    base = ROOT / "params.yaml"
    assert read_params(base)["profile"] == "quick"  # the committed defaults say so
    assert profile_text(base, ROOT / "profiles/smoke.yaml")[1]["profile"] == "smoke"
    long = tmp_path / "long.yaml"
    long.write_text(profile_text(base, ROOT / "profiles/long.yaml")[0])
    both = tmp_path / "both.yaml"
    both.write_text(profile_text(long, ROOT / "profiles/study.yaml")[0])
    assert read_params(both)["profile"] == "long+study"
    assert profile_text(both, ROOT / "profiles/study.yaml")[1]["profile"] == "long+study"
    named = tmp_path / "my profile.yaml"  # no valid name as a stem: the file names itself
    named.write_text("profile: mine\ntrain:\n  steps: 7\n")
    text, merged = profile_text(base, named)
    assert merged["profile"] == "mine" and merged["train"]["steps"] == 7
    assert [line[:16] for line in text.splitlines() if line.startswith("profile:")] == [
        'profile: "mine" '  # replaced in place, its comment kept
    ]
    named.write_text("train:\n  steps: 7\n")
    with pytest.raises(ConfigError, match=r"my profile\.yaml.*set `profile: <name>` in it"):
        profile_text(base, named)
    unnamed = tmp_path / "unnamed.yaml"
    lines = base.read_text().splitlines(keepends=True)
    unnamed.write_text("".join(line for line in lines if not line.lstrip().startswith("profile:")))
    assert "profile" not in read_params(unnamed)  # a params file from before the key
    text, merged = profile_text(unnamed, ROOT / "profiles/smoke.yaml")
    assert merged["profile"] == "custom+smoke" and '\nprofile: "custom+smoke"\n' in text


def test_a_bad_profile_name_is_refused_with_its_file(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    for bad in ("7", "'a b'", "'+x'", "[x]"):
        params.write_text(f"profile: {bad}\ntrain:\n  steps: 7\n")
        with pytest.raises(ConfigError, match=r"params\.yaml: profile: must be a profile name"):
            read_params(params)
    with pytest.raises(ConfigError, match=r"^test: profile: must be a profile name"):
        overlay_params("model:\n  width: 8\n", [("p", ["profile"], "a b")], source="test")
    assert check_params(ROOT / "params.yaml")["model"]  # the key is no section to check
