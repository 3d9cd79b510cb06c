"""Synthetic scenes: a built-in data set on which context helps colourisation.

The six categories of :data:`~colourmodels.data.categories.CATEGORIES` each get a
scene generator. The scenes are designed so that a classifier-routed ensemble of
per-category colourisers (method section 5) has something real to gain over a
single generator:

1. **The category is recognisable from luminance structure.** Each category draws a
   distinctive luminance pattern, scaled to the image so it reads the same at 32 and
   at 256 px:

   ==========  ==============================================================
   animals     a few soft-edged ellipses ("blobs") on a flat background
   city        axis-aligned buildings rising from the bottom, each with a
               regular grid of windows (horizontal and vertical edges)
   nature      isotropic multi-octave value noise (foliage-like texture,
               no flat areas)
   people      concentric rings around one or two centres
   scenery     a horizon: smooth vertical gradients above and below it, with
               faint horizontal ripples in the lower part
   others      straight diagonal stripes at a random angle
   ==========  ==============================================================

2. **Luminance values are shared, hues are not.** Every category draws its
   lightness values from the same distribution (CIE L* roughly uniform on
   [30, 80]), so the categories' luminance histograms overlap. Colour is painted
   in CIE L*a*b*: a pixel of lightness ``L`` in category ``c`` gets the hue angle
   ``h_c(L) = h0_c + 25 deg * (L - 55) / 25`` (plus a per-image jitter of at most
   8 deg) at a per-image chroma of 24-34. The base hues ``h0_c`` lie about 60 deg
   apart (people 15, animals 75, nature 135, scenery 195, city 255, others 315).
   So within a category, lightness determines the colour almost exactly, while
   *across* categories the same lightness comes in six hues whose mean is nearly
   grey: a single model that ignores the structure can do no better than a dull
   average, a model that knows the category can pick its hue.

3. Small luminance noise (sigma 1 L* unit) and soft, antialiased edges keep the
   images from being piecewise constant.

Generation is deterministic: :func:`generate` seeds image ``i`` of category ``c``
with ``numpy.random.default_rng([seed, c_index, i])``, so the same seed gives the
same pixels (and the same PNG bytes), and a larger ``per_category`` extends a
smaller one. Conversion to sRGB uses D65, like ``skimage.color.lab2rgb``; colours
outside the sRGB gamut are clipped.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .categories import CATEGORIES
from .folders import ImageRecord

__all__ = [
    "BASE_HUES",
    "MIN_SIZE",
    "SyntheticScene",
    "encode",
    "generate",
    "make_scene",
    "scene_lab",
    "write_synthetic",
]

#: Smallest side :func:`make_scene` draws.
MIN_SIZE = 16

#: Base hue angle (degrees in the a*b* plane) of each category's palette.
BASE_HUES: dict[str, float] = {
    "people": 15.0,
    "animals": 75.0,
    "nature": 135.0,
    "scenery": 195.0,
    "city": 255.0,
    "others": 315.0,
}

_L_LOW, _L_HIGH = 30.0, 80.0
_L_MID, _L_HALF = 55.0, 25.0
_HUE_SLOPE = 25.0  # degrees over half the lightness range
_HUE_JITTER = 8.0
_CHROMA = (24.0, 34.0)
_NOISE_SIGMA = 1.0

Pattern = Callable[[int, np.random.Generator], np.ndarray]


# ------------------------------------------------------------------ helpers


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1): (y, x), each (size, size)."""
    t = (np.arange(size, dtype=np.float64) + 0.5) / size
    return np.meshgrid(t, t, indexing="ij")


def _soft(distance: np.ndarray, size: int) -> np.ndarray:
    """Coverage of a shape from its signed distance (normalised units, < 0 inside),
    antialiased over about one pixel."""
    return np.clip(0.5 - distance * size, 0.0, 1.0)


def _level(rng: np.random.Generator) -> float:
    return float(rng.uniform(_L_LOW, _L_HIGH))


def _paint(base: np.ndarray, coverage: np.ndarray, value: float) -> np.ndarray:
    return base * (1.0 - coverage) + value * coverage


