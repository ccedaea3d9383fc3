"""Interpretation report: features, cluster indices, LAM, sensitivity sweeps and the HTML."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import calinski_harabasz_score

from girml.baselines import BASELINES
from girml.config import DegradationsConfig, InterpretConfig, ModelConfig, parse_section
from girml.interpret import render
from girml.interpret.attribution import diffusion_index, gini, lam, textured_window
from girml.interpret.features import (
    calinski_harabasz,
    feature_layers,
    nearest_seen,
    pooled_features,
    standardize,
    tsne_map,
)
from girml.interpret.render import render_html
from girml.interpret.report import generalization_section, log_report, run_interpretation
from girml.interpret.sections import Section, format_value
from girml.interpret.sensitivity import (
    main_param,
    model_batch_restorer,
    per_image,
    sensitivity_curve,
    sweep_values,
)
from girml.models import build_model
from tests.factories import synthesize_tiny, textured_image

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
CFG = InterpretConfig(
    images_per_group=3,
    tsne_perplexity=5,
    lam_window=8,
    lam_steps=8,
    lam_images_per_family=1,
    sensitivity_levels=4,
    sensitivity_images=2,
    comparisons_per_family=1,
)
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


def nonlinear_tiny_model(seed: int = 0) -> torch.nn.Module:
    """A tiny NAFNet that is not the identity (its last conv starts at zero) and whose blocks
    are active (beta = gamma = 0 makes a fresh one linear)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # the default init draws from the global RNG
        torch.manual_seed(seed)
        model = build_model(TINY)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("beta", "gamma", "ending.weight")):
                param.copy_(0.5 * torch.randn(param.shape, generator=gen))
    return model.eval()


