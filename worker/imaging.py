"""Image helpers for the web process (Pillow only: a web server must not import torch)."""

from __future__ import annotations

import io

from PIL import Image


def resize_square(image: Image.Image, size: int) -> Image.Image:
    """Shorter side to ``size`` (bicubic), then the centred square: the same pixels as
    ``colourmodels.data.dataset.resize_square``, which the models were trained on."""
    if size <= 0:
        raise ValueError("size must be positive")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) / 2.0, (height - side) / 2.0
    if side == size and left == int(left) and top == int(top):
        return image.crop((int(left), int(top), int(left) + side, int(top) + side))
    return image.resize(
        (size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side)
    )


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
