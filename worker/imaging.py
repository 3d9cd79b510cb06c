"""Image helpers for the web process (Pillow only: a web server must not import torch)."""

from __future__ import annotations

import io

from django.core.files.storage import default_storage
from django.http import HttpResponse
from PIL import Image


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
