"""Tests of colourmodels.colour against scikit-image (method.md §2)."""

from __future__ import annotations

import doctest
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import torch
from skimage import color as skcolor
from skimage.color import colorconv

from colourmodels import colour
from colourmodels.colour import (
    ColourSpace,
    denormalise_chroma,
    lab_to_rgb,
    luma_chroma_to_rgb,
    rgb_to_lab,
    rgb_to_luma_chroma,
    rgb_to_yuv,
    yuv_to_rgb,
)

DTYPES = [torch.float32, torch.float64]
# Against skimage's float64 L*a*b* conversions (both ways). float32: L = 116 f - 16 and
# a = 500 (fx - fy) amplify the rounding of f <= 1 (a few ulps of 6e-8); measured <= 5.2e-5
# with ATen's AVX-512, AVX2 and scalar kernels, MKL held to SSE4.2 or AVX2, OpenBLAS as
# Prescott, Sandybridge or Haswell (issue 19). float64: the same amplification of
# u = 1.1e-16, ~1e-13.
LAB_TOL = {torch.float32: 1e-4, torch.float64: 1e-10}
SPACES = [ColourSpace.LAB, ColourSpace.YUV]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# --------------------------------------------------------------------------------------
# Test images
# --------------------------------------------------------------------------------------


def synthetic_photo(n: int = 2, h: int = 48, w: int = 64, seed: int = 0) -> torch.Tensor:
    """A "real-looking" float64 RGB batch (N, 3, H, W) in [0, 1].

    Sky gradient over a textured ground, a flat gray wall, and saturated patches
    (the sRGB primaries and secondaries, black and white), with mild noise.
    """
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.linspace(0, 1, h, dtype=torch.float64),
        torch.linspace(0, 1, w, dtype=torch.float64),
        indexing="ij",
    )
    images = []
    for i in range(n):
        shift = 0.1 * i
        sky = torch.stack([0.35 + 0.5 * yy, 0.55 + 0.35 * yy, 0.95 - 0.1 * yy])
        texture = 0.08 * torch.sin(25 * xx + 7 * yy + shift) * torch.cos(13 * yy)
        ground = torch.stack(
            [0.35 + 0.2 * xx + texture, 0.45 - 0.15 * xx + texture, 0.15 + 0.1 * yy + texture]
        )
        horizon = (yy > 0.55 + 0.1 * torch.sin(6 * xx + shift)).to(torch.float64)
        img = sky * (1 - horizon) + ground * horizon
        img = img + 0.01 * torch.randn(3, h, w, generator=gen, dtype=torch.float64)
        img[:, 2:12, 2:14] = 0.5  # flat gray wall (no noise)
        patches = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1), (0, 0, 0)]
        patches.append((1, 1, 1))
        for j, rgb in enumerate(patches):
            r0, c0 = h - 8 - 2 * (j % 2), 2 + j * 7 + i
            img[:, r0 : r0 + 6, c0 : c0 + 6] = torch.tensor(rgb, dtype=torch.float64).view(3, 1, 1)
        images.append(img.clamp(0, 1))
    return torch.stack(images)


def random_rgb(n: int = 3, h: int = 17, w: int = 23, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=gen, dtype=torch.float64)


def rgb_cube(steps: int = 17) -> torch.Tensor:
    """Every colour of a steps³ grid of the RGB cube (corners included), (1, 3, steps², steps)."""
    v = torch.linspace(0, 1, steps, dtype=torch.float64)
    r, g, b = torch.meshgrid(v, v, v, indexing="ij")
    return torch.stack([r, g, b]).reshape(1, 3, steps * steps, steps)


IMAGES = {"random": random_rgb, "photo": synthetic_photo}