def data_uri_images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clean/ and bench/ (4 images of 32x32 per suite/family) from the synthesize stage."""
    return synthesize_tiny(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def evaluated(data: Path) -> tuple[Path, Path]:
    """A fake ``eval.json`` and ``per_family.csv`` with a specialist, as evaluate writes them."""
    eval_json = data / "metrics" / "eval.json"
    eval_json.parent.mkdir(exist_ok=True)
    metrics = {
        "psnr_y.single-id": 27.5,
        "psnr_gain.single-id": 1.25,
        "psnr_y.unseen": 22.0,
        "psnr_gain.unseen": 0.1,
        "gir_score": 0.7,
        "generalization_gap": 1.1,
        "harm_rate.single-id": 0.25,
        "harm_rate.unseen": 0.5,
        "harm.clean_psnr_y.single-id": 41.5,
        "harm.worst_family_gain": -0.4,
        "best_baseline.noise.name": "nlm",
        "baselines.identity.gir_score": 0.0,
        "champion.promoted": True,
        "champion.reasons": ["first model"],
    }
    eval_json.write_text(json.dumps(metrics))
    per_family = data / "metrics" / "per_family.csv"
    per_family.write_text(
        "method,suite,family,n,psnr_y,psnr_y_input,psnr_gain\n"
        "model,single-id,noise,4,25.0,20.0,5.0\n"
        "model,single-ood,noise,4,21.0,18.0,3.0\n"
        "specialist:noise,single-id,noise,4,26.0,20.0,6.0\n"
        "specialist:noise,single-ood,noise,4,20.0,18.0,2.0\n"
    )
    return eval_json, per_family


@pytest.fixture(scope="module")
def report(
    data: Path, spec: DegradationsConfig, evaluated: tuple[Path, Path], tmp_path_factory
) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("report")
    result = run_interpretation(
        nonlinear_tiny_model(),
        data / "bench",
        spec,
        CFG,
        out,
        eval_json=evaluated[0],
        per_family_csv=evaluated[1],
        clean_dir=data / "clean",
    )
    return out, result


# --------------------------------------------------------------------------- features


def test_features_have_the_layer_shape() -> None:
    model = build_model(ModelConfig(width=4, enc_blocks=[1, 1], middle_blocks=1)).eval()
    assert list(feature_layers(model)) == ["enc1", "enc2", "bottleneck", "dec1", "dec2"]
    x = torch.rand(3, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    expected = {"enc1": 4, "enc2": 8, "bottleneck": 16, "dec1": 4, "dec2": 8}
    for layer, channels in expected.items():
        feats, out = pooled_features(model, x, layer)
        assert feats.shape == (3, channels)
        assert torch.equal(out, model(x).detach().clamp(0, 1))  # the hook changes nothing
    plain = build_model(ModelConfig(type="plain_cnn", width=6, plain_blocks=1)).eval()
    assert pooled_features(plain, x, "bottleneck")[0].shape == (3, 6)
    with pytest.raises(ValueError, match=r"layer must be one of .*'enc1'.*got 'enc9'"):
        pooled_features(model, x, "enc9")
    with pytest.raises(ValueError, match="must be"):
        pooled_features(model, x[:, :1], "enc1")


def test_calinski_harabasz_matches_sklearn_and_separates_clusters() -> None:
    rng = np.random.default_rng(0)
    labels = [f"c{i % 3}" for i in range(30)]
    centres = {"c0": 0.0, "c1": 3.0, "c2": -3.0}
    x = rng.normal(size=(30, 5)) + np.array([[centres[c]] * 5 for c in labels])
    ours = calinski_harabasz(x, labels)
    assert ours == pytest.approx(calinski_harabasz_score(x, labels), rel=1e-12)
    shuffled = list(rng.permutation(labels))
    assert ours > 10 * calinski_harabasz(x, shuffled)  # real clusters score far higher
    same = np.ones((4, 2))
    assert calinski_harabasz(same, ["a", "a", "b", "b"]) == calinski_harabasz_score(
        same, ["a", "a", "b", "b"]
    )
    with pytest.raises(ValueError, match="distinct labels"):
        calinski_harabasz(x, ["a"] * 30)
    with pytest.raises(ValueError, match="one label per row"):
        calinski_harabasz(x, labels[:-1])


def test_tsne_is_seeded_and_caps_perplexity() -> None:
    x = standardize(np.random.default_rng(1).normal(size=(6, 4)))
    first = tsne_map(x, perplexity=30.0, seed=3)  # capped to n - 1 = 5
    assert first.shape == (6, 2)
    np.testing.assert_array_equal(first, tsne_map(x, perplexity=30.0, seed=3))
    with pytest.raises(ValueError, match="N >= 3"):
        tsne_map(x[:2], perplexity=5.0, seed=0)


def test_unseen_family_is_nearest_to_the_similar_seen_one() -> None:
    rng = np.random.default_rng(2)
    means = {"noise": 0.0, "blur": 10.0, "jpeg": 20.0, "rain": 1.0}
    labels = [name for name in means for _ in range(5)]
    x = rng.normal(scale=0.3, size=(20, 3)) + np.array([[means[n]] * 3 for n in labels])
    (row,) = nearest_seen(x, labels, ["noise", "blur", "jpeg"], ["rain"])
    assert row["family"] == "rain" and row["nearest"] == "noise"
    assert row["distance"] == pytest.approx(np.sqrt(3), rel=0.3)
    assert row["distance_ratio"] < 0.2  # far closer to noise than seen families are apart


# --------------------------------------------------------------------------- attribution


def test_lam_is_complete_and_converges() -> None:
    """Completeness: sum(attribution) = F(x) - F(baseline) up to the Riemann sum's error.

    Tolerance: the midpoint rule's error falls as 1/steps**2 on a smooth model (NAFNet has no
    ReLU). On six random tiny nonlinear NAFNets it measured 5e-6 to 1.5e-4 of |F(x) - F(x')|
    with 32 steps (float32 rounding is far below that), so 1e-3 leaves a wide margin while a
    wrongly weighted path (off by whole segments) misses it by orders of magnitude.
    """
    model = nonlinear_tiny_model(1)
    image = torch.from_numpy(textured_image(4, 24, 24)).permute(2, 0, 1)[None].float() / 255
    window = (8, 8, 6)
    coarse = lam(model, image, window, steps=1)
    fine = lam(model, image, window, steps=32)
    delta = fine.objective - fine.objective_baseline
    assert abs(delta) > 1.0
    assert abs(fine.completeness_error) <= 1e-3 * abs(delta)
    assert abs(coarse.completeness_error) > 10 * abs(fine.completeness_error)  # it converges
    assert fine.map.shape == (3, 24, 24)
    again = lam(model, image, window, steps=32, batch_size=5)  # batching changes nothing
    np.testing.assert_allclose(again.map, fine.map, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="does not fit"):
        lam(model, image, (20, 20, 6), steps=4)
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        lam(model, image, window, steps=0)
    with pytest.raises(ValueError, match="sigma_max must be > 0"):
        lam(model, image, window, steps=4, sigma_max=0.0)


def test_gini_and_diffusion_index() -> None:
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.eye(1, 10).ravel()) == pytest.approx(0.9)
    assert gini(np.zeros(4)) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        gini(np.array([1.0, -1.0]))
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert 0.0 <= diffusion_index(rng.normal(size=(3, 8, 8))) <= 100.0
    focused = np.zeros((3, 8, 8))
    focused[:, 4, 4] = 1.0
    spread = np.ones((3, 8, 8))
    assert diffusion_index(focused) < 5.0 < 95.0 < diffusion_index(spread)
    with pytest.raises(ValueError, match=r"\(C,H,W\)"):
        diffusion_index(np.ones((8, 8)))


def test_textured_window_finds_the_busy_patch() -> None:
    image = np.full((32, 32, 3), 128, dtype=np.uint8)
    image[16:, 16:] = textured_image(0, 16, 16)
    y, x, size = textured_window(image, 8)
    assert size == 8 and y >= 12 and x >= 12
    with pytest.raises(ValueError, match="window size"):
        textured_window(image, 40)


# --------------------------------------------------------------------------- sensitivity


def test_sweeps_cover_id_and_ood_and_run_past_them() -> None:
    spec = parse_section(SWEEP_SPEC, "degradations", DegradationsConfig)
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
    with pytest.raises(ValueError, match="unknown family"):
        main_param(spec, "snow")


def test_sensitivity_curve_identity_gains_nothing_and_inputs_degrade() -> None:
    spec = parse_section(SWEEP_SPEC, "degradations", DegradationsConfig)
    param = main_param(spec, "noise")
    clean = [textured_image(i, 24, 24) for i in range(2)]
    values = [10.0, 40.0, 90.0]
    identity = {"identity": per_image(np.copy)}
    curves = sensitivity_curve(identity, clean, spec, param, values, seed=0)
    assert curves["identity"] == [0.0, 0.0, 0.0]
    assert curves["psnr_y_input"] == sorted(curves["psnr_y_input"], reverse=True)
    again = sensitivity_curve(identity, clean, spec, param, values, seed=0)
    assert again == curves  # seeded noise
    restore = model_batch_restorer(nonlinear_tiny_model())
    batched = restore(clean)
    for image, out in zip(clean, batched, strict=True):
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert np.abs(out.astype(int) - restore([image])[0]).max() <= 1  # float rounding only
    mixed = restore([clean[0], textured_image(5, 16, 20)])  # sizes differ: one by one
    assert [m.shape for m in mixed] == [(24, 24, 3), (16, 20, 3)]


# --------------------------------------------------------------------------- report


def test_report_numbers(report: tuple[Path, dict]) -> None:
    out, result = report
    assert json.loads((out / "interpretation.json").read_text()) == result
    feats = result["features"]
    # 14 tiny suite/family groups (2 clean) of 4 images, 3 taken from each; bottleneck 2 * width
    assert feats["n"] == 14 * 3 and feats["channels"] == 8 and len(feats["points"]) == 42
    assert {p["family"] for p in feats["points"] if p["suite"] == "unseen-content"} >= {"clean"}
    assert {p["category"] for p in feats["points"]} == {"cat0", "cat1", "scientific"}
    ch = feats["calinski_harabasz"]
    assert ch["degradation"] > 0 and ch["content"] > 0
    assert ch["ratio"] == pytest.approx(ch["degradation"] / ch["content"])
    assert {row["family"] for row in feats["unseen"]} == {"haze", "blur+jpeg"}
    assert all("clean" not in row["distances"] for row in feats["unseen"])  # not a degradation
    groups = result["lam"]["groups"]
    assert set(groups) == {f"single-id/{f}" for f in ("noise", "blur", "jpeg")} | {
        "unseen/haze",
        "unseen/blur+jpeg",
    }
    for group in groups.values():
        assert 0.0 <= group["di"] <= 100.0
    curves = result["sensitivity"]["families"]
    assert set(curves) == {"noise", "blur", "jpeg"}  # the trained families
    for family, curve in curves.items():
        values = curve["values"]
        assert len(curve["gain"]["model"]) == len(values) >= CFG.sensitivity_levels
        for bounds in (curve["id_range"], curve["ood_range"]):
            assert min(values) <= bounds[0] and bounds[1] <= max(values)
            assert any(bounds[0] <= v <= bounds[1] for v in values), family
    assert curves["noise"]["baseline"] == "nlm"  # named by eval.json
    labels = {seg["label"] for seg in curves["noise"]["bench_segments"]}
    assert labels == {
        "unified (bench single-id)",
        "unified (bench single-ood)",
        "specialist (bench single-id)",
        "specialist (bench single-ood)",
    }
    comparisons = result["comparisons"]
    assert [c["case"] for c in comparisons["single-id/noise"]] == ["worst", "best"]
    assert [c["case"] for c in comparisons["single-id/clean"]] == ["worst", "best"]
    gen = result["generalization"]
    assert gen["gir_score"] == 0.7 and gen["suites"]["single-id"]["psnr_gain"] == 1.25
    assert gen["harm"] == {
        "suites": {
            "single-id": {"harm_rate": 0.25, "clean_psnr_y": 41.5},
            "unseen": {"harm_rate": 0.5, "clean_psnr_y": None},
        },
        "worst_family_gain": -0.4,
    }
    assert gen["champion"]["promoted"] is True


def test_report_html_is_self_contained(report: tuple[Path, dict]) -> None:
    out, _ = report
    page = (out / "index.html").read_text()
    images = data_uri_images(page)
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert len(images) == len(figures) >= 8
    assert "tsne.png" in figures and "sensitivity.png" in figures
    for png in images:
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG" and min(im.size) > 50
    assert page.count("<img ") == len(images)
    for attr in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page):
        assert attr.startswith(("data:image/png;base64,", "#")), attr[:60]
    assert "<link" not in page and "<script" not in page and "url(" not in page


SECTION_TITLES = {
    "features": "Deep degradation representations",
    "lam": "Local attribution maps",
    "sensitivity": "Degradation sensitivity",
    "comparisons": "Visual comparisons",
    "generalization": "Generalization",
}
XSS = "<script>alert('x')</script> & \"q\""


def test_report_html_has_every_section_in_order(report: tuple[Path, dict]) -> None:
    out, result = report
    page = (out / "index.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</body></html>")
    assert "<h1>What the GIR model learned</h1>" in page
    starts = []
    for key, title in SECTION_TITLES.items():
        assert f'<li><a href="#{key}">{title}</a></li>' in page
        starts.append(page.index(f'<section id="{key}"><h2>{title}</h2>'))
    assert starts == sorted(starts)
    assert page.count("<section ") == page.count("</section>") == len(SECTION_TITLES)
    assert f"<tr><td>benchmark images used</td><td>{result['meta']['benchmark images used']}<" in (
        page
    )
    assert "<td>0.700</td>" in page  # gir_score of eval.json, formatted by the fmt filter


def test_render_html_escapes_every_value() -> None:
    sec = Section("s", XSS)
    sec.para(XSS)
    sec.unavailable(XSS)
    sec.figure(XSS, b"\x89PNG", XSS)
    sec.table([XSS], [[XSS], [[XSS, 1.0]]])
    page = render_html([sec], {XSS: XSS})
    assert "<script" not in page and "alert('x')" not in page and '"q"' not in page
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;q&#34;"
    # title (toc + h2), paragraph, unavailable, img alt, caption, th, 2 cells, meta key + value
    assert page.count(escaped) == 11
    assert f'<p class="na">not available: {escaped}</p>' in page
    assert f'<img src="data:image/png;base64,iVBORw==" alt="{escaped}">' in page
    assert f"<td>{escaped}; 1.000</td>" in page


def test_generalization_values_are_escaped_in_the_page() -> None:
    sec = generalization_section({"gir_score": 0.5, "champion.reasons": [XSS]})
    page = render_html([sec], {})
    assert "<script" not in page and "&lt;script&gt;" in page
    assert sec.data["champion"]["reasons"] == [XSS]  # the JSON keeps the raw text


def test_render_html_renders_each_block_kind() -> None:
    sec = Section("k", "Kinds")
    sec.para("plain text")
    sec.figure("a.png", b"png", "a caption")
    sec.table(["name", "value"], [["x", 1.23456], ["y", None], ["z", True], ["w", math.nan]])
    sec.unavailable("no data")
    page = render_html([sec], {"seconds": 1.25})
    body = re.sub(r">\s+<", "><", page[page.index('<section id="k">') :])
    assert body.startswith(
        '<section id="k"><h2>Kinds</h2><p>plain text</p>'
        '<figure><img src="data:image/png;base64,cG5n" alt="a.png">'
        "<figcaption>a caption</figcaption></figure>"
        "<table><thead><tr><th>name</th><th>value</th></tr></thead><tbody>"
        "<tr><td>x</td><td>1.235</td></tr><tr><td>y</td><td>-</td></tr>"
        "<tr><td>z</td><td>true</td></tr><tr><td>w</td><td>-</td></tr></tbody></table>"
        '<p class="na">not available: no data</p></section>'
    )
    assert "<tr><td>seconds</td><td>1.250</td></tr>" in page
    assert sec.figures == {"a.png": b"png"}
    assert sec.data == {"available": False, "reason": "no data"}


def test_format_value() -> None:
    assert format_value(1.0) == "1.000" and format_value(2) == "2"
    assert format_value(None) == format_value(math.inf) == format_value(math.nan) == "-"
    assert format_value(False) == "false"
    assert format_value(["a", 0.5, None]) == "a; 0.500; -"


def test_missing_template_raises_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "TEMPLATES_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"template 'report.html.j2' not found in "):
        render_html([Section("s", "S")], {})
    shutil.copy(Path(render.__file__).parent / "templates" / "report.html.j2", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"template 'blocks.html.j2' not found in "):
        render_html([Section("s", "S")], {})


def test_missing_evaluation_outputs_degrade_gracefully(
    data: Path, spec: DegradationsConfig, tmp_path: Path
) -> None:
    cfg = CFG.model_copy(update={"images_per_group": 2, "lam_steps": 4, "sensitivity_levels": 3})
    result = run_interpretation(
        nonlinear_tiny_model(),
        data / "bench",
        spec,
        cfg,
        tmp_path / "report",
        eval_json=tmp_path / "missing.json",
        per_family_csv=tmp_path / "missing.csv",
    )
    assert result["generalization"]["available"] is False
    assert result["sensitivity"]["families"]["noise"]["bench_segments"] == []
    noise_baselines = [n for n in BASELINES.names() if BASELINES.meta(n)["family"] == "noise"]
    assert result["sensitivity"]["families"]["noise"]["baseline"] in noise_baselines  # swept
    page = (tmp_path / "report" / "index.html").read_text()
    assert "not available: metrics/eval.json is missing: run `dvc repro evaluate`" in page
    assert generalization_section(None).data["available"] is False
    with pytest.raises(ValueError, match="layer must be one of"):
        run_interpretation(
            nonlinear_tiny_model(),
            data / "bench",
            spec,
            cfg.model_copy(update={"layer": "middle"}),
            tmp_path / "bad",
        )


def test_clean_only_bench_is_interpreted(
    data: Path, spec: DegradationsConfig, tmp_path: Path
) -> None:
    """A bench holding only the clean family (nothing degraded) still gives a report."""
    bench = tmp_path / "bench"
    for folder in (data / "bench").glob("*/clean"):
        shutil.copytree(folder, bench / folder.parent.name / "clean")
    cfg = CFG.model_copy(update={"images_per_group": 2, "lam_steps": 4, "sensitivity_levels": 3})
    result = run_interpretation(nonlinear_tiny_model(), bench, spec, cfg, tmp_path / "report")
    assert result["features"]["n"] == 4 and result["features"]["unseen"] == []
    assert result["lam"]["available"] is False  # LAM needs a degradation
    assert set(result["sensitivity"]["families"]) == {"noise", "blur", "jpeg"}
    assert set(result["comparisons"]) == {"single-id/clean", "unseen-content/clean"}
    assert (tmp_path / "report" / "index.html").is_file()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(report: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = report
    page = (out / "index.html").read_text()
    count = (
        "<script>window.addEventListener('load', () => { const imgs = [...document.images];"
        " document.title = imgs.filter(i => i.complete && i.naturalWidth > 0).length + '/'"
        " + imgs.length; });</script></body>"
    )
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", count))
    flags = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,3000", probe.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
    assert pixels.std() > 5  # not blank
    dom = subprocess.run(
        [*flags, "--dump-dom", probe.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    n = len(data_uri_images(page))
    assert f"<title>{n}/{n}</title>" in dom


def test_log_report_attaches_the_folder_to_the_run(
    report: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from girml.tracking.mlflow import start_run

    out, result = report
    before = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    try:
        with start_run("gir", tmp_path, log_system_metrics=False) as run:
            run_id = run.info.run_id
        log_report(out, run_id, tmp_path)
        client = MlflowClient()
        names = {Path(a.path).name for a in client.list_artifacts(run_id, "interpretation")}
        assert {"index.html", "interpretation.json", "figures"} <= names
        logged = client.get_run(run_id).data.metrics
        ratio = result["features"]["calinski_harabasz"]["ratio"]
        assert logged["interpret.ch_ratio"] == pytest.approx(ratio)
        assert {"interpret.di.single-id/noise", "interpret.di.unseen/blur_jpeg"} <= set(logged)
    finally:
        mlflow.set_tracking_uri(before)
