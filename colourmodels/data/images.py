"""Safe image loading and the grayscale test.

:func:`load_rgb` is the one way the platform reads a photograph. It returns an 8-bit
``RGB`` :class:`PIL.Image.Image`, fully decoded and detached from the file, or raises
:class:`ImageError` (a ``ValueError``) whose message names the file. It refuses:

- missing or unreadable files, files that are not images, images in a format outside
  :data:`ALLOWED_FORMATS`, corrupt or truncated data (Pillow's
  ``LOAD_TRUNCATED_IMAGES`` is left off, so a cut-off JPEG is an error, not grey fill);
- images with more than ``max_pixels`` pixels (:data:`MAX_PIXELS` by default), checked
  from the header before any pixel is decoded, and Pillow's own decompression-bomb
  warning and error;
- modes it cannot map to RGB (the message names the mode and its number of bands).

Conversion to RGB, by source mode:

==================  ==========================================================
``RGB``             as is
``L``, ``1``        grey replicated into the three channels
``I;16*``, ``I``    16-bit grey scaled to 8 bits (``round(v / 257)``); mode ``I``
                    (32-bit) is read as 16-bit unless every value is <= 255, in
                    which case it is taken as 8-bit; negatives clip to 0
``F``               float grey: taken as [0, 1] when its maximum is <= 1, else as
                    [0, 255]; clipped
``P``, ``PA``       palette expanded; transparency composited on white
``RGBA``, ``LA``,   alpha composited on a white background (premultiplied modes
``RGBa``, ``La``    are un-premultiplied first)
``CMYK``            Pillow's conversion (ICC profiles are not applied)
``YCbCr``, ``RGBX``  Pillow's conversion
==================  ==========================================================

16-bit-per-channel colour PNGs are reduced to 8 bits by Pillow when opened. Animated
images (GIF, APNG, WebP) give their first frame. The EXIF orientation tag is applied
(a malformed EXIF block is ignored rather than refusing the photograph).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "resize_square",
    "ALLOWED_FORMATS",
    "GRAYSCALE_THRESHOLD",
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "ImageError",
    "chroma_magnitude",
    "is_grayscale",
    "load_rgb",
    "probe_image",
    "to_rgb",
]

#: Largest image accepted, in pixels (width x height): 64 Mi pixels, about 200 MB once
#: decoded to 8-bit RGB. A 50-megapixel camera photograph fits; a forged header that
#: claims 100,000 x 100,000 does not. Pillow's own limit (``Image.MAX_IMAGE_PIXELS``)
#: is enforced as well.
MAX_PIXELS = 64 * 2**20

#: Formats :func:`load_rgb` decodes (Pillow format names; formats this Pillow build lacks
#: are left out when opening). The multi-picture JPEGs many cameras write open through
#: the JPEG decoder (Pillow then reports them as "MPO").
ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM")

#: File name extensions treated as images by the folder reader (lower case).
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".bmp",
        ".gif",
        ".tif",
        ".tiff",
        ".webp",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
    }
)

#: Default threshold of :func:`is_grayscale`: mean chroma magnitude
#: ``sqrt(a*^2 + b*^2)`` in CIE L*a*b* units (D65), measured on a copy reduced to at
#: most 256 pixels a side. 2.0 is about one just-noticeable colour difference: JPEG
#: chroma noise on a grey photograph stays below it, a sepia or faintly tinted print
#: (mean chroma 5-15) stays above it and is kept as a colour image.
GRAYSCALE_THRESHOLD = 2.0

_WHITE = (255, 255, 255)
_GRAY_SAMPLE_SIDE = 256

Source = str | os.PathLike[str] | BinaryIO | bytes


class ImageError(ValueError):
    """An image that cannot be used; ``path`` names the file, ``reason`` says why."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _name_of(source: Source, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, bytes):
        return "<bytes>"
    return str(getattr(source, "name", "<stream>"))


def _available_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(f for f in ALLOWED_FORMATS if f in Image.OPEN)


