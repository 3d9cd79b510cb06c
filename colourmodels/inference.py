"""Colourise images at their own resolution with a trained generator.

For an input of any size ``W x H`` (RGB or grayscale):

1. the luminance is computed from the full-resolution input with
   :func:`colourmodels.colour.rgb_to_luma_chroma`, exactly as in training (a grayscale
   input is replicated to three equal channels first, so its luminance is its grey
   level under the space's definition);
2. the input is resized to ``model_size x model_size`` (bicubic, antialiased; the whole
   image, squeezed if it is not square, so that every pixel gets a prediction) and its
   luminance at that size is fed to the generator, which predicts normalised chroma;
3. the chroma is resized bilinearly to ``W x H`` (antialiased when reducing) and joined
   with the full-resolution luminance of step 1;
4. :func:`colourmodels.colour.luma_chroma_to_rgb` converts back (clipped to [0, 1]) and
   the result is rounded to 8-bit RGB.

The generator runs in eval mode (BatchNorm with its running statistics, no dropout).
``dropout=True`` keeps the Dropout layers active (the pix2pix noise z) while BatchNorm
stays in eval mode; ``seed`` makes that noise reproducible. The generator's own
train/eval state is restored afterwards. :class:`Colourised` records the settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .colour import ColourSpace, luma_chroma_to_rgb, rgb_to_luma_chroma
from .data.images import to_rgb

__all__ = [
    "Colourised",
    "InferenceSettings",
    "colourise",
    "colourise_batch",
    "dropout_mode",
    "luminance",
]


@dataclass(frozen=True)
class InferenceSettings:
    """How an image was colourised (kept beside the outputs)."""

    space: str
    model_size: int
    dropout: bool
    seed: int | None

    def as_dict(self) -> dict[str, object]:
        return {
            "space": self.space,
            "model_size": self.model_size,
            "dropout": self.dropout,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Colourised:
    """One output image and the settings that made it."""

    image: Image.Image
    settings: InferenceSettings


@contextlib.contextmanager
def dropout_mode(module: nn.Module, dropout: bool = False) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode, with its Dropout layers in train mode when
    ``dropout`` is true; restore every submodule's previous mode on exit."""
    previous = {m: m.training for m in module.modules()}
    module.eval()
    if dropout:
        for m in module.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.train()
    try:
        yield module
    finally:
        for m, training in previous.items():
            m.training = training


def _rgb_image(image: Image.Image) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image, got {type(image).__name__}")
    return image if image.mode == "RGB" else to_rgb(image)


def _to_tensor(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0).unsqueeze(0)


def luminance(image: Image.Image, space: ColourSpace | str) -> torch.Tensor:
    """Normalised luminance (1, 1, H, W) of a PIL image at its own resolution."""
    luma, _ = rgb_to_luma_chroma(_to_tensor(_rgb_image(image)), ColourSpace(space))
    return luma


def _model_input(image: Image.Image, space: ColourSpace, model_size: int) -> torch.Tensor:
    small = image.resize((model_size, model_size), Image.Resampling.BICUBIC)
    luma, _ = rgb_to_luma_chroma(_to_tensor(small), space)
    return luma


def _device_of(generator: nn.Module) -> torch.device:
    for tensor in generator.parameters():
        return tensor.device
    return torch.device("cpu")


def _to_pil(rgb: torch.Tensor) -> Image.Image:
    array = rgb[0].clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy(), mode="RGB")


def _recombine(full: Image.Image, chroma_small: torch.Tensor, space: ColourSpace) -> Image.Image:
    width, height = full.size
    luma = luminance(full, space)
    chroma = F.interpolate(
        chroma_small.float().cpu(),
        size=(height, width),
        mode="bilinear",
        align_corners=False,
        antialias=height < chroma_small.shape[-2] or width < chroma_small.shape[-1],
    )
    return _to_pil(luma_chroma_to_rgb(luma, chroma, space))


def colourise_batch(
    generator: nn.Module,
    images: Sequence[Image.Image],
    space: ColourSpace | str,
    model_size: int,
    *,
    batch_size: int = 16,
    dropout: bool = False,
    seed: int | None = None,
    device: str | torch.device | None = None,
) -> list[Colourised]:
    """Colourise many images (each at its own resolution); the generator runs on
    batches of ``batch_size`` inputs at ``model_size``. See the module docstring."""
    space = ColourSpace(space)
    if model_size <= 0:
        raise ValueError("model_size must be positive")
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    rgb_images = [_rgb_image(image) for image in images]
    target = torch.device(device) if device is not None else _device_of(generator)
    settings = InferenceSettings(space.value, int(model_size), bool(dropout), seed)
    outputs: list[Colourised] = []
    rng_devices = [target] if target.type == "cuda" else []
    with contextlib.ExitStack() as stack:
        if seed is not None:
            stack.enter_context(torch.random.fork_rng(devices=rng_devices))
            torch.manual_seed(seed)
        stack.enter_context(dropout_mode(generator, dropout))
        stack.enter_context(torch.inference_mode())
        for start in range(0, len(rgb_images), batch_size):
            chunk = rgb_images[start : start + batch_size]
            batch = torch.cat([_model_input(im, space, model_size) for im in chunk])
            chroma = generator(batch.to(target)).float().cpu()
            if chroma.shape[1] != 2:
                raise ValueError(f"the generator gives {chroma.shape[1]} channels; chroma needs 2")
            for image, predicted in zip(chunk, chroma):
                outputs.append(
                    Colourised(_recombine(image, predicted.unsqueeze(0), space), settings)
                )
    return outputs


def colourise(
    generator: nn.Module,
    image: Image.Image,
    space: ColourSpace | str,
    model_size: int,
    *,
    dropout: bool = False,
    seed: int | None = None,
    device: str | torch.device | None = None,
) -> Image.Image:
    """Colourise one PIL image (RGB or grayscale) at its own resolution -> PIL RGB."""
    (result,) = colourise_batch(
        generator, [image], space, model_size, dropout=dropout, seed=seed, device=device
    )
    return result.image
