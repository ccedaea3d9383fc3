"""How the network starts (girml.training.init): ``init_from`` weights, which the caller loads
(girml.artifacts.loading.source_weights), and the compile fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from girml.artifacts.loading import source_weights
from girml.artifacts.store import save_model_dir
from girml.models import build_model
from girml.training.checkpoints import run_fingerprint
from girml.training.init import check_init, compile_or_eager
from girml.training.loop import train
from tests.training.common import BASE, MODEL, weights_equal

pytestmark = pytest.mark.usefixtures("single_thread")


def test_compile_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build_model(MODEL)
    example = torch.rand(2, 3, 32, 32)
    expected = model(example).detach()

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", lambda fn, **kw: broken)
    assert compile_or_eager(model, example) is False
    assert torch.equal(model(example).detach(), expected)  # runs eagerly, same function
    assert all(p.grad is None for p in model.parameters())


def test_init_from_fine_tunes_from_a_model_folder(pairs_dir: Path, tmp_path: Path) -> None:
    cfg = BASE.model_copy(update={"steps": 4, "val_every": 4, "ckpt_every": 4})
    source = train(MODEL, cfg, pairs_dir, tmp_path / "src")
    folder = save_model_dir(source.model, MODEL, tmp_path / "model")
    # zero steps of fine-tuning would be the source; one step at a tiny lr stays close to it
    tuned_cfg = cfg.model_copy(update={"init_from": str(folder), "steps": 1, "lr": 1e-9})
    init = source_weights(str(folder))  # the caller loads them (the train stage)
    tuned = train(MODEL, tuned_cfg, pairs_dir, tmp_path / "tuned", init=init)
    tiny_lr = cfg.model_copy(update={"steps": 1, "lr": 1e-9})
    scratch = train(MODEL, tiny_lr, pairs_dir, tmp_path / "s")
    sa, st = source.model.state_dict(), tuned.model.state_dict()
    for key in sa:
        torch.testing.assert_close(st[key], sa[key], atol=1e-5, rtol=1e-4)
    assert not weights_equal(scratch.model, tuned.model)
    # the source is part of the fingerprint: other checkpoints are not resumed
    assert run_fingerprint(MODEL, tuned_cfg, pairs_dir / "train" / "pairs.jsonl", None, 1) != (
        run_fingerprint(MODEL, cfg, pairs_dir / "train" / "pairs.jsonl", None, 1)
    )


def test_init_weights_go_with_init_from_and_fail_before_touching_checkpoints(
    pairs_dir: Path, tmp_path: Path
) -> None:
    ckpt = tmp_path / "ckpt"
    cfg = BASE.model_copy(update={"steps": 3, "val_every": 3, "ckpt_every": 3})
    train(MODEL, cfg, pairs_dir, ckpt)
    before = sorted(p.name for p in ckpt.iterdir())
    named = cfg.model_copy(update={"init_from": "models/latest"})
    with pytest.raises(ValueError, match=r"train\.init_from='models/latest': its weights were not"):
        train(MODEL, named, pairs_dir, ckpt)  # named but not loaded
    weights = build_model(MODEL).state_dict()
    with pytest.raises(ValueError, match=r"train\.init_from does not name them"):
        train(MODEL, cfg, pairs_dir, ckpt, init=weights)  # loaded but not named
    assert sorted(p.name for p in ckpt.iterdir()) == before
    check_init(None, None)
    check_init("release", weights)


def test_weights_of_another_architecture_are_refused(pairs_dir: Path, tmp_path: Path) -> None:
    cfg = BASE.model_copy(update={"steps": 3, "val_every": 3, "ckpt_every": 3})
    wider = MODEL.model_copy(update={"width": MODEL.width * 2})
    other = save_model_dir(build_model(wider), wider, tmp_path / "wide")
    tuned = cfg.model_copy(update={"init_from": str(other)})
    with pytest.raises(ValueError, match=r"do not fit params\.yaml's model section"):
        train(MODEL, tuned, pairs_dir, tmp_path / "c2", init=source_weights(str(other)))
