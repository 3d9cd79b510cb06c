"""Synthetic scenes: deterministic, any size, six categories, and the property that
makes a category-routed ensemble worth having."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

from colourmodels.data.categories import CATEGORIES
from colourmodels.data.folders import read_folder
from colourmodels.data.images import is_grayscale
from colourmodels.data.synthetic import encode, generate, make_scene, write_synthetic


def test_same_seed_same_bytes_other_seed_other_pixels():
    first = [encode(s.image) for s in generate(2, 40, seed=11)]
    again = [encode(s.image) for s in generate(2, 40, seed=11)]
    other = [encode(s.image) for s in generate(2, 40, seed=12)]
    assert first == again
    assert all(a != b for a, b in zip(first, other))
    # a larger set extends a smaller one
    longer = [encode(s.image) for s in generate(3, 40, seed=11)]
    assert [longer[i * 3 + j] for i in range(6) for j in range(2)] == first


@pytest.mark.parametrize("size", [16, 32, 57, 256])
def test_sizes_and_categories(size):
    scenes = generate(1, size, seed=0)
    assert [s.category for s in scenes] == list(CATEGORIES)
    for scene in scenes:
        assert scene.image.mode == "RGB" and scene.image.size == (size, size)
        assert not is_grayscale(scene.image)
    assert scenes[0].name == "animals_00000"


def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="'dogs'"):
        make_scene("dogs", 32, rng)
    with pytest.raises(ValueError, match="size"):
        make_scene("city", 8, rng)
    with pytest.raises(ValueError, match="image_format"):
        write_synthetic("/nonexistent", 1, 32, image_format="gif")


def test_write_synthetic_is_a_category_folder(tmp_path):
    records = write_synthetic(tmp_path / "png", 2, 32, seed=5)
    assert len(records) == 12
    scan = read_folder(tmp_path / "png", decode=True)
    assert scan.categories == sorted(CATEGORIES)
    assert sorted(scan.records) == sorted(records)
    assert scan.counts() == {c: 2 for c in sorted(CATEGORIES)}
    assert (tmp_path / "png" / "people" / "people_00001.png").is_file()
    again = write_synthetic(tmp_path / "again", 2, 32, seed=5)
    assert [r.path.read_bytes() for r in again] == [r.path.read_bytes() for r in records]
    jpegs = write_synthetic(tmp_path / "jpg", 1, 32, seed=5, image_format="jpeg")
    assert all(r.path.suffix == ".jpg" and Image.open(r.path).format == "JPEG" for r in jpegs)


# ----------------------------------------------------------------- the property


def _box3(x: np.ndarray) -> np.ndarray:
    padded = np.pad(x, 1, mode="edge")
    n, m = x.shape
    return sum(padded[i : i + n, j : j + m] for i in range(3) for j in range(3)) / 9.0


def _structure_features(light: np.ndarray) -> np.ndarray:
    """Luminance-structure features: where the spectral power lies (4 radial bands x
    3 orientations: horizontal, vertical, diagonal) and how much of the image is flat,
    textured or edged."""
    n = light.shape[0]
    power = np.abs(np.fft.fft2(light - light.mean())) ** 2
    k = np.fft.fftfreq(n)
    ky, kx = np.meshgrid(k, k, indexing="ij")
    radius = np.hypot(kx, ky)
    theta = np.mod(np.arctan2(ky, kx), np.pi)
    sector = np.where(
        np.minimum(theta, np.pi - theta) < np.pi / 8,
        0,
        np.where(np.abs(theta - np.pi / 2) < np.pi / 8, 1, 2),
    )
    band = np.digitize(radius, [1e-9, 0.06, 0.15, 0.3, 0.75]) - 1
    spectral = np.array(
        [power[(band == b) & (sector == s)].sum() for b in range(4) for s in range(3)]
    )
    gy, gx = np.gradient(_box3(light))
    magnitude = np.hypot(gx, gy)
    texture = [(magnitude < 0.3).mean(), (magnitude > 3).mean()]
    return np.r_[np.log(spectral / spectral.sum() + 1e-4), texture]


@pytest.fixture(scope="module")
def scenes_lab():
    scenes = generate(30, 48, seed=0)
    labels = np.array([CATEGORIES.index(s.category) for s in scenes])
    labs = np.stack([rgb2lab(np.asarray(s.image) / 255.0) for s in scenes])
    return labels, labs


def test_luminance_histograms_overlap(scenes_lab):
    labels, labs = scenes_lab
    bins = np.linspace(0, 100, 21)
    hist = []
    for c in range(6):
        h, _ = np.histogram(labs[labels == c][..., 0], bins)
        hist.append(h / h.sum())
    overlap = np.array([[np.minimum(a, b).sum() for b in hist] for a in hist])
    assert overlap.min() > 0.6, overlap.round(2)


def test_hue_differs_by_category(scenes_lab):
    labels, labs = scenes_lab
    means = np.array([labs[labels == c][..., 1:].reshape(-1, 2).mean(0) for c in range(6)])
    assert (np.hypot(means[:, 0], means[:, 1]) > 20).all()  # each category is colourful
    distances = np.hypot(*(means[:, None, :] - means[None, :, :]).transpose(2, 0, 1))
    assert distances[~np.eye(6, dtype=bool)].min() > 15  # and differently so


def test_luminance_predicts_colour_only_within_a_category(scenes_lab):
    labels, labs = scenes_lab
    light = labs[..., 0].reshape(-1)
    ab = labs[..., 1:].reshape(-1, 2)
    category = np.repeat(labels, labs.shape[1] * labs.shape[2])
    level = np.clip((light / 5).astype(int), 0, 19)
    one_model = np.zeros((20, 2))
    per_category = np.zeros((6, 20, 2))
    for b in range(20):
        in_bin = level == b
        if in_bin.any():
            one_model[b] = ab[in_bin].mean(0)
        for c in range(6):
            mask = in_bin & (category == c)
            if mask.any():
                per_category[c, b] = ab[mask].mean(0)
    err_grey = np.abs(ab).mean()
    err_one = np.abs(ab - one_model[level]).mean()
    err_per = np.abs(ab - per_category[category, level]).mean()
    # the best single lightness -> colour map is hardly better than predicting grey...
    assert err_one > 0.8 * err_grey
    # ...while knowing the category makes lightness determine the colour
    assert err_per < 0.25 * err_one


def test_category_is_recognisable_from_luminance(scenes_lab):
    labels, labs = scenes_lab
    features = np.stack([_structure_features(lab[..., 0]) for lab in labs])
    train = np.arange(len(labels)) % 2 == 0
    mean, std = features[train].mean(0), features[train].std(0) + 1e-9
    z = (features - mean) / std
    distances = ((z[~train, None, :] - z[None, train, :]) ** 2).sum(-1)
    predicted = labels[train][distances.argmin(1)]
    accuracy = (predicted == labels[~train]).mean()
    assert accuracy >= 0.9, accuracy  # 1-nearest-neighbour on 12 + 2 features; chance 1/6
