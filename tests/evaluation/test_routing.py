"""Which restorer each image goes to (girml.evaluation.routing): the oracle undoes an image's
recipe, the routing table picks each family's best method on the validation pairs, and the
routed restorer follows its classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from girml.data.records import BenchPair, read_jsonl
from girml.evaluation.bench import BenchItem
from girml.evaluation.routing import (
    each,
    identity,
    oracle_restorer,
    routed_restorer,
    routing_table,
)
from girml.models.classifier import DegradationClassifier
from girml.training.data import load_pairs


def _item(suite: str, family: str, id_: str) -> BenchItem:
    return BenchItem(suite, family, id_, "", "", Path("lq.png"), Path("gt.png"))


def _always(index: int, classes: int) -> DegradationClassifier:
    """A classifier that names class ``index`` for every image."""
    model = DegradationClassifier(classes).eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.nn.functional.one_hot(torch.tensor(index), classes).float())
    return model


def test_oracle_undoes_the_recipe_last_applied_family_first(data: Path) -> None:
    bench = data / "bench"
    record = read_jsonl(next((bench / "mixed" / "blur+noise").glob("recipes.jsonl")), BenchPair)[0]
    applied = [step.family for step in record.recipe.steps]
    calls: list[str] = []

    def mark(family: str):
        def fn(image: np.ndarray) -> np.ndarray:
            calls.append(family)
            return image + 1

        return fn

    restore = oracle_restorer({"noise": mark("noise"), "blur": mark("blur")}, bench)
    out = restore(_item("mixed", "blur+noise", record.id), np.zeros((2, 2, 3), np.uint8))
    assert calls == list(reversed(applied)) and int(out[0, 0, 0]) == len(applied)
    calls.clear()  # a held-out family has no specialist; clean and unknown images pass through
    haze = read_jsonl(bench / "unseen" / "haze" / "recipes.jsonl", BenchPair)[0]
    assert (
        int(restore(_item("unseen", "haze", haze.id), np.zeros((2, 2, 3), np.uint8))[0, 0, 0]) == 0
    )
    assert int(restore(_item("single-id", "clean", "x"), np.zeros((2, 2, 3), np.uint8)).max()) == 0
    assert calls == []


def test_routing_table_takes_the_best_method_on_each_familys_validation_pairs(data: Path) -> None:
    val = load_pairs(data / "pairs" / "val" / "pairs.jsonl")
    families = set(val.families)
    present = next(f for f in ("noise", "blur", "jpeg") if f in families)
    cheat = {id(lq): gt for lq, gt in zip(val.lq, val.gt, strict=True)}

    def oracle(lq: np.ndarray) -> np.ndarray:  # returns the ground truth: the best possible
        return cheat.get(id(lq), lq)

    def darken(lq: np.ndarray) -> np.ndarray:
        return (lq // 2).astype(np.uint8)

    candidates = {
        present: {"darken": darken, "oracle": oracle, "identity": lambda x: x.copy()},
        "missing": {"first": darken, "second": oracle},
    }
    table = routing_table(["clean", present, "missing"], candidates, data / "pairs")
    assert table == {"clean": "identity", present: "oracle", "missing": "first"}


def test_the_routed_restorer_sends_each_image_to_its_class_method(data: Path) -> None:
    classes = ["clean", "noise", "blur", "jpeg"]

    def brighten(lq: np.ndarray) -> np.ndarray:
        return np.clip(lq.astype(np.int16) + 50, 0, 255).astype(np.uint8)

    specialists = dict.fromkeys(classes[1:], brighten)  # far worse than doing nothing
    lq = np.full((8, 8, 3), 100, np.uint8)
    item = _item("single-id", "noise", "0")
    routed, table = routed_restorer(
        _always(0, 4), classes, specialists, ["identity", "median"], data / "pairs"
    )
    assert table["clean"] == "identity" and set(table) == set(classes)
    validated = set(load_pairs(data / "pairs" / "val" / "pairs.jsonl").families)
    for family in classes[1:]:  # brightening loses where it is measured; else the first candidate
        want = ("median", "identity") if family in validated else (f"specialist:{family}",)
        assert table[family] in want, family
    assert (routed(item, lq) == lq).all()  # named clean: identity
    with pytest.raises(KeyError, match="unknown baseline 'nope'"):
        routed_restorer(_always(0, 4), classes, specialists, ["nope"], data / "pairs")


def test_each_keeps_the_exception_of_the_image_it_failed_on() -> None:
    def picky(item: BenchItem, lq: np.ndarray) -> np.ndarray:
        if item.family == "jpeg":
            raise RuntimeError("boom")
        return identity(lq)

    lq = np.zeros((2, 2, 3), np.uint8)
    out = each(picky)([_item("s", "noise", "0"), _item("s", "jpeg", "1")], [lq, lq])
    assert (out[0] == lq).all() and out[0] is not lq and isinstance(out[1], RuntimeError)
