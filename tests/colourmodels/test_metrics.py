"""Tests of colourmodels.metrics (method.md §6), against scikit-image and by hand."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from colourmodels import metrics
from colourmodels.metrics import (
    IMAGE_METRICS,
    chroma_mae,
    colourfulness,
    colourfulness_difference,
    gan_plain_loss,
    image_metrics,
    l1_distance,
    psnr,
    ssim,
)

DTYPES = [torch.float32, torch.float64]
GAUSSIAN_KW = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


# --------------------------------------------------------------------------------------
# Test images
# --------------------------------------------------------------------------------------


def synthetic_photo(n: int = 2, h: int = 40, w: int = 52, seed: int = 0) -> torch.Tensor:
    """A "real-looking" float64 RGB batch in [0, 1]: gradients, texture, flat and
    saturated patches (flat regions make SSIM's C1/C2 matter)."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.linspace(0, 1, h, dtype=torch.float64),
        torch.linspace(0, 1, w, dtype=torch.float64),
        indexing="ij",
    )
    images = []
    for i in range(n):
        sky = torch.stack([0.35 + 0.5 * yy, 0.55 + 0.35 * yy, 0.95 - 0.1 * yy])
        texture = 0.08 * torch.sin(25 * xx + 7 * yy + i) * torch.cos(13 * yy)
        ground = torch.stack([0.35 + 0.2 * xx + texture, 0.45 - 0.15 * xx + texture, 0.2 + texture])
        horizon = (yy > 0.55 + 0.1 * torch.sin(6 * xx + i)).to(torch.float64)
        img = sky * (1 - horizon) + ground * horizon
        img = img + 0.01 * torch.randn(3, h, w, generator=gen, dtype=torch.float64)
        img[:, 2:14, 2:16] = 0.5  # flat wall
        for j, rgb in enumerate([(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 0, 0)]):
            c0 = 2 + 8 * j + i
            img[:, h - 9 : h - 2, c0 : c0 + 7] = torch.tensor(rgb, dtype=torch.float64).view(
                3, 1, 1
            )
        images.append(img.clamp(0, 1))
    return torch.stack(images)