def to_hwc(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().permute(0, 2, 3, 1).numpy()


def from_hwc(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)


def sk_apply(fn, x: torch.Tensor) -> torch.Tensor:
    """Apply a skimage colour conversion (channels last) to an NCHW batch, in float64."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lab2rgb warns about clipped negative Z
        return from_hwc(fn(to_hwc(x)))


# --------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------


def _exact_inverse(matrix) -> np.ndarray:
    """The inverse of a 3x3 float64 matrix in exact rational arithmetic, rounded once."""
    (a, b, c), (d, e, f), (g, h, i) = [[Fraction(x) for x in row] for row in matrix]
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    adjugate = [
        [e * i - f * h, c * h - b * i, b * f - c * e],
        [f * g - d * i, a * i - c * g, c * d - a * f],
        [d * h - e * g, b * g - a * h, a * e - b * d],
    ]
    return np.array([[float(x / det) for x in row] for row in adjugate])


def test_constants_are_skimages():
    np.testing.assert_array_equal(np.array(colour.XYZ_FROM_RGB), colorconv.xyz_from_rgb)
    np.testing.assert_array_equal(np.array(colour.YUV_FROM_RGB), colorconv.yuv_from_rgb)
    for ours, forward, theirs in (
        (colour.RGB_FROM_XYZ, colour.XYZ_FROM_RGB, colorconv.rgb_from_xyz),
        (colour.RGB_FROM_YUV, colour.YUV_FROM_RGB, colorconv.rgb_from_yuv),
    ):
        exact = _exact_inverse(forward)
        largest = np.abs(exact).max()
        # Ours are the inverse to float64 precision: within 2 ulps of the largest entry of
        # the exact inverse (entries of ~4e-9 are cancellations, exact only to that).
        np.testing.assert_allclose(np.array(ours), exact, rtol=0, atol=2 * np.spacing(largest))
        # skimage inverts at import with LAPACK, whose last bits depend on the CPU's kernels
        # (entries of ~4e-9 differ by ~5e-18 between machines): an LU inverse is within
        # c_n * u * cond(A) * |inverse| of the exact one (Higham, Accuracy and Stability of
        # Numerical Algorithms, 14.3), here with c_n = n^2 = 9: about 3e-14.
        cond = np.linalg.cond(np.array(forward), np.inf)
        bound = 9 * np.finfo(float).eps / 2 * cond * np.abs(exact).sum(axis=1).max()
        np.testing.assert_allclose(theirs, exact, rtol=0, atol=bound)
    np.testing.assert_array_equal(
        np.array(colour.D65_WHITE),
        colorconv.xyz_tristimulus_values(illuminant="D65", observer="2"),
    )


# --------------------------------------------------------------------------------------
# LAB
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", IMAGES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rgb_to_lab_matches_skimage(kind, dtype):
    rgb = IMAGES[kind]().to(dtype)
    ours = rgb_to_lab(rgb)
    assert ours.dtype == dtype and ours.shape == rgb.shape
    ref = sk_apply(skcolor.rgb2lab, rgb)
    torch.testing.assert_close(ours.double(), ref, atol=LAB_TOL[dtype], rtol=0)


def test_rgb_to_lab_known_values():
    rgb = torch.tensor([[0, 0, 0], [1, 1, 1], [1, 0, 0]], dtype=torch.float64).T.reshape(1, 3, 1, 3)
    lab = rgb_to_lab(rgb)[0, :, 0].T
    torch.testing.assert_close(lab[0], torch.zeros(3, dtype=torch.float64))
    assert lab[1, 0].item() == pytest.approx(100.0, abs=1e-9)  # white: L = 100
    torch.testing.assert_close(
        lab[2], torch.tensor([53.2405879, 80.0923082, 67.2027510], dtype=torch.float64)
    )


def out_of_gamut_lab(dtype: torch.dtype, seed: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    n, h, w = 2, 16, 20
    lightness = 100 * torch.rand(n, 1, h, w, generator=gen, dtype=torch.float64)
    ab = 300 * torch.rand(n, 2, h, w, generator=gen, dtype=torch.float64) - 150
    return torch.cat([lightness, ab], 1).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lab_to_rgb_matches_skimage_out_of_gamut(dtype):
    lab = out_of_gamut_lab(dtype)
    # The fixture does exercise skimage's "negative Z clipped to zero" branch ...
    fz = (lab[:, 0] + 16) / 116 - lab[:, 2] / 200
    assert (fz < 0).sum() > 20
    ours = lab_to_rgb(lab)
    assert ours.dtype == dtype
    ref = sk_apply(skcolor.lab2rgb, lab)
    # ... and RGB clipping on both ends.
    assert (ref == 0).any() and (ref == 1).any()
    torch.testing.assert_close(ours.double(), ref, atol=LAB_TOL[dtype], rtol=0)
    assert ours.min() >= 0 and ours.max() <= 1


@pytest.mark.parametrize("kind", IMAGES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_lab_round_trip(kind, dtype):
    rgb = IMAGES[kind]().to(dtype)
    back = lab_to_rgb(rgb_to_lab(rgb))
    torch.testing.assert_close(back, rgb, atol=1e-5 if dtype == torch.float32 else 1e-10, rtol=0)
    torch.testing.assert_close(
        back.double(), sk_apply(skcolor.lab2rgb, rgb_to_lab(rgb)), atol=1e-4, rtol=0
    )


# --------------------------------------------------------------------------------------
# YUV
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", IMAGES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rgb_to_yuv_matches_skimage(kind, dtype):
    rgb = IMAGES[kind]().to(dtype)
    ours = rgb_to_yuv(rgb)
    assert ours.dtype == dtype
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(ours.double(), sk_apply(skcolor.rgb2yuv, rgb), atol=tol, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_yuv_to_rgb_matches_skimage_then_clips(dtype):
    gen = torch.Generator().manual_seed(3)
    scale = torch.tensor([1.0, 0.9, 1.2], dtype=torch.float64).view(1, 3, 1, 1)
    yuv = ((torch.rand(2, 3, 9, 11, generator=gen, dtype=torch.float64) - 0.3) * scale).to(dtype)
    ours = yuv_to_rgb(yuv)
    ref = sk_apply(skcolor.yuv2rgb, yuv)
    assert (ref < 0).any() and (ref > 1).any()
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(ours.double(), ref.clamp(0, 1), atol=tol, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_yuv_is_exactly_invertible(dtype):
    rgb = torch.cat([random_rgb(1, 289, 17), rgb_cube(17)], 0).to(dtype)
    back = yuv_to_rgb(rgb_to_yuv(rgb))
    tol = 1e-6 if dtype == torch.float32 else 1e-14
    torch.testing.assert_close(back, rgb, atol=tol, rtol=0)
    product = np.array(colour.RGB_FROM_YUV) @ np.array(colour.YUV_FROM_RGB)
    # The literals' exact residual (1.9e-16) plus any BLAS's rounding of 3-term dot
    # products (<= 3u |X||A| = 3.9e-16): 5.8e-16 at most.
    np.testing.assert_allclose(product, np.eye(3), atol=1e-15)


# --------------------------------------------------------------------------------------
# Luminance / chroma normalisation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", IMAGES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_luma_chroma_normalisation_formulas(kind, dtype):
    rgb = IMAGES[kind]().to(dtype)
    lab = sk_apply(skcolor.rgb2lab, rgb)
    luma, chroma = rgb_to_luma_chroma(rgb, "lab")
    assert luma.shape == (rgb.shape[0], 1, *rgb.shape[2:])
    assert chroma.shape == (rgb.shape[0], 2, *rgb.shape[2:])
    assert luma.dtype == chroma.dtype == dtype
    torch.testing.assert_close(luma.double(), lab[:, :1] / 50 - 1, atol=2e-6, rtol=0)
    torch.testing.assert_close(chroma.double(), lab[:, 1:] / 110, atol=1e-6, rtol=0)

    yuv = sk_apply(skcolor.rgb2yuv, rgb)
    luma, chroma = rgb_to_luma_chroma(rgb, ColourSpace.YUV)
    torch.testing.assert_close(luma.double(), 2 * yuv[:, :1] - 1, atol=1e-6, rtol=0)
    torch.testing.assert_close(chroma[:, 0].double(), yuv[:, 1] / 0.436, atol=1e-6, rtol=0)
    torch.testing.assert_close(chroma[:, 1].double(), yuv[:, 2] / 0.615, atol=1e-6, rtol=0)


def test_normalised_ranges_at_the_extremes():
    cube = rgb_cube(17)  # includes the 8 corners: black, white, primaries, secondaries
    luma, chroma = rgb_to_luma_chroma(cube, "lab")
    assert luma.min().item() == pytest.approx(-1.0, abs=1e-12)  # black
    assert luma.max().item() == pytest.approx(1.0, abs=1e-12)  # white
    assert chroma.abs().max() < 1.0  # |b| peaks at 107.86 (blue), |a| at 98.23
    assert chroma.abs().max() > 0.98  # ... and the divisor 110 is not loose

    luma, chroma = rgb_to_luma_chroma(cube, "yuv")
    assert luma.min().item() == pytest.approx(-1.0, abs=1e-12)
    assert luma.max().item() == pytest.approx(1.0, abs=1e-12)
    # skimage's matrix gives pure blue U = 0.43601035, so U/0.436 = 1.0000237: the
    # divisors of the spec leave the extremes a hair outside [-1, 1], no further.
    assert chroma.abs().max() <= 1 + 3e-5
    primaries = torch.eye(3, dtype=torch.float64).T.reshape(1, 3, 1, 3)  # red, green, blue
    _, c = rgb_to_luma_chroma(primaries, "yuv")
    u, v = c[0, 0, 0], c[0, 1, 0]
    assert v[0].item() == pytest.approx(0.61497538 / 0.615)  # red: V = 0.99996
    assert u[2].item() == pytest.approx(0.43601035 / 0.436)  # blue: U = 1.0000237
    assert (c.abs() <= 1 + 3e-5).all()


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_luma_chroma_round_trip(space, dtype):
    rgb = synthetic_photo().to(dtype)
    luma, chroma = rgb_to_luma_chroma(rgb, space)
    back = luma_chroma_to_rgb(luma, chroma, space)
    assert back.dtype == dtype and back.shape == rgb.shape
    torch.testing.assert_close(back, rgb, atol=1e-5 if dtype == torch.float32 else 1e-10, rtol=0)


@pytest.mark.parametrize("space", SPACES)
def test_luma_chroma_to_rgb_inverts_normalisation_and_clips(space):
    """Arbitrary generator output (tanh range) maps to skimage's conversion, clipped."""
    gen = torch.Generator().manual_seed(4)
    luma = 2 * torch.rand(2, 1, 8, 9, generator=gen, dtype=torch.float64) - 1
    chroma = 2 * torch.rand(2, 2, 8, 9, generator=gen, dtype=torch.float64) - 1
    chroma[:, :, 0, :3] = torch.tensor([-1.0, 1.0, 0.0], dtype=torch.float64)
    rgb = luma_chroma_to_rgb(luma, chroma, space)
    if space is ColourSpace.LAB:
        lab = torch.cat([(luma + 1) * 50, chroma * 110], 1)
        ref = sk_apply(skcolor.lab2rgb, lab)
    else:
        uv = chroma * torch.tensor([0.436, 0.615], dtype=torch.float64).view(1, 2, 1, 1)
        ref = sk_apply(skcolor.yuv2rgb, torch.cat([(luma + 1) / 2, uv], 1)).clamp(0, 1)
    torch.testing.assert_close(rgb, ref, atol=1e-10, rtol=0)
    assert rgb.min() >= 0 and rgb.max() <= 1


def test_denormalise_chroma():
    c = torch.tensor([0.5, -1.0], dtype=torch.float64).view(1, 2, 1, 1)
    assert denormalise_chroma(c, "lab").flatten().tolist() == [55.0, -110.0]
    out = denormalise_chroma(c, "yuv").flatten().tolist()
    assert out == pytest.approx([0.218, -0.615])


# --------------------------------------------------------------------------------------
# ColourSpace, validation, dtype/device
# --------------------------------------------------------------------------------------


def test_colour_space_accepts_strings():
    assert ColourSpace("lab") is ColourSpace.LAB
    assert ColourSpace("yuv") is ColourSpace.YUV
    assert ColourSpace("LAB") is ColourSpace.LAB
    assert ColourSpace.LAB == "lab" and isinstance(ColourSpace.YUV, str)
    with pytest.raises(ValueError):
        ColourSpace("hsv")
    with pytest.raises(ValueError, match="unknown colour space"):
        rgb_to_luma_chroma(random_rgb(), "hsv")


@pytest.mark.parametrize(
    "fn", [rgb_to_lab, lab_to_rgb, rgb_to_yuv, yuv_to_rgb], ids=lambda f: f.__name__
)
def test_conversions_reject_wrong_shapes(fn):
    with pytest.raises(ValueError, match="4-D"):
        fn(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="3 channel"):
        fn(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match="3 channel"):
        fn(torch.rand(1, 8, 8, 3))  # channels last by mistake
    with pytest.raises(TypeError):
        fn(np.zeros((1, 3, 8, 8)))


def test_luma_chroma_reject_wrong_shapes():
    luma, chroma = torch.rand(2, 1, 8, 8), torch.rand(2, 2, 8, 8)
    with pytest.raises(ValueError, match="1 channel"):
        luma_chroma_to_rgb(chroma, chroma, "lab")
    with pytest.raises(ValueError, match="2 channel"):
        luma_chroma_to_rgb(luma, luma, "lab")
    with pytest.raises(ValueError, match="agree"):
        luma_chroma_to_rgb(luma, chroma[:, :, :4], "yuv")
    with pytest.raises(ValueError, match="agree"):
        luma_chroma_to_rgb(luma[:1], chroma, "yuv")
    with pytest.raises(ValueError, match="2 channel"):
        denormalise_chroma(torch.rand(2, 3, 8, 8), "lab")
    with pytest.raises(ValueError, match="3 channel"):
        rgb_to_luma_chroma(luma, "lab")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_and_device_are_preserved(device, dtype):
    rgb = synthetic_photo(1, 16, 16).to(device=device, dtype=dtype)
    for out in (rgb_to_lab(rgb), lab_to_rgb(rgb_to_lab(rgb)), rgb_to_yuv(rgb), yuv_to_rgb(rgb)):
        assert out.dtype == dtype and out.device == rgb.device
    for space in SPACES:
        luma, chroma = rgb_to_luma_chroma(rgb, space)
        back = luma_chroma_to_rgb(luma, chroma, space)
        assert luma.device == chroma.device == back.device == rgb.device
        assert luma.dtype == chroma.dtype == back.dtype == dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_matches_cpu(dtype):
    rgb = synthetic_photo().to(dtype)
    lab = out_of_gamut_lab(dtype)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    for fn, x in ((rgb_to_lab, rgb), (lab_to_rgb, lab), (rgb_to_yuv, rgb), (yuv_to_rgb, rgb)):
        torch.testing.assert_close(fn(x.cuda()).cpu(), fn(x), atol=tol, rtol=0)


def test_no_nan_gradient_through_branches():
    rgb = (
        torch.tensor([0.0, 0.02, 0.5, 1.0], dtype=torch.float64).view(1, 1, 1, 4).repeat(1, 3, 1, 1)
    )
    rgb.requires_grad_(True)
    luma, chroma = rgb_to_luma_chroma(rgb, "lab")
    luma_chroma_to_rgb(luma, chroma, "lab").sum().backward()
    assert torch.isfinite(rgb.grad).all()
    assert not math.isnan(float(rgb.grad.sum()))


def test_docstring_examples():
    result = doctest.testmod(colour, extraglobs={"torch": torch})
    assert result.attempted > 10 and result.failed == 0
