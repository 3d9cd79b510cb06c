"""The reference predictors: no colour is exactly zero chroma (a gray image), the category
means are the means of the training images' chroma."""

from __future__ import annotations

import pytest
import torch

from colourmodels.colour import luma_chroma_to_rgb, rgb_to_luma_chroma
from colourmodels.references import CategoryChromaMeans, no_colour_chroma


@pytest.mark.parametrize("space", ["lab", "yuv"])
def test_no_colour_is_zero_chroma_and_a_gray_image(space):
    rgb = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    luma, chroma = rgb_to_luma_chroma(rgb, space)
    zero = no_colour_chroma(chroma)
    assert zero.shape == chroma.shape and zero.dtype == chroma.dtype
    assert torch.equal(zero, torch.zeros_like(chroma))  # a = b = 0 (U = V = 0) exactly
    gray = luma_chroma_to_rgb(luma, zero, space)
    assert torch.allclose(gray[:, 0], gray[:, 1], atol=1e-4)
    assert torch.allclose(gray[:, 1], gray[:, 2], atol=1e-4)


def test_no_colour_refuses_what_is_not_chroma():
    with pytest.raises(ValueError, match="2 channel"):
        no_colour_chroma(torch.zeros(1, 3, 4, 4))


def test_category_means_are_the_means_of_the_training_images():
    means = CategoryChromaMeans(["a", "b", "c"])
    first = torch.tensor([[0.1, -0.2], [0.3, 0.0], [0.5, 0.4]])  # categories a, a, b
    batch = first[:, :, None, None].expand(3, 2, 4, 4).clone()
    batch[0, 0, 0, 0] += 1.6  # one pixel of 16: the image's mean a rises by 0.1
    means.add(batch, [0, 0, 1])
    means.add(torch.full((1, 2, 4, 4), -0.6), [-1])  # no category: the overall mean only
    table = means.means()
    assert table[0].tolist() == pytest.approx([(0.2 + 0.3) / 2, -0.1])
    assert table[1].tolist() == pytest.approx([0.5, 0.4])
    overall = [(0.2 + 0.3 + 0.5 - 0.6) / 4, (-0.2 + 0.0 + 0.4 - 0.6) / 4]
    assert table[2].tolist() == pytest.approx(overall)  # "c" has no image: the overall mean
    assert table[3].tolist() == pytest.approx(overall)
    assert means.counts() == {"a": 2, "b": 1, "c": 0} and means.images == 4

    like = torch.zeros(4, 2, 3, 3)
    predicted = means.predict(torch.tensor([1, 0, -1, 2]), like)
    assert predicted.shape == like.shape
    assert predicted[0, :, 2, 2].tolist() == pytest.approx([0.5, 0.4])
    assert predicted[1].mean(dim=(1, 2)).tolist() == pytest.approx([0.25, -0.1])
    assert predicted[2, :, 0, 0].tolist() == pytest.approx(overall)
    assert predicted[3, :, 1, 1].tolist() == pytest.approx(overall)
    assert set(means.as_dict()) == {"a", "b", "c", ""}


def test_category_means_say_what_is_wrong():
    means = CategoryChromaMeans(["a"])
    with pytest.raises(ValueError, match="no training image"):
        means.means()
    with pytest.raises(ValueError, match="categories given"):
        means.add(torch.zeros(2, 2, 4, 4), [0])
    with pytest.raises(ValueError, match="category indices"):
        means.add(torch.zeros(1, 2, 4, 4), [3])


def _hand_set():
    """One 8×8 LAB image: a 2×2 pattern of normalised chroma tiled 4×4, so its means are
    the pattern's; luminance 50 (normalised 0)."""
    a = torch.tensor([[0.1, -0.2], [0.3, 0.0]])
    b = torch.tensor([[0.05, 0.05], [-0.1, 0.2]])
    chroma = torch.stack([a, b])[None].repeat(1, 1, 4, 4)
    luma = torch.zeros(1, 1, 8, 8)
    return luma, chroma


def test_the_no_colour_l1_is_the_hand_computed_one():
    from colourmodels.evaluation import ReferenceScores

    luma, chroma = _hand_set()
    means = CategoryChromaMeans(["sea"])
    means.add(torch.tensor([0.1, 0.05])[None, :, None, None].expand(1, 2, 4, 4), [0])
    scores = ReferenceScores("lab", means)
    scores.add(
        luma=luma,
        true_chroma=chroma,
        true_rgb=luma_chroma_to_rgb(luma, chroma, "lab"),
        category_index=[0],
        categories=["sea"],
    )
    stored = scores.stored()
    # |a| = .1, .2, .3, 0 and |b| = .05, .05, .1, .2: sum 1.0 over 8 values; λ = 100.
    no_colour = stored["no_colour"]["test"]
    assert no_colour["l1"] == pytest.approx(12.5, rel=1e-6)
    assert no_colour["chroma_mae"] == pytest.approx(110 * 1.0 / 8, rel=1e-6)  # ab units
    assert no_colour["colourfulness"] == pytest.approx(0.0, abs=0.05)
    assert no_colour["n"] == 1 and set(stored["no_colour"]["per_category"]) == {"sea"}
    # Mean chroma (.1, .05): |a − .1| = 0, .3, .2, .1 and |b − .05| = 0, 0, .15, .15: sum .9.
    assert stored["category_mean_chroma"]["test"]["l1"] == pytest.approx(11.25, rel=1e-6)
    assert stored["category_mean_chroma"]["means"]["sea"] == pytest.approx([0.1, 0.05])


@pytest.mark.parametrize(
    ("own", "truth", "expected"),
    [(5.0, 29.0, True), (14.4, 29.0, True), (14.6, 29.0, False), (35.0, 29.0, False)],
)
def test_far_less_colourful_is_below_half_the_truths_colourfulness(own, truth, expected):
    from colourmodels.references import far_less_colourful

    assert far_less_colourful(own, truth) is expected


def test_far_less_colourful_is_unknown_without_a_colourful_truth():
    from colourmodels.references import far_less_colourful

    assert far_less_colourful(None, 29.0) is None
    assert far_less_colourful(5.0, None) is None
    assert far_less_colourful(0.0, 0.0) is None  # a gray truth: nothing to fall short of


def test_category_means_come_back_equal_from_their_state():
    import json

    means = CategoryChromaMeans(["a", "b"])
    means.add(torch.rand(5, 2, 4, 4, generator=torch.Generator().manual_seed(1)), [0, 1, 1, -1, 0])
    again = CategoryChromaMeans.from_state(json.loads(json.dumps(means.state())))
    assert torch.equal(again.means(), means.means())  # exactly: JSON keeps float64
    assert again.counts() == means.counts() and again.images == means.images
    like = torch.zeros(3, 2, 2, 2)
    assert torch.equal(again.predict([1, -1, 0], like), means.predict([1, -1, 0], like))
