"""Image helpers for the web process (Pillow only: a web server must not import torch)."""

from __future__ import annotations

import io

from django.core.files.storage import default_storage
from django.http import HttpResponse
from PIL import Image

#: The formats a run's colourised images are stored in, by their first bytes.
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def content_type_of(data: bytes) -> str:
    """The content type of stored image bytes, from their signature: a trained run stores
    PNG, an uploaded run keeps its JPEGs and PNGs as they came."""
    for signature, content_type in _SIGNATURES:
        if data.startswith(signature):
            return content_type
    return "application/octet-stream"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def stored_thumbnail(name: str, side: int) -> bytes:
    """A JPEG of the stored image ``name`` fitted within ``side`` × ``side`` (raises
    FileNotFoundError when it is gone)."""
    with default_storage.open(name, "rb") as f, Image.open(f) as picture:
        picture = picture.convert("RGB")
        picture.thumbnail((side, side))
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def image_response(data: bytes, content_type: str, *, max_age: int = 3600) -> HttpResponse:
    """An image for one browser only (pages behind a login or a participant's cookie)."""
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = f"private, max-age={max_age}"
    return response