def degrade(x: torch.Tensor, seed: int = 5) -> torch.Tensor:
    """A plausible colourisation error: shifted chroma, slight blur, noise."""
    gen = torch.Generator().manual_seed(seed)
    shifted = x * torch.tensor([0.9, 1.05, 0.8], dtype=x.dtype).view(1, 3, 1, 1) + 0.03
    blurred = F.avg_pool2d(F.pad(shifted, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return (blurred + 0.02 * torch.randn(x.shape, generator=gen, dtype=x.dtype)).clamp(0, 1)


def to_hwc(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().permute(0, 2, 3, 1).numpy()


def sk_ssim(pred: torch.Tensor, target: torch.Tensor, **kw) -> torch.Tensor:
    return torch.tensor(
        [
            structural_similarity(p, t, channel_axis=-1, data_range=1.0, **kw)
            for p, t in zip(to_hwc(pred), to_hwc(target))
        ],
        dtype=torch.float64,
    )


def pair(kind: str, shape=(3, 3, 23, 37), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    if kind == "photo":
        target = synthetic_photo(shape[0], shape[2], shape[3], seed)
        return degrade(target), target
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=gen, dtype=torch.float64)
    noise = 0.15 * torch.randn(shape, generator=gen, dtype=torch.float64)
    return (target + noise).clamp(0, 1), target


# --------------------------------------------------------------------------------------
# L1 distance and chroma MAE
# --------------------------------------------------------------------------------------


def test_l1_distance_hand_computed():
    pred = torch.zeros(2, 2, 1, 2)
    target = torch.tensor([[0.1, -0.3, 0.0, 0.2], [1.0, 1.0, -1.0, 0.5]]).view(2, 2, 1, 2)
    # image 0: (0.1 + 0.3 + 0 + 0.2) / 4 = 0.15 -> ×100; image 1: 3.5 / 4 = 0.875
    torch.testing.assert_close(l1_distance(pred, target), torch.tensor([15.0, 87.5]))
    torch.testing.assert_close(
        l1_distance(pred, target, lambda_l1=1.0), torch.tensor([0.15, 0.875])
    )


def test_l1_distance_is_the_generator_l1_term():
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.rand(4, 2, 8, 8, generator=gen), torch.rand(4, 2, 8, 8, generator=gen)
    per_image = l1_distance(pred, target)
    assert per_image.shape == (4,)
    torch.testing.assert_close(per_image.mean(), 100 * F.l1_loss(pred, target))


def test_chroma_mae_in_own_units():
    pred = torch.zeros(1, 2, 1, 1, dtype=torch.float64)
    target = torch.tensor([0.5, -1.0], dtype=torch.float64).view(1, 2, 1, 1)
    # LAB: (55 + 110) / 2; YUV: (0.5·0.436 + 1·0.615) / 2
    assert chroma_mae(pred, target, "lab").item() == pytest.approx(82.5)
    assert chroma_mae(pred, target, "yuv").item() == pytest.approx((0.218 + 0.615) / 2)
    gen = torch.Generator().manual_seed(1)
    p, t = torch.rand(3, 2, 5, 6, generator=gen), torch.rand(3, 2, 5, 6, generator=gen)
    torch.testing.assert_close(chroma_mae(p, t, "lab"), 1.1 * l1_distance(p, t))


# --------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["random", "photo"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 3, 23, 37), (2, 3, 48, 20), (1, 3, 11, 11)])
def test_ssim_matches_skimage(kind, dtype, shape):
    pred, target = pair(kind, shape)
    ours = ssim(pred.to(dtype), target.to(dtype))
    assert ours.shape == (shape[0],) and ours.dtype == dtype
    torch.testing.assert_close(ours.double(), sk_ssim(pred, target), atol=1e-4, rtol=0)
    ours = ssim(pred.to(dtype), target.to(dtype), gaussian=True)
    ref = sk_ssim(pred, target, **GAUSSIAN_KW)
    torch.testing.assert_close(ours.double(), ref, atol=1e-4, rtol=0)


def test_ssim_float64_is_exact():
    pred, target = pair("photo", (2, 3, 30, 41))
    torch.testing.assert_close(ssim(pred, target), sk_ssim(pred, target), atol=1e-12, rtol=0)
    torch.testing.assert_close(
        ssim(pred, target, gaussian=True),
        sk_ssim(pred, target, **GAUSSIAN_KW),
        atol=1e-12,
        rtol=0,
    )


def test_ssim_on_flat_images_depends_on_constants():
    """Low-contrast bright images: σ² is of the order of C2 = (.03)², so a wrong
    constant, window normalisation or covariance factor shows: each of the population
    covariance, a 5×5 window, K2 = 0.029 and a 1 % larger data range moves SSIM here by
    2.4e-3 or more."""
    gen = torch.Generator().manual_seed(2)
    target = 0.8 + 0.05 * torch.rand(2, 3, 16, 16, generator=gen, dtype=torch.float64)
    pred = target + 0.02 * torch.randn(2, 3, 16, 16, generator=gen, dtype=torch.float64)
    ref = sk_ssim(pred, target)
    assert ((ref > 0.3) & (ref < 0.9)).all()
    # The variances are differences of window sums of (x + y)² ~ 2.6 that are ~2000 times
    # smaller than the sums: ~12 roundings lose 2000 · 12 · u per window. float64 (u = 1.1e-16)
    # keeps that below 3e-12: the formula is checked to 1e-10.
    torch.testing.assert_close(ssim(pred, target), ref, atol=1e-10, rtol=0)
    # float32 (u = 6e-8): up to 1.4e-3 per window, ~1e-5 on the mean of an image's 300
    # windows, whose roundings are mostly independent; measured 6e-6 with AVX-512 kernels and
    # 1.2e-5 with ATen's scalar ones (ATEN_CPU_CAPABILITY=default), where the former bound
    # of 1e-5 failed. 1e-4 leaves a factor 8 and is 24 times below the faults above.
    ours = ssim(pred.float(), target.float()).double()
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


def test_ssim_smallest_images_and_errors():
    pred, target = pair("random", (2, 3, 7, 9))
    torch.testing.assert_close(ssim(pred, target), sk_ssim(pred, target), atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(pred[:, :, :6], target[:, :, :6])
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(torch.rand(1, 3, 20, 5), torch.rand(1, 3, 20, 5))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(pred, target, gaussian=True)


@pytest.mark.parametrize("gaussian", [False, True])
def test_ssim_chunks_and_bands(monkeypatch, gaussian):
    """Force the CPU path to split planes into several chunks and rows into bands."""
    pred, target = pair("photo", (3, 3, 40, 29))
    ref = sk_ssim(pred, target, **(GAUSSIAN_KW if gaussian else {}))
    for budget in (2000, 600, 40):  # several planes per chunk; one plane; bands of rows
        monkeypatch.setattr(metrics, "_CPU_CHUNK_ELEMENTS", budget)
        torch.testing.assert_close(ssim(pred, target, gaussian=gaussian), ref, atol=1e-12, rtol=0)


def test_ssim_identical_images_is_one():
    pred, _ = pair("photo", (2, 3, 20, 24))
    for dtype in DTYPES:
        x = pred.to(dtype)
        torch.testing.assert_close(ssim(x, x.clone()), torch.ones(2, dtype=dtype))
        torch.testing.assert_close(ssim(x, x, gaussian=True), torch.ones(2, dtype=dtype))
    const = torch.full((1, 3, 8, 8), 0.3)
    torch.testing.assert_close(ssim(const, const), torch.ones(1))


def test_ssim_is_per_image():
    pred, target = pair("photo", (3, 3, 20, 24))
    batch = ssim(pred, target)
    single = torch.cat([ssim(pred[i : i + 1], target[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, atol=1e-14, rtol=0)
    assert len(set(batch.tolist())) == 3


def test_ssim_data_range():
    pred, target = pair("random", (2, 3, 12, 12))
    ref = torch.tensor(
        [
            structural_similarity(p, t, channel_axis=-1, data_range=255.0)
            for p, t in zip(to_hwc(pred * 255), to_hwc(target * 255))
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(ssim(pred * 255, target * 255, data_range=255.0), ref)


# --------------------------------------------------------------------------------------
# PSNR
# --------------------------------------------------------------------------------------


def test_psnr_hand_computed():
    target = torch.zeros(3, 3, 4, 4, dtype=torch.float64)
    pred = target.clone()
    pred[0] += 0.1  # MSE 0.01 -> 20 dB
    pred[1, :, :2] = 1.0  # half the pixels off by 1: MSE 0.5 -> 10·log10(2) dB
    out = psnr(pred, target)
    assert out[0].item() == pytest.approx(20.0)
    assert out[1].item() == pytest.approx(10 * math.log10(2))
    assert out[2].item() == math.inf  # identical images
    assert psnr(pred * 255, target * 255, data_range=255.0)[0].item() == pytest.approx(20.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_psnr_matches_skimage(dtype):
    pred, target = pair("photo", (2, 3, 16, 20))
    ours = psnr(pred.to(dtype), target.to(dtype))
    assert ours.dtype == dtype
    ref = [
        peak_signal_noise_ratio(t, p, data_range=1.0) for p, t in zip(to_hwc(pred), to_hwc(target))
    ]
    torch.testing.assert_close(
        ours.double(), torch.tensor(ref, dtype=torch.float64), atol=1e-4, rtol=0
    )


# --------------------------------------------------------------------------------------
# Colourfulness
# --------------------------------------------------------------------------------------


def test_colourfulness_of_gray_is_zero():
    gen = torch.Generator().manual_seed(3)
    gray = torch.rand(2, 1, 9, 7, generator=gen).repeat(1, 3, 1, 1)
    assert colourfulness(gray).tolist() == [0.0, 0.0]


def test_colourfulness_hand_computed():
    red = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    red[:, 0] = 1
    # rg = 255, yb = 127.5 everywhere: no spread, M = 0.3·√(255² + 127.5²)
    assert colourfulness(red).item() == pytest.approx(0.3 * math.sqrt(65025 + 16256.25))

    red_blue = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    red_blue = red_blue.view(1, 3, 1, 2)
    # rg = (255, 0): μ 127.5, σ 127.5; yb = (127.5, −255): μ −63.75, σ 191.25 (population)
    expected = math.sqrt(127.5**2 + 191.25**2) + 0.3 * math.sqrt(127.5**2 + 63.75**2)
    assert colourfulness(red_blue).item() == pytest.approx(expected)
    assert expected == pytest.approx(272.6187, abs=1e-4)


def test_colourfulness_matches_numpy_and_difference():
    pred, target = pair("photo", (2, 3, 16, 20))
    x = to_hwc(target) * 255
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    ref = np.sqrt(rg.std(axis=(1, 2)) ** 2 + yb.std(axis=(1, 2)) ** 2) + 0.3 * np.sqrt(
        rg.mean(axis=(1, 2)) ** 2 + yb.mean(axis=(1, 2)) ** 2
    )
    torch.testing.assert_close(colourfulness(target), torch.from_numpy(ref))
    diff = colourfulness_difference(pred, target)
    torch.testing.assert_close(diff, colourfulness(pred) - colourfulness(target))
    gray = target.mean(1, keepdim=True).repeat(1, 3, 1, 1)
    torch.testing.assert_close(colourfulness_difference(gray, target), -colourfulness(target))


# --------------------------------------------------------------------------------------
# GAN plain loss
# --------------------------------------------------------------------------------------


def test_gan_plain_loss_constant_discriminator_is_log2():
    def unsure(x):
        return torch.zeros(x.shape[0], 1, 3, 3)

    loss = gan_plain_loss(unsure, torch.zeros(2, 1, 8, 8), torch.zeros(2, 2, 8, 8))
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(math.log(2))


def test_gan_plain_loss_concatenates_luma_then_chroma():
    gen = torch.Generator().manual_seed(4)
    luma = torch.randn(2, 1, 4, 4, generator=gen)
    chroma = torch.randn(2, 2, 4, 4, generator=gen)
    seen = {}

    def discriminator(x):
        seen["x"] = x
        return x[:, 1:2] * 2.0  # logits from the first chroma channel

    loss = gan_plain_loss(discriminator, luma, chroma)
    torch.testing.assert_close(seen["x"], torch.cat([luma, chroma], 1))
    torch.testing.assert_close(loss, F.softplus(-2.0 * chroma[:, :1]).mean())


def test_gan_plain_loss_with_a_module_has_no_grad():
    torch.manual_seed(0)
    disc = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 4, 2, 1), torch.nn.LeakyReLU(0.2), torch.nn.Conv2d(4, 1, 4, 1, 1)
    )
    luma = torch.rand(2, 1, 16, 16) * 2 - 1
    chroma = (torch.rand(2, 2, 16, 16) * 2 - 1).requires_grad_(True)
    loss = gan_plain_loss(disc, luma, chroma)
    assert not loss.requires_grad
    logits = disc(torch.cat([luma, chroma], 1))
    expected = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    torch.testing.assert_close(loss, expected.detach())


# --------------------------------------------------------------------------------------
# Validation and devices
# --------------------------------------------------------------------------------------


def test_metrics_reject_wrong_shapes():
    rgb = torch.rand(2, 3, 8, 8)
    chroma = torch.rand(2, 2, 8, 8)
    for fn in (ssim, psnr, colourfulness_difference):
        with pytest.raises(ValueError, match="same shape"):
            fn(rgb, rgb[:, :, :7])
        with pytest.raises(ValueError, match="same shape"):
            fn(rgb, rgb[:1])
        with pytest.raises(ValueError, match="3 channel"):
            fn(chroma, chroma)
        with pytest.raises(ValueError, match="4-D"):
            fn(rgb[0], rgb[0])
    for fn in (l1_distance, lambda p, t: chroma_mae(p, t, "lab")):
        with pytest.raises(ValueError, match="2 channel"):
            fn(rgb, rgb)
        with pytest.raises(ValueError, match="same shape"):
            fn(chroma, chroma[:, :, 1:])
        with pytest.raises(ValueError, match="4-D"):
            fn(chroma[0], chroma[0])
    with pytest.raises(ValueError, match="3 channel"):
        colourfulness(chroma)
    with pytest.raises(ValueError, match="unknown colour space"):
        chroma_mae(chroma, chroma, "rgb")
    with pytest.raises(ValueError, match="1 channel"):
        gan_plain_loss(lambda x: x, chroma, chroma)
    with pytest.raises(ValueError, match="agree"):
        gan_plain_loss(lambda x: x, rgb[:, :1], chroma[:1])
    with pytest.raises(TypeError, match="floating"):
        psnr(rgb.to(torch.uint8), rgb.to(torch.uint8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_matches_cpu(dtype):
    pred, target = pair("photo", (3, 3, 64, 48))
    pred, target = pred.to(dtype), target.to(dtype)
    pc, tc = pred.cuda(), target.cuda()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for fn in (
        ssim,
        lambda p, t: ssim(p, t, gaussian=True),
        psnr,
        colourfulness_difference,
        lambda p, t: l1_distance(p[:, :2], t[:, :2]),
        lambda p, t: chroma_mae(p[:, 1:], t[:, 1:], "yuv"),
    ):
        out = fn(pc, tc)
        assert out.device.type == "cuda" and out.shape == (3,)
        torch.testing.assert_close(out.cpu(), fn(pred, target), atol=tol, rtol=1e-6)
    torch.testing.assert_close(
        ssim(pc, tc).cpu().double(), sk_ssim(pred, target), atol=1e-4, rtol=0
    )


def test_docstring_examples():
    result = doctest.testmod(metrics, extraglobs={"torch": torch})
    assert result.attempted > 8 and result.failed == 0


def test_image_metrics_gathers_each_metric_per_image():
    from colourmodels.colour import rgb_to_luma_chroma

    gen = torch.Generator().manual_seed(4)
    truth = torch.rand(3, 3, 16, 16, generator=gen, dtype=torch.float64)
    pred = (truth + 0.1 * torch.rand(3, 3, 16, 16, generator=gen, dtype=torch.float64)).clamp(0, 1)
    _, true_chroma = rgb_to_luma_chroma(truth, "yuv")
    _, pred_chroma = rgb_to_luma_chroma(pred, "yuv")
    values = image_metrics(pred, truth, pred_chroma, true_chroma, "yuv")
    assert tuple(values) == IMAGE_METRICS
    torch.testing.assert_close(values["l1_distance"], l1_distance(pred_chroma, true_chroma))
    torch.testing.assert_close(values["chroma_mae"], chroma_mae(pred_chroma, true_chroma, "yuv"))
    torch.testing.assert_close(values["ssim"], ssim(pred, truth))
    torch.testing.assert_close(values["psnr"], psnr(pred, truth))
    torch.testing.assert_close(
        values["colourfulness_difference"], colourfulness_difference(pred, truth)
    )
    assert all(v.shape == (3,) for v in values.values())