def _open(source: Source, name: str, max_pixels: int) -> Image.Image:
    """Open (header only) with the format whitelist and both pixel limits enforced."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageError(name, "file not found")
        if not path.is_file():
            raise ImageError(name, "not a regular file")
    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(fp, formats=_available_formats())
    except Image.UnidentifiedImageError:
        raise ImageError(name, "not an image, or not a supported format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(name, f"image too large (decompression bomb?): {exc}") from None
    except OSError as exc:
        raise ImageError(name, f"cannot read file: {exc}") from None
    except Exception as exc:  # a decoder plugin may raise anything on a forged header
        raise ImageError(name, f"corrupt image header: {exc}") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise ImageError(name, f"empty image ({width}x{height})")
    if width * height > max_pixels:
        image.close()
        raise ImageError(
            name,
            f"image too large: {width}x{height} = {width * height:,} pixels "
            f"(limit {max_pixels:,}; decompression bomb?)",
        )
    return image


def probe_image(
    source: Source, *, name: str | None = None, max_pixels: int = MAX_PIXELS
) -> tuple[str, tuple[int, int], str]:
    """Read only the header: ``(format, (width, height), mode)``; :class:`ImageError` if
    the file is not an accepted image or is over the pixel limit. Cheap (no decoding), so
    it does not catch truncated data; :func:`load_rgb` does."""
    label = _name_of(source, name)
    image = _open(source, label, max_pixels)
    try:
        return str(image.format), image.size, image.mode
    finally:
        image.close()


def load_rgb(
    source: Source, *, name: str | None = None, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """Decode an image file (path, binary file object or bytes) into 8-bit RGB.

    The EXIF orientation is applied and the mode converted as the module docstring's
    table says. Raises :class:`ImageError` naming the file (``name`` overrides the label
    used in messages) for anything that cannot be decoded safely.
    """
    label = _name_of(source, name)
    image = _open(source, label, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        image.close()
        raise ImageError(label, f"image too large (decompression bomb?): {exc}") from None
    except OSError as exc:
        image.close()
        reason = str(exc)
        if "truncated" in reason.lower():
            raise ImageError(label, f"truncated image data ({reason})") from None
        raise ImageError(label, f"corrupt image data ({reason})") from None
    except Exception as exc:
        image.close()
        raise ImageError(label, f"corrupt image data ({type(exc).__name__}: {exc})") from None
    try:
        try:
            oriented = ImageOps.exif_transpose(image)
        except Exception:  # malformed EXIF: keep the pixels as stored
            oriented = image
        if oriented is None:  # older Pillow returns None when nothing changed in place
            oriented = image
        return to_rgb(oriented, name=label)
    finally:
        image.close()


def _gray_from_array(values: np.ndarray, mode: str) -> Image.Image:
    values = values.astype(np.float64)
    if mode == "F":
        finite = values[np.isfinite(values)]
        top = float(finite.max()) if finite.size else 0.0
        scale = 255.0 if top <= 1.0 else 1.0
        values = np.nan_to_num(values, nan=0.0, posinf=255.0 / scale, neginf=0.0) * scale
    elif mode.startswith("I;16"):
        values = values / 257.0
    else:  # mode "I": 16-bit unless all values fit in 8 bits
        if values.size and values.max() > 255:
            values = values / 257.0
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode="L")


def _on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(image: Image.Image, *, name: str = "<image>") -> Image.Image:
    """Convert a decoded image of any supported mode to a new 8-bit RGB image (see the
    module docstring for the rules); :class:`ImageError` for modes with no rule."""
    mode = image.mode
    try:
        if mode == "RGB":
            return image.copy()
        if mode in ("L", "1"):
            return image.convert("L").convert("RGB")
        if mode.startswith("I;16") or mode in ("I", "F"):
            return _gray_from_array(np.asarray(image), mode).convert("RGB")
        if mode in ("P", "PA"):
            has_alpha = mode == "PA" or "transparency" in image.info
            if has_alpha:
                return _on_white(image.convert("RGBA"))
            return image.convert("RGB")
        if mode in ("RGBA", "LA", "RGBa", "La"):
            if mode == "RGBa":
                image = image.convert("RGBA")
            elif mode == "La":
                image = image.convert("LA")
            return _on_white(image)
        if mode in ("CMYK", "YCbCr", "RGBX"):
            return image.convert("RGB")
    except Exception as exc:
        raise ImageError(name, f"cannot convert mode {mode!r} to RGB ({exc})") from None
    bands = len(image.getbands())
    raise ImageError(name, f"unsupported image mode {mode!r} with {bands} channel(s)")


def chroma_magnitude(image: Image.Image) -> float:
    """Mean CIE L*a*b* chroma ``sqrt(a*^2 + b*^2)`` of ``image`` (any mode), measured on
    a copy reduced (antialiased) to at most 256 pixels a side."""
    from skimage.color import rgb2lab

    rgb = image if image.mode == "RGB" else to_rgb(image)
    if max(rgb.size) > _GRAY_SAMPLE_SIDE:
        rgb = rgb.copy()
        rgb.thumbnail((_GRAY_SAMPLE_SIDE, _GRAY_SAMPLE_SIDE), Image.Resampling.BOX)
    lab = rgb2lab(np.asarray(rgb, dtype=np.float64) / 255.0)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def is_grayscale(image: Image.Image, threshold: float = GRAYSCALE_THRESHOLD) -> bool:
    """True when ``image`` carries no colour: a single-channel mode (``L``, ``1``,
    ``I``, ``I;16``, ``F``, ``LA``), three equal channels, or a mean chroma
    (:func:`chroma_magnitude`, CIE a*b* units) below ``threshold``
    (:data:`GRAYSCALE_THRESHOLD` = 2.0 by default)."""
    if image.mode in ("L", "1", "I", "F", "LA", "La") or image.mode.startswith("I;16"):
        return True
    rgb = image if image.mode == "RGB" else to_rgb(image)
    pixels = np.asarray(rgb)
    if np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(
        pixels[..., 1], pixels[..., 2]
    ):
        return True
    return chroma_magnitude(rgb) < threshold


def resize_square(image: Image.Image, size: int) -> Image.Image:
    """Shorter side to ``size`` (bicubic, antialiased), then the centred square: how the
    models see an image (training, evaluation, stimuli). Pillow only, no torch."""
    if size <= 0:
        raise ValueError("size must be positive")
    width, height = image.size
    side = min(width, height)
    left = (width - side) / 2.0
    top = (height - side) / 2.0
    if side == size and left == int(left) and top == int(top):
        return image.crop((int(left), int(top), int(left) + side, int(top) + side))
    return image.resize(
        (size, size),
        Image.Resampling.BICUBIC,
        box=(left, top, left + side, top + side),
    )