def _value_noise(size: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth noise in [0, 1]: a random (cells+1)^2 lattice, bilinearly interpolated."""
    lattice = rng.random((cells + 1, cells + 1))
    t = (np.arange(size, dtype=np.float64) + 0.5) / size * cells
    i = np.minimum(t.astype(np.int64), cells - 1)
    f = t - i
    f = f * f * (3.0 - 2.0 * f)  # smoothstep
    top = lattice[i][:, i] * (1 - f)[None, :] + lattice[i][:, i + 1] * f[None, :]
    bottom = lattice[i + 1][:, i] * (1 - f)[None, :] + lattice[i + 1][:, i + 1] * f[None, :]
    return top * (1 - f)[:, None] + bottom * f[:, None]


# ----------------------------------------------------------------- patterns


def _blobs(size: int, rng: np.random.Generator) -> np.ndarray:
    y, x = _grid(size)
    light = np.full((size, size), _level(rng))
    for _ in range(int(rng.integers(3, 7))):
        cy, cx = rng.uniform(0.15, 0.85, 2)
        ry, rx = rng.uniform(0.08, 0.25, 2)
        angle = rng.uniform(0, np.pi)
        dy, dx = y - cy, x - cx
        u = (dx * np.cos(angle) + dy * np.sin(angle)) / rx
        v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ry
        radius = np.sqrt(u * u + v * v)
        distance = (radius - 1.0) * min(rx, ry)
        light = _paint(light, _soft(distance, size), _level(rng))
    return light


def _city(size: int, rng: np.random.Generator) -> np.ndarray:
    y, x = _grid(size)
    light = np.full((size, size), _level(rng))
    left = -0.05
    while left < 1.0:
        width = rng.uniform(0.12, 0.3)
        top = rng.uniform(0.1, 0.6)
        inside = np.maximum.reduce([left - x, x - (left + width), top - y])
        light = _paint(light, _soft(inside, size), _level(rng))
        # windows: a regular lattice of small rectangles inside the building
        window = _level(rng)
        pitch = max(rng.uniform(0.06, 0.1), 4.0 / size)
        wx = np.mod(x - left, pitch) / pitch
        wy = np.mod(y - top, pitch) / pitch
        in_window = np.maximum(np.abs(wx - 0.5) - 0.25, np.abs(wy - 0.5) - 0.25) * pitch
        in_building = inside + 0.02
        light = _paint(light, _soft(np.maximum(in_window, in_building), size), window)
        left += width + rng.uniform(0.0, 0.06)
    return light


def _nature(size: int, rng: np.random.Generator) -> np.ndarray:
    total = np.zeros((size, size))
    weight = 0.0
    for octave, cells in enumerate((4, 8, 16, 32)):
        amp = 0.6**octave
        total += amp * _value_noise(size, cells, rng)
        weight += amp
    total /= weight
    lo, hi = np.percentile(total, (1, 99))
    total = np.clip((total - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    return _L_LOW + (_L_HIGH - _L_LOW) * total


def _rings(size: int, rng: np.random.Generator) -> np.ndarray:
    y, x = _grid(size)
    light = np.full((size, size), _level(rng))
    for _ in range(int(rng.integers(1, 3))):
        cy, cx = rng.uniform(0.25, 0.75, 2)
        outer = rng.uniform(0.3, 0.55)
        period = max(rng.uniform(0.07, 0.12), 4.0 / size)
        a, b = _level(rng), _level(rng)
        r = np.sqrt((y - cy) ** 2 + (x - cx) ** 2)
        wave = 0.5 + 0.5 * np.clip(np.sin(2 * np.pi * r / period) * 3.0, -1.0, 1.0)
        rings = a + (b - a) * wave
        disc = _soft(r - outer, size)
        light = light * (1 - disc) + rings * disc
    return light


def _scenery(size: int, rng: np.random.Generator) -> np.ndarray:
    y, _ = _grid(size)
    horizon = rng.uniform(0.35, 0.65)
    sky_top, sky_bottom, ground_top, ground_bottom = (_level(rng) for _ in range(4))
    up = np.clip(y / horizon, 0, 1)
    down = np.clip((y - horizon) / (1 - horizon), 0, 1)
    sky = sky_top + (sky_bottom - sky_top) * up
    ground = ground_top + (ground_bottom - ground_top) * down
    ripple_period = rng.uniform(0.03, 0.06)
    ground = ground + 3.0 * np.sin(2 * np.pi * y / ripple_period)
    cover = _soft(horizon - y, size)
    return np.clip(sky * (1 - cover) + ground * cover, _L_LOW, _L_HIGH)


def _stripes(size: int, rng: np.random.Generator) -> np.ndarray:
    y, x = _grid(size)
    angle = np.deg2rad(rng.uniform(25, 65) + 90 * rng.integers(0, 2))
    period = max(rng.uniform(0.08, 0.18), 4.0 / size)
    phase = rng.uniform(0, 1)
    a, b = _level(rng), _level(rng)
    t = (x * np.cos(angle) + y * np.sin(angle)) / period + phase
    # distance (normalised units) to the nearest stripe edge, signed: < 0 in a "b" stripe
    distance = (np.abs(np.mod(t, 1.0) - 0.5) - 0.25) * period
    return _paint(np.full((size, size), a), _soft(distance, size), b)


_PATTERNS: dict[str, Pattern] = {
    "animals": _blobs,
    "city": _city,
    "nature": _nature,
    "people": _rings,
    "scenery": _scenery,
    "others": _stripes,
}


# ------------------------------------------------------------------- colour


def _lab_to_srgb8(lab: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) -> 8-bit sRGB, clipped to the gamut."""
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    delta = 6.0 / 29.0

    def finv(t: np.ndarray) -> np.ndarray:
        return np.where(t > delta, t**3, 3 * delta * delta * (t - 4.0 / 29.0))

    xyz = np.stack([0.95047 * finv(fx), finv(fy), 1.08883 * finv(fz)], axis=-1)
    to_rgb = np.array(
        [
            [3.2404542, -1.5371385, -0.4985314],
            [-0.9692660, 1.8760108, 0.0415560],
            [0.0556434, -0.2040259, 1.0572252],
        ]
    )
    linear = np.clip(xyz @ to_rgb.T, 0.0, 1.0)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)
    return np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8)


