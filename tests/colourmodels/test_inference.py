"""colourmodels.inference: full-resolution colourisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from colourmodels.colour import rgb_to_luma_chroma
from colourmodels.data import image_to_tensor, load_rgb
from colourmodels.inference import colourise, colourise_batch, dropout_mode, luminance
from colourmodels.networks import UNetGenerator, init_weights


def scene(width: int = 45, height: int = 30) -> Image.Image:
    """A smooth, muted (in-gamut) non-square RGB image."""
    y, x = np.mgrid[0:height, 0:width]
    r = 90 + 60 * x / (width - 1)
    g = 110 + 40 * y / (height - 1)
    b = 100 + 30 * np.sin(x / 5.0)
    return Image.fromarray(np.stack([r, g, b], -1).round().astype(np.uint8))


class ConstantChroma(nn.Module):
    """A stand-in generator: constant chroma, and it records its input shapes."""

    def __init__(self, chroma=(0.08, -0.05)) -> None:
        super().__init__()
        self.chroma = nn.Parameter(torch.tensor(chroma).view(1, 2, 1, 1))
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        return self.chroma.expand(x.shape[0], 2, x.shape[2], x.shape[3])


def small_unet(size: int = 32, seed: int = 0, pix2pix_init: bool = True) -> UNetGenerator:
    torch.manual_seed(seed)
    generator = UNetGenerator(1, 2, size, 4)
    if pix2pix_init:  # N(0, 0.02): near-grey outputs; PyTorch's default init is livelier
        init_weights(generator)
    return generator.eval()


@pytest.mark.parametrize("space", ["lab", "yuv"])
def test_output_keeps_resolution_and_luminance(tmp_path, space):
    image = scene(45, 30)
    generator = ConstantChroma()
    out = colourise(generator, image, space, 32)
    assert out.mode == "RGB" and out.size == (45, 30)
    assert generator.seen == [(1, 1, 32, 32)]  # model input at model size

    path = tmp_path / "out.png"  # lossless round trip
    out.save(path)
    reloaded = load_rgb(path)
    diff = (luminance(reloaded, space) - luminance(image, space)).abs()
    # 8-bit rounding of the output RGB moves the normalised luminance by < 0.01
    assert diff.max() < 0.01

    _, chroma = rgb_to_luma_chroma(image_to_tensor(reloaded)[None], space)
    expected = generator.chroma.detach().view(2)
    assert torch.allclose(chroma.mean(dim=(0, 2, 3)), expected, atol=0.01)


def test_chroma_upsampled_bilinearly_to_full_size():
    image = scene(64, 48)

    class LeftRight(nn.Module):
        def forward(self, x):
            n, _, h, w = x.shape
            ramp = torch.linspace(-0.1, 0.1, w).view(1, 1, 1, w).expand(n, 1, h, w)
            return torch.cat([ramp, torch.zeros_like(ramp)], 1)

    out = colourise(LeftRight(), image, "yuv", 32)
    _, chroma = rgb_to_luma_chroma(image_to_tensor(out)[None], "yuv")
    small = LeftRight()(torch.zeros(1, 1, 32, 32))
    expected = F.interpolate(small, size=(48, 64), mode="bilinear", align_corners=False)
    assert (chroma[:, 0] - expected[:, 0]).abs().max() < 0.02


def test_grayscale_input_and_real_unet():
    gray = scene(40, 56).convert("L")
    out = colourise(small_unet(), gray, "lab", 32)
    assert out.mode == "RGB" and out.size == (40, 56)
    rgb_gray = gray.convert("RGB")
    diff = (luminance(out, "lab") - luminance(rgb_gray, "lab")).abs()
    assert diff.mean() < 0.02  # clipping of out-of-gamut colours may move a few pixels


def test_upscaling_small_inputs():
    tiny = scene(12, 9)
    out = colourise(ConstantChroma(), tiny, "lab", 32)
    assert out.size == (12, 9)


def test_batch_matches_single_and_splits_batches():
    images = [scene(45, 30), scene(32, 32), scene(20, 50).convert("L")]
    generator = ConstantChroma()
    results = colourise_batch(generator, images, "lab", 32, batch_size=2)
    assert [tuple(x) for x in generator.seen] == [(2, 1, 32, 32), (1, 1, 32, 32)]
    assert [r.image.size for r in results] == [(45, 30), (32, 32), (20, 50)]
    for image, result in zip(images, results):
        single = colourise(generator, image, "lab", 32)
        assert np.array_equal(np.asarray(single), np.asarray(result.image))
    assert results[0].settings.as_dict() == {
        "space": "lab",
        "model_size": 32,
        "dropout": False,
        "seed": None,
    }


class NoisyChroma(nn.Module):
    """Constant chroma through BatchNorm and Dropout, so the noise shows in the output."""

    def __init__(self) -> None:
        super().__init__()
        self.chroma = nn.Parameter(torch.tensor([0.1, -0.06]).view(1, 2, 1, 1))
        self.norm = nn.BatchNorm2d(2, affine=False)  # eval: identity (mean 0, var 1)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        chroma = self.chroma.expand(x.shape[0], 2, x.shape[2], x.shape[3])
        return self.drop(self.norm(chroma))


def test_eval_by_default_and_dropout_option():
    generator = NoisyChroma().train()
    image = scene(48, 40)
    first = np.asarray(colourise(generator, image, "lab", 32))
    second = np.asarray(colourise(generator, image, "lab", 32))
    assert np.array_equal(first, second)  # eval mode: deterministic
    assert generator.training and generator.drop.training  # the caller's mode is restored
    assert generator.norm.running_mean.abs().max() == 0  # BatchNorm never left eval mode

    noisy = colourise_batch(generator, [image], "lab", 32, dropout=True, seed=1)[0]
    same = colourise_batch(generator, [image], "lab", 32, dropout=True, seed=1)[0]
    other = colourise_batch(generator, [image], "lab", 32, dropout=True, seed=2)[0]
    assert noisy.settings.dropout is True and noisy.settings.seed == 1
    assert np.array_equal(np.asarray(noisy.image), np.asarray(same.image))
    assert not np.array_equal(np.asarray(noisy.image), np.asarray(other.image))
    assert not np.array_equal(np.asarray(noisy.image), first)
    assert generator.norm.running_mean.abs().max() == 0


def test_real_unet_dropout_is_seeded():
    generator = small_unet(64, pix2pix_init=False)  # one Dropout layer at 64 px
    image = scene(48, 40)
    plain = colourise(generator, image, "lab", 64)
    assert np.array_equal(np.asarray(plain), np.asarray(colourise(generator, image, "lab", 64)))
    a = colourise_batch(generator, [image], "lab", 64, dropout=True, seed=5)[0].image
    b = colourise_batch(generator, [image], "lab", 64, dropout=True, seed=5)[0].image
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_dropout_mode_leaves_batchnorm_in_eval():
    generator = small_unet(64).train()
    with dropout_mode(generator, dropout=True):
        modes = {type(m).__name__: m.training for m in generator.modules()}
        assert modes["Dropout"] is True and modes["BatchNorm2d"] is False
    assert all(m.training for m in generator.modules())


def test_bad_arguments():
    with pytest.raises(TypeError):
        colourise(ConstantChroma(), np.zeros((4, 4, 3)), "lab", 32)
    with pytest.raises(ValueError):
        colourise(ConstantChroma(), scene(), "hsv", 32)
    with pytest.raises(ValueError):
        colourise_batch(ConstantChroma(), [scene()], "lab", 0)
