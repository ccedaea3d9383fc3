"""The name -> object registries (girml.core.registry) behind every ``type:`` of params.yaml."""

from __future__ import annotations

import pytest

from girml.core.registry import Registry


def _losses() -> Registry[object]:
    """A registry of two entries, registered out of alphabetical order."""
    registry: Registry[object] = Registry("loss")
    registry.register("l2", order=2)(len)
    registry.register("l1")(abs)
    return registry


def test_register_returns_the_object_and_get_finds_it() -> None:
    registry: Registry[type] = Registry("architecture")

    @registry.register("plain")
    class Plain:
        pass

    assert registry.get("plain") is Plain  # the decorator hands back the class itself
    assert isinstance(Plain(), Plain)


def test_names_iteration_membership_and_size() -> None:
    registry = _losses()
    assert registry.names() == ["l1", "l2"]  # sorted, whatever the registration order
    assert list(registry) == ["l1", "l2"]
    assert "l1" in registry and "ssim" not in registry and 1 not in registry
    assert len(registry) == 2
    assert len(Registry("empty")) == 0 and Registry("empty").names() == []


def test_meta_is_kept_per_name() -> None:
    registry = _losses()
    assert registry.meta("l2") == {"order": 2}
    assert registry.meta("l1") == {}


def test_unknown_name_error_names_the_kind_the_name_and_what_exists() -> None:
    registry = _losses()
    with pytest.raises(KeyError, match=r"unknown loss 'ssim'; available: l1, l2"):
        registry.get("ssim")
    with pytest.raises(KeyError, match=r"unknown loss 'ssim'; available: l1, l2"):
        registry.meta("ssim")
    with pytest.raises(KeyError) as empty:
        Registry("baseline").get("x")
    assert empty.value.args == ("unknown baseline 'x'; available: ",)  # nothing registered yet


def test_a_name_registers_once_and_the_first_object_stays() -> None:
    registry = _losses()
    with pytest.raises(KeyError, match="loss 'l1' is already registered"):
        registry.register("l1", order=9)(round)
    assert registry.get("l1") is abs and registry.meta("l1") == {}
    assert len(registry) == 2