def _check(category: str, size: int) -> None:
    if category not in _PATTERNS:
        raise ValueError(f"unknown category {category!r} (one of {', '.join(CATEGORIES)})")
    if int(size) != size or size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE}, got {size!r}")


def scene_lab(category: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """The scene in CIE L*a*b* (float64, (size, size, 3)) before conversion to sRGB."""
    _check(category, size)
    size = int(size)
    light = _PATTERNS[category](size, rng)
    light = np.clip(light + rng.normal(0.0, _NOISE_SIGMA, light.shape), 0.0, 100.0)
    jitter = rng.uniform(-_HUE_JITTER, _HUE_JITTER)
    chroma = rng.uniform(*_CHROMA)
    hue = np.deg2rad(BASE_HUES[category] + jitter + _HUE_SLOPE * (light - _L_MID) / _L_HALF)
    return np.stack([light, chroma * np.cos(hue), chroma * np.sin(hue)], axis=-1)


def make_scene(category: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One ``size`` x ``size`` RGB scene of ``category`` drawn with ``rng``."""
    return Image.fromarray(_lab_to_srgb8(scene_lab(category, size, rng)), mode="RGB")


# ---------------------------------------------------------------- data sets


@dataclass(frozen=True)
class SyntheticScene:
    category: str
    index: int
    image: Image.Image

    @property
    def name(self) -> str:
        """A stable file stem, e.g. ``animals_00007``."""
        return f"{self.category}_{self.index:05d}"


def _scene_rng(seed: int, category: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), CATEGORIES.index(category), int(index)])


def generate(
    per_category: int,
    size: int,
    seed: int = 0,
    *,
    categories: Sequence[str] = CATEGORIES,
) -> list[SyntheticScene]:
    """``per_category`` scenes of each category, category by category, deterministic
    from ``seed`` (see the module docstring)."""
    if per_category < 0:
        raise ValueError("per_category must be >= 0")
    for category in categories:
        _check(category, size)
    return [
        SyntheticScene(category, i, make_scene(category, size, _scene_rng(seed, category, i)))
        for category in categories
        for i in range(per_category)
    ]


def write_synthetic(
    folder: str | os.PathLike[str],
    per_category: int,
    size: int,
    seed: int = 0,
    *,
    image_format: str = "png",
    quality: int = 95,
    categories: Sequence[str] = CATEGORIES,
) -> list[ImageRecord]:
    """Write a generated set as ``folder/{category}/{category}_{i:05d}.{png|jpg}`` (the
    layout :func:`~colourmodels.data.folders.read_folder` reads) and return its records.

    ``image_format``: ``"png"`` (lossless, the default) or ``"jpeg"`` (``quality``,
    4:4:4 chroma so the colours survive at small sizes). Files are written without
    metadata, so the same arguments give the same bytes. Existing files are replaced.
    """
    fmt = image_format.lower()
    if fmt not in ("png", "jpeg", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")
    suffix = ".png" if fmt == "png" else ".jpg"
    root = Path(folder)
    records = []
    for scene in generate(per_category, size, seed, categories=categories):
        target = root / scene.category / f"{scene.name}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(encode(scene.image, fmt, quality=quality))
        records.append(ImageRecord(target, scene.category))
    return records


def encode(image: Image.Image, image_format: str = "png", *, quality: int = 95) -> bytes:
    """PNG or JPEG bytes of ``image``, with no metadata (deterministic)."""
    buffer = io.BytesIO()
    if image_format.lower() == "png":
        image.save(buffer, format="PNG", optimize=False, compress_level=6)
    else:
        image.save(buffer, format="JPEG", quality=quality, subsampling=0, optimize=False)
    return buffer.getvalue()
