"""girml.config.protocols: the protocols section, its built-in protocols and its checks."""

from __future__ import annotations

from typing import Any

import pytest

from girml.config import (
    BUILTIN_PROTOCOLS,
    KNOWN_SETS,
    ConfigError,
    ProtocolsConfig,
    ProtocolTask,
    load_yaml,
    parse_section,
)
from tests.factories import REPO

FOLDER = {"source": {"type": "folder", "path": "/data/x"}}


def _parse(raw: dict[str, Any]) -> ProtocolsConfig:
    return parse_section(raw, "protocols", ProtocolsConfig)


def test_the_builtin_protocols_name_the_fields_settings() -> None:
    rows = {name: [task.row for task in spec.tasks] for name, spec in BUILTIN_PROTOCOLS.items()}
    assert rows["allinone-3"] == [
        "cbsd68-s15",
        "cbsd68-s25",
        "cbsd68-s50",
        "rain100l",
        "sots-outdoor",
    ]
    assert rows["allinone-5"] == ["cbsd68-s25", "rain100l", "sots-outdoor", "gopro", "lol-v1"]
    assert rows["gir-clean"] == ["kodak24", "mcmaster", "urban100"]
    assert [t.optional for t in BUILTIN_PROTOCOLS["real"].tasks] == [False, True]
    every_set = {task.set for spec in BUILTIN_PROTOCOLS.values() for task in spec.tasks}
    assert every_set <= set(KNOWN_SETS)
    assert _parse({}) == ProtocolsConfig()  # off by default: nothing to run, no set


def test_protocol_looks_up_custom_then_builtin_and_lists_the_known() -> None:
    cfg = _parse(
        {
            "sets": {"mine": {**FOLDER, "layout": "clean"}},
            "custom": {
                "my-clean": {
                    "tasks": [{"set": "mine", "input": "degradations"}],
                    "convention": "gir",
                }
            },
            "run": ["my-clean", "allinone-3"],
        }
    )
    assert cfg.protocol("my-clean").tasks[0].set == "mine"
    assert cfg.protocol("allinone-3") is BUILTIN_PROTOCOLS["allinone-3"]
    with pytest.raises(KeyError, match=r"no protocol 'x'; known: \['allinone-3'.*'my-clean'"):
        cfg.protocol("x")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"run": ["allinone-4"]}, r"protocols: .*unknown protocol\(s\) \['allinone-4'\]"),
        ({"run": ["real", "real"]}, "lists a protocol twice"),
        ({"sets": {"mine": FOLDER}}, r"protocols.sets: .*'mine' is no set girml knows.*layout"),
        ({"sets": {"Rain": FOLDER}}, "must be lower case"),
        ({"sets": {"cbsd68": {"source": {"type": "builtin"}}}}, r"protocols.sets.cbsd68.source"),
        (
            {"custom": {"allinone-3": {"tasks": [{"set": "cbsd68"}], "convention": "gir"}}},
            "is built in",
        ),
        (
            {"custom": {"mine": {"tasks": [{"set": "nowhere"}], "convention": "gir"}}},
            r"uses set\(s\) \['nowhere'\]",
        ),
        (
            {"custom": {"m": {"tasks": [{"set": "cbsd68"}, {"set": "cbsd68"}], "convention": "g"}}},
            r"row name\(s\) \['cbsd68'\] given twice",
        ),
    ],
)
def test_bad_protocols_sections_name_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _parse(raw)


def test_a_task_has_sigma_exactly_with_gaussian_noise_and_names_its_row() -> None:
    assert ProtocolTask(set="cbsd68", input="gaussian", sigma=25).row == "cbsd68-s25"
    assert ProtocolTask(set="cbsd68", input="gaussian", sigma=7.5, name="n").row == "n"
    for bad in ({"input": "gaussian"}, {"input": "given", "sigma": 15}):
        with pytest.raises(ValueError, match="sigma is required with input: gaussian"):
            ProtocolTask(set="cbsd68", **bad)


def test_off_in_the_quick_profile_and_on_in_the_paper_profile() -> None:
    """The quick profile has no network: no set, no protocol. The paper profile runs every
    built-in protocol, with every set it needs listed and its downloads pinned."""
    quick = load_yaml((REPO / "params.yaml").read_text(), "params.yaml")["protocols"]
    assert quick == {"run": [], "sets": {}, "custom": {}}
    paper = _parse(load_yaml((REPO / "profiles/paper.yaml").read_text(), "paper")["protocols"])
    assert paper.run == list(BUILTIN_PROTOCOLS)
    needed = {t.set for name in paper.run for t in paper.protocol(name).tasks if not t.optional}
    assert needed == set(paper.sets)
    urls = [s.source for s in paper.sets.values() if s.source.type == "urls"]
    assert urls and all(source.pin_file == "downloads.sha256" for source in urls)
