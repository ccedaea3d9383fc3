"""The degradation classifier's architecture (girml.models.classifier): arguments and shapes."""

from __future__ import annotations

import pytest
import torch

from girml.models.classifier import DegradationClassifier


def test_classifier_rejects_bad_arguments_and_shapes() -> None:
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        DegradationClassifier(1)
    with pytest.raises(ValueError, match="width must be >= 1"):
        DegradationClassifier(3, width=0)
    with pytest.raises(ValueError, match=r"expected \(B,3,H,W\)"):
        DegradationClassifier(3)(torch.rand(1, 1, 16, 16))


def test_one_logit_per_class_for_any_image_size() -> None:
    torch.manual_seed(0)
    model = DegradationClassifier(4).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 40, 56)).shape == (2, 4)
        assert model(torch.rand(1, 3, 17, 9)).shape == (1, 4)
