"""girml.interpret.sensitivity: the swept parameter, its strengths and the PSNR gain curves."""

from __future__ import annotations

import numpy as np
import pytest

from girml.config import DegradationsConfig, parse_section
from girml.interpret.sensitivity import (
    degrade,
    image_seeds,
    main_param,
    model_batch_restorer,
    op_params,
    per_image,
    sensitivity_curve,
    sweep_values,
)
from tests.factories import textured_image
from tests.interpret.common import nonlinear_tiny_model

# A spec with the cases a sweep must handle: ood above id, ood below id (jpeg quality), a log
# range, an integer param, a first range without ood (haze A) and a clipped end.
SWEEP_SPEC = {
    "families": {
        "noise": {
            "ops": {"gaussian_noise": {"params": {"sigma": {"id": [15, 50], "ood": [50, 70]}}}}
        },
        "shot": {
            "ops": {
                "poisson_noise": {
                    "params": {"scale": {"id": [20, 100], "ood": [5, 20], "log": True}}
                }
            }
        },
        "jpeg": {
            "ops": {
                "jpeg": {"params": {"quality": {"id": [30, 70], "ood": [10, 30], "integer": True}}}
            }
        },
        "haze": {
            "ops": {
                "haze": {
                    "params": {
                        "A": {"id": [0.7, 1.0]},
                        "beta": {"id": [0.5, 1.5], "ood": [1.5, 4.5]},
                    }
                }
            }
        },
        "blur": {"ops": {"gaussian_blur": {"params": {"sigma": {"id": [1, 3]}}}}},
    },
}


def sweep_spec() -> DegradationsConfig:
    return parse_section(SWEEP_SPEC, "degradations", DegradationsConfig)


def test_sweeps_cover_id_and_ood_and_run_past_them() -> None:
    spec = sweep_spec()
    noise = main_param(spec, "noise")
    values = sweep_values(noise, levels=5, extend=1.5)
    assert values[0] == 15 and values[-1] == pytest.approx(50 + 1.5 * 20)
    assert values == sorted(values)
    jpeg = sweep_values(main_param(spec, "jpeg"), levels=7, extend=1.5)
    assert jpeg[0] == 70 and jpeg[-1] == 1  # easy to hard, clipped to the domain [1, 100]
    assert all(float(v).is_integer() for v in jpeg) and jpeg == sorted(jpeg, reverse=True)
    shot = sweep_values(main_param(spec, "shot"), levels=4, extend=2.0)
    assert shot[0] == 100 and shot[-1] == pytest.approx(20 * (5 / 20) ** 2)  # log space
    haze = main_param(spec, "haze")
    assert haze.param == "beta"  # the first range with an ood part, not A
    assert sweep_values(haze, levels=3, extend=1.0)[-1] == 4.5
    blur = main_param(spec, "blur")
    assert blur.ood_range is None and sweep_values(blur, 3, 1.5)[-1] == 4.0
    for family in SWEEP_SPEC["families"]:
        param = main_param(spec, family)
        for levels in (3, 4, 9):
            values = sweep_values(param, levels, 1.5)
            lo, hi = min(values), max(values)
            for bounds in (param.id_range, param.ood_range):
                if bounds is not None:
                    assert lo <= bounds[0] and bounds[1] <= hi  # covers the declared ranges
                    assert any(bounds[0] <= v <= bounds[1] for v in values)
    with pytest.raises(ValueError, match="levels must be >= 3"):
        sweep_values(noise, 2, 1.5)
    with pytest.raises(ValueError, match=r"extend must be >= 1, got 0\.5"):
        sweep_values(noise, 3, 0.5)
    with pytest.raises(ValueError, match="unknown family"):
        main_param(spec, "snow")


def test_op_params_put_the_other_params_at_their_id_midpoints() -> None:
    spec = sweep_spec()
    haze = main_param(spec, "haze")
    assert op_params(spec, haze, 2.0, seed=9) == {"A": 0.85, "beta": 2.0, "seed": 9}
    jpeg = main_param(spec, "jpeg")
    assert op_params(spec, jpeg, 12.6, seed=9) == {"quality": 13}  # integer, not random
    assert image_seeds(4, 3) == image_seeds(4, 3) != image_seeds(5, 3)
    assert len(image_seeds(4, 3)) == 3


def test_degrade_keeps_the_size_and_grows_with_strength() -> None:
    spec = sweep_spec()
    noise = main_param(spec, "noise")
    clean = textured_image(0, 20, 24)
    weak, strong = (degrade(clean, spec, noise, v, seed=1) for v in (10.0, 60.0))
    assert weak.shape == strong.shape == clean.shape and weak.dtype == np.uint8
    assert np.array_equal(weak, degrade(clean, spec, noise, 10.0, seed=1))  # seeded
    error = [np.abs(x.astype(int) - clean).mean() for x in (weak, strong)]
    assert 0 < error[0] < error[1]


def test_sensitivity_curve_identity_gains_nothing_and_inputs_degrade() -> None:
    spec = sweep_spec()
    param = main_param(spec, "noise")
    clean = [textured_image(i, 24, 24) for i in range(2)]
    values = [10.0, 40.0, 90.0]
    identity = {"identity": per_image(np.copy)}
    curves = sensitivity_curve(identity, clean, spec, param, values, seed=0)
    assert curves["identity"] == [0.0, 0.0, 0.0]
    assert curves["psnr_y_input"] == sorted(curves["psnr_y_input"], reverse=True)
    again = sensitivity_curve(identity, clean, spec, param, values, seed=0)
    assert again == curves  # seeded noise
    with pytest.raises(ValueError, match="at least one clean image"):
        sensitivity_curve(identity, [], spec, param, values, seed=0)
    restore = model_batch_restorer(nonlinear_tiny_model())
    batched = restore(clean)
    for image, out in zip(clean, batched, strict=True):
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert np.abs(out.astype(int) - restore([image])[0]).max() <= 1  # float rounding only
    mixed = restore([clean[0], textured_image(5, 16, 20)])  # sizes differ: one by one
    assert [m.shape for m in mixed] == [(24, 24, 3), (16, 20, 3)]
