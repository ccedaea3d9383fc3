"""girml.data.layouts: each public set found among file names in its real layout(s)."""

from __future__ import annotations

import pytest

from girml.data.layouts import LAYOUTS, LayoutError, match_layout
from tests.protocol_sets import FILES, IDS


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_set_is_found_in_its_published_layout(name: str) -> None:
    """The tiny copies lie as the sets are published, decoys included (CBSD68's noisy folders,
    SOTS's indoor split, GoPro's blur_gamma, LOL's training pairs)."""
    match = match_layout(sorted(FILES[name]), LAYOUTS[name])
    assert match is not None
    assert [image.id for image in match.images] == IDS[name]
    kind = LAYOUTS[name].kind
    for image in match.images:
        assert (image.lq is None) == (kind == "clean") and (image.gt is None) == (kind == "real")
        assert "noisy" not in str(image.gt) and "indoor" not in str(image.lq)
        assert "blur_gamma" not in str(image.lq) and "our485" not in str(image.lq)


def test_the_test_harnesses_input_target_layout_is_read_too() -> None:
    """AirNet/PromptIR keep Rain100L as input/X + target/X and SOTS as input/<id>_A_b.jpg +
    target/<id>.png; InstructIR keeps SOTS as IN/X + GT/X."""
    rain = match_layout(["derain/input/1.png", "derain/target/1.png"], LAYOUTS["rain100l"])
    assert rain is not None and rain.root == "derain"
    assert [(i.lq, i.gt) for i in rain.images] == [("derain/input/1.png", "derain/target/1.png")]
    sots = match_layout(
        ["dehaze/input/0001_0.8_0.2.jpg", "dehaze/target/0001.png"], LAYOUTS["sots-outdoor"]
    )
    assert sots is not None and sots.images[0].gt == "dehaze/target/0001.png"
    instruct = match_layout(["SOTS/IN/0001.jpg", "SOTS/GT/0001.jpg"], LAYOUTS["sots-outdoor"])
    assert instruct is not None and instruct.images[0].id == "0001"


def test_several_hazy_images_share_one_ground_truth_by_their_id_prefix() -> None:
    names = ["hazy/0001_0.8_0.2.jpg", "hazy/0001_1_0.08.jpg", "gt/0001.png"]
    match = match_layout(names, LAYOUTS["sots-outdoor"])
    assert match is not None and {i.gt for i in match.images} == {"gt/0001.png"}
    assert len(match.images) == 2


def test_an_input_without_its_ground_truth_is_an_error_naming_it() -> None:
    names = [
        "Rain100L/rainy/rain-001.png",
        "Rain100L/norain-001.png",
        "Rain100L/rainy/rain-002.png",
    ]
    with pytest.raises(LayoutError, match=r"rainy/rain-002\.png \(no norain-002\.png or"):
        match_layout(names, LAYOUTS["rain100l"])


def test_files_in_no_known_layout_match_nothing() -> None:
    assert match_layout(["photos/a.png", "photos/b.png"], LAYOUTS["rain100l"]) is None
    assert match_layout(["notes.txt"], LAYOUTS["kodak24"]) is None
    # a folder of your own: any images, anywhere, ids from their paths
    mine = match_layout(["a/x.png", "b/y.jpg"], LAYOUTS["clean"])
    assert mine is not None and [i.id for i in mine.images] == ["a-x", "b-y"]
