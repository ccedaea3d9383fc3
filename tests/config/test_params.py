"""Reading params files and parsing sections (girml/config/params.py): typed sections, errors
that name the key, and one set of defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from girml.config import (
    SECTIONS,
    ConfigError,
    load_section,
    parse_section,
    read_params,
)
from girml.degradations import check_spec
from tests.factories import tiny_params, write_params

ROOT = Path(__file__).resolve().parents[2]


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


def test_code_defaults_are_the_values_params_yaml_states() -> None:
    """One set of defaults: every value params.yaml states equals its field's default in code.

    A key params.yaml does not state takes the code default; a required field (no default, e.g.
    collect.sources) is params.yaml's alone, and so is a field that names degradation families
    (its default names none: a spec's families are its own).
    """
    NAMES_FAMILIES = {"degradations.held_out", "degradations.bench_combinations"}

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
    assert not found, "params.yaml and girml/config disagree:\n" + "\n".join(found)


def test_a_union_member_error_names_the_list_index_not_the_union_tag() -> None:
    """pydantic puts the member's tag after a discriminated union's index
    (``sources.0.urls.items``); the key names what the file says: ``sources[0].items``."""
    raw = {"sources": [{"type": "builtin"}, {"type": "urls", "items": []}]}
    with pytest.raises(ConfigError) as info:
        parse_section(raw, "collect", SECTIONS["collect"], source="p.yaml")
    message = str(info.value)
    assert message.startswith("p.yaml: invalid config\n  collect.sources[1].items: ")
    assert ".urls." not in message


def test_a_bad_value_is_shown_with_its_url_credentials_masked() -> None:
    raw = {"sources": [{"type": "folder", "path": "x", "category_from": "https://u:pw@h/x"}]}
    with pytest.raises(ConfigError) as info:
        parse_section(raw, "collect", SECTIONS["collect"])
    assert "collect.sources[0].category_from" in str(info.value)
    assert "pw" not in str(info.value) and "***" in str(info.value)


def test_a_params_file_must_be_a_mapping_and_load_section_knows_the_sections(
    tmp_path: Path,
) -> None:
    listed = tmp_path / "params.yaml"
    listed.write_text("- train\n- model\n")
    with pytest.raises(ConfigError, match="top level must be a mapping of sections"):
        read_params(listed)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert read_params(empty) == {}
    with pytest.raises(ConfigError, match=r"section 'model' is missing"):
        load_section(empty, "model")
    with pytest.raises(ConfigError, match=r"unknown section 'modle'; known: \["):
        load_section(empty, "modle")
