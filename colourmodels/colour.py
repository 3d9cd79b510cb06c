"""Colour-space conversions on batched image tensors.

Every function here takes and returns tensors shaped ``(N, C, H, W)`` and works on
any device, in ``float32`` or ``float64``: the result has the input's dtype and
device, and it is computed in that dtype (there is no round trip through numpy).

The conversions reproduce scikit-image exactly (same constants, same piecewise
branches, same clipping):

* :func:`rgb_to_lab` / :func:`lab_to_rgb` are ``skimage.color.rgb2lab`` /
  ``lab2rgb`` (sRGB companding, D65 white, 2° observer);
* :func:`rgb_to_yuv` / :func:`yuv_to_rgb` are ``skimage.color.rgb2yuv`` /
  ``yuv2rgb`` (BT.601 luma, U ≈ .492(B − Y), V ≈ .877(R − Y)), except that
  :func:`yuv_to_rgb` clips to ``[0, 1]`` like :func:`lab_to_rgb` does.

On top of them, :func:`rgb_to_luma_chroma` and :func:`luma_chroma_to_rgb` split an
image into the generator's input (luminance) and target (two chroma channels),
normalised to ``[-1, 1]`` as in ``method.md`` §2:

=====  ===================  ===============================
space  luminance            chroma
=====  ===================  ===============================
LAB    ``L / 50 - 1``       ``a / 110``, ``b / 110``
YUV    ``2 Y - 1``          ``U / 0.436``, ``V / 0.615``
=====  ===================  ===============================

Note on the YUV chroma range: with scikit-image's matrix, pure blue has
``U = 0.43601035`` and pure yellow ``U = -0.43601035``, so their normalised ``U`` is
``±1.0000237``, a hair outside ``[-1, 1]``; red/cyan reach ``V = ±0.61497538``
(normalised ``±0.99996``). The divisors are kept as the specification writes them
(so that the normalisation is exactly invertible); nothing is clamped.
"""

from __future__ import annotations

from enum import StrEnum

import torch

__all__ = [
    "D65_WHITE",
    "LAB_AB_SCALE",
    "LAB_L_SCALE",
    "RGB_FROM_XYZ",
    "RGB_FROM_YUV",
    "XYZ_FROM_RGB",
    "YUV_FROM_RGB",
    "YUV_U_SCALE",
    "YUV_V_SCALE",
    "ColourSpace",
    "denormalise_chroma",
    "lab_to_rgb",
    "luma_chroma_to_rgb",
    "rgb_to_lab",
    "rgb_to_luma_chroma",
    "rgb_to_yuv",
    "yuv_to_rgb",
]

# --------------------------------------------------------------------------------------
# Constants (copied from skimage/color/colorconv.py, scikit-image 0.26)
# --------------------------------------------------------------------------------------

#: sRGB (linear) -> CIE XYZ, ``skimage.color.colorconv.xyz_from_rgb``.
XYZ_FROM_RGB: tuple[tuple[float, float, float], ...] = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)

#: CIE XYZ -> sRGB (linear): ``numpy.linalg.inv(XYZ_FROM_RGB)`` to full float64 precision,
#: i.e. ``skimage.color.colorconv.rgb_from_xyz``.
RGB_FROM_XYZ: tuple[tuple[float, float, float], ...] = (
    (3.2404813432005266, -1.5371515162713183, -0.4985363261688878),
    (-0.9692549499965682, 1.8759900014898907, 0.04155592655829284),
    (0.055646639135177166, -0.20404133836651123, 1.0573110696453443),
)

#: Reference white of illuminant D65, 2° observer (``skimage`` ``_illuminants``).
D65_WHITE: tuple[float, float, float] = (0.95047, 1.0, 1.08883)

#: RGB -> YUV, ``skimage.color.colorconv.yuv_from_rgb``.
YUV_FROM_RGB: tuple[tuple[float, float, float], ...] = (
    (0.299, 0.587, 0.114),
    (-0.14714119, -0.28886916, 0.43601035),
    (0.61497538, -0.51496512, -0.10001026),
)

#: YUV -> RGB: ``numpy.linalg.inv(YUV_FROM_RGB)`` to full float64 precision,
#: i.e. ``skimage.color.colorconv.rgb_from_yuv``.
RGB_FROM_YUV: tuple[tuple[float, float, float], ...] = (
    (1.0000000000000002, -4.182779610884728e-09, 1.1398830297637945),
    (1.0, -0.3946423339441288, -0.5806218496761879),
    (1.0000000000000002, 2.0320618532969705, -1.2232658193378507e-09),
)

# Piecewise-function constants, exactly as scikit-image writes them.
_SRGB_DECODE_THRESHOLD = 0.04045  # rgb2xyz: companded value above which the power law applies
_SRGB_ENCODE_THRESHOLD = 0.0031308  # xyz2rgb: linear value above which the power law applies
_LAB_F_THRESHOLD = 0.008856  # xyz2lab: t above which f(t) = cbrt(t)
_LAB_FINV_THRESHOLD = 0.2068966  # lab2xyz: f above which t = f**3
_LAB_KAPPA = 7.787
_LAB_OFFSET = 16.0 / 116.0

#: Normalisation divisors of method.md §2.
LAB_L_SCALE = 50.0  # luma = L / 50 - 1
LAB_AB_SCALE = 110.0  # chroma = (a, b) / 110
YUV_U_SCALE = 0.436  # chroma U = U / 0.436
YUV_V_SCALE = 0.615  # chroma V = V / 0.615


class ColourSpace(StrEnum):
    """The colour spaces a colourisation model can work in.

    A ``str`` enum: members compare equal to their values, and ``ColourSpace(value)``
    accepts the plain strings (case-insensitively).

    Examples:
        >>> ColourSpace("lab") is ColourSpace.LAB
        True
        >>> ColourSpace("YUV") == "yuv"
        True
    """

    LAB = "lab"
    YUV = "yuv"

    @classmethod
    def _missing_(cls, value: object) -> ColourSpace | None:
        if isinstance(value, str):
            lowered = value.strip().lower()
            for member in cls:
                if member.value == lowered:
                    return member
        return None


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def check_image_batch(x: object, channels: int, name: str) -> torch.Tensor:
    """Raise a clear error unless ``x`` is a floating tensor shaped (N, channels, H, W)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{name} must be a 4-D tensor shaped (N, {channels}, H, W), "
            f"got {x.dim()}-D with shape {tuple(x.shape)}"
        )
    if x.shape[1] != channels:
        raise ValueError(
            f"{name} must have {channels} channel(s) in dim 1, i.e. shape (N, {channels}, H, W); "
            f"got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def _as_space(space: ColourSpace | str) -> ColourSpace:
    try:
        return ColourSpace(space)
    except ValueError:
        valid = ", ".join(repr(m.value) for m in ColourSpace)
        raise ValueError(f"unknown colour space {space!r}; expected one of {valid}") from None


def _matrix(values: tuple[tuple[float, ...], ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device)


def _apply_matrix(values: tuple[tuple[float, ...], ...], x: torch.Tensor) -> torch.Tensor:
    """Per-pixel ``out[:, i] = sum_j M[i, j] * x[:, j]`` on (N, 3, H, W)."""
    return torch.einsum("ij,njhw->nihw", _matrix(values, x), x)


def _channel_vector(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


# --------------------------------------------------------------------------------------
# RGB <-> CIE L*a*b*
# --------------------------------------------------------------------------------------


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    r"""Convert sRGB in ``[0, 1]`` to CIE L\*a\*b\* (D65, 2° observer).

    Same result as ``skimage.color.rgb2lab`` (its constants and piecewise branches:
    sRGB decoding threshold 0.04045, ``f(t) = cbrt(t)`` above 0.008856, else
    ``7.787 t + 16/116``).

    Args:
        rgb: tensor of shape (N, 3, H, W), values in [0, 1].

    Returns:
        L\*a\*b\* tensor of shape (N, 3, H, W), same dtype and device; L in [0, 100],
        a and b roughly in [-128, 127].

    Raises:
        ValueError: if ``rgb`` is not 4-D with 3 channels.

    Examples:
        >>> white = torch.ones(1, 3, 1, 1, dtype=torch.float64)
        >>> [round(v, 4) for v in rgb_to_lab(white).flatten().tolist()]
        [100.0, -0.0025, 0.0047]
        >>> rgb_to_lab(torch.rand(2, 3, 4, 5)).shape
        torch.Size([2, 3, 4, 5])
    """
    check_image_batch(rgb, 3, "rgb")
    # sRGB companding -> linear RGB. The clamps keep the unused branch of torch.where
    # finite (and its gradient NaN-free); they do not change the selected values.
    high = ((rgb.clamp(min=_SRGB_DECODE_THRESHOLD) + 0.055) / 1.055).pow(2.4)
    linear = torch.where(rgb > _SRGB_DECODE_THRESHOLD, high, rgb / 12.92)
    xyz = _apply_matrix(XYZ_FROM_RGB, linear) / _channel_vector(D65_WHITE, linear)
    f = torch.where(
        xyz > _LAB_F_THRESHOLD,
        xyz.clamp(min=_LAB_F_THRESHOLD).pow(1.0 / 3.0),
        _LAB_KAPPA * xyz + _LAB_OFFSET,
    )
    fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    lightness = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.cat([lightness, a, b], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    r"""Convert CIE L\*a\*b\* (D65, 2° observer) to sRGB, clipped to ``[0, 1]``.

    Same result as ``skimage.color.lab2rgb``, including its handling of colours
    outside the sRGB gamut: the intermediate ``f_z = f_y - b/200`` is clipped at 0
    (skimage's "negative Z values clipped to zero", done silently here), and the
    final RGB is clipped to [0, 1].

    Args:
        lab: tensor of shape (N, 3, H, W) holding L (0..100), a, b.

    Returns:
        RGB tensor of shape (N, 3, H, W) in [0, 1], same dtype and device.

    Raises:
        ValueError: if ``lab`` is not 4-D with 3 channels.

    Examples:
        >>> lab = torch.tensor([50.0, 0.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1)
        >>> [round(v, 4) for v in lab_to_rgb(lab).flatten().tolist()]
        [0.4663, 0.4663, 0.4663]
        >>> lab = torch.tensor([50.0, 0.0, 300.0]).view(1, 3, 1, 1)  # far out of gamut
        >>> bool(((lab_to_rgb(lab) >= 0) & (lab_to_rgb(lab) <= 1)).all())
        True
    """
    check_image_batch(lab, 3, "lab")
    lightness, a, b = lab[:, 0:1], lab[:, 1:2], lab[:, 2:3]
    fy = (lightness + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp(min=0.0)  # skimage: z < 0 -> 0
    f = torch.cat([fx, fy, fz], dim=1)
    xyz = torch.where(f > _LAB_FINV_THRESHOLD, f.pow(3), (f - _LAB_OFFSET) / _LAB_KAPPA)
    xyz = xyz * _channel_vector(D65_WHITE, xyz)
    linear = _apply_matrix(RGB_FROM_XYZ, xyz)
    high = 1.055 * linear.clamp(min=_SRGB_ENCODE_THRESHOLD).pow(1.0 / 2.4) - 0.055
    rgb = torch.where(linear > _SRGB_ENCODE_THRESHOLD, high, 12.92 * linear)
    return rgb.clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------
# RGB <-> YUV
# --------------------------------------------------------------------------------------


def rgb_to_yuv(rgb: torch.Tensor) -> torch.Tensor:
    """Convert RGB to YUV exactly as ``skimage.color.rgb2yuv`` (matrix ``YUV_FROM_RGB``).

    Args:
        rgb: tensor of shape (N, 3, H, W), values in [0, 1].

    Returns:
        YUV tensor of shape (N, 3, H, W), same dtype and device: Y in [0, 1],
        U in ±0.43601035, V in ±0.61497538.

    Raises:
        ValueError: if ``rgb`` is not 4-D with 3 channels.

    Examples:
        >>> red = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1)
        >>> rgb_to_yuv(red).flatten().tolist()
        [0.299, -0.14714119, 0.61497538]
    """
    check_image_batch(rgb, 3, "rgb")
    return _apply_matrix(YUV_FROM_RGB, rgb)


def yuv_to_rgb(yuv: torch.Tensor) -> torch.Tensor:
    """Convert YUV to RGB with the exact inverse of skimage's matrix, clipped to [0, 1].

    For YUV values that come from RGB in [0, 1] this is ``skimage.color.yuv2rgb`` and
    inverts :func:`rgb_to_yuv` to rounding error; out-of-range results are clipped
    (which skimage's ``yuv2rgb`` does not do).

    Args:
        yuv: tensor of shape (N, 3, H, W).

    Returns:
        RGB tensor of shape (N, 3, H, W) in [0, 1], same dtype and device.

    Raises:
        ValueError: if ``yuv`` is not 4-D with 3 channels.

    Examples:
        >>> rgb = torch.rand(2, 3, 4, 4, dtype=torch.float64)
        >>> bool(torch.allclose(yuv_to_rgb(rgb_to_yuv(rgb)), rgb, atol=1e-12))
        True
    """
    check_image_batch(yuv, 3, "yuv")
    return _apply_matrix(RGB_FROM_YUV, yuv).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------
# Luminance / chroma split with the [-1, 1] normalisation of method.md §2
# --------------------------------------------------------------------------------------


def _chroma_scale(space: ColourSpace, like: torch.Tensor) -> torch.Tensor:
    if space is ColourSpace.LAB:
        values = (LAB_AB_SCALE, LAB_AB_SCALE)
    else:
        values = (YUV_U_SCALE, YUV_V_SCALE)
    return _channel_vector(values, like)


def rgb_to_luma_chroma(
    rgb: torch.Tensor, space: ColourSpace | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split RGB into normalised luminance and chroma, as the generator sees them.

    LAB: ``luma = L/50 - 1``, ``chroma = (a, b) / 110``.
    YUV: ``luma = 2Y - 1``, ``chroma = (U / 0.436, V / 0.615)``.
    Both land in [-1, 1] for RGB in [0, 1] (YUV's pure blue/yellow reach
    ``|U| = 1.0000237``; see the module docstring).

    Args:
        rgb: tensor of shape (N, 3, H, W), values in [0, 1].
        space: ``ColourSpace.LAB`` / ``"lab"`` or ``ColourSpace.YUV`` / ``"yuv"``.

    Returns:
        ``(luma, chroma)`` shaped (N, 1, H, W) and (N, 2, H, W), same dtype and device.

    Raises:
        ValueError: on a wrong shape or an unknown colour space.

    Examples:
        >>> rgb = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1)
        >>> luma, chroma = rgb_to_luma_chroma(rgb, "yuv")
        >>> round(luma.item(), 6), [round(v, 4) for v in chroma.flatten().tolist()]
        (-0.402, [-0.3375, 1.0])
        >>> luma, chroma = rgb_to_luma_chroma(torch.rand(2, 3, 8, 8), ColourSpace.LAB)
        >>> luma.shape, chroma.shape
        (torch.Size([2, 1, 8, 8]), torch.Size([2, 2, 8, 8]))
    """
    space = _as_space(space)
    check_image_batch(rgb, 3, "rgb")
    if space is ColourSpace.LAB:
        converted = rgb_to_lab(rgb)
        luma = converted[:, 0:1] / LAB_L_SCALE - 1.0
    else:
        converted = rgb_to_yuv(rgb)
        luma = 2.0 * converted[:, 0:1] - 1.0
    chroma = converted[:, 1:3] / _chroma_scale(space, converted)
    return luma, chroma


def denormalise_chroma(chroma: torch.Tensor, space: ColourSpace | str) -> torch.Tensor:
    """Undo the chroma normalisation: return (a, b) for LAB or (U, V) for YUV.

    Args:
        chroma: normalised chroma, shape (N, 2, H, W).
        space: the colour space the chroma belongs to.

    Returns:
        Chroma in the space's own units, shape (N, 2, H, W), same dtype and device.

    Raises:
        ValueError: on a wrong shape or an unknown colour space.

    Examples:
        >>> c = torch.ones(1, 2, 1, 1, dtype=torch.float64)
        >>> denormalise_chroma(c, "lab").flatten().tolist()
        [110.0, 110.0]
        >>> denormalise_chroma(c, "yuv").flatten().tolist()
        [0.436, 0.615]
    """
    space = _as_space(space)
    check_image_batch(chroma, 2, "chroma")
    return chroma * _chroma_scale(space, chroma)


def luma_chroma_to_rgb(
    luma: torch.Tensor, chroma: torch.Tensor, space: ColourSpace | str
) -> torch.Tensor:
    """Recombine normalised luminance and chroma into RGB clipped to [0, 1].

    Exact inverse of the normalisation in :func:`rgb_to_luma_chroma`, followed by
    :func:`lab_to_rgb` or :func:`yuv_to_rgb`.

    Args:
        luma: normalised luminance, shape (N, 1, H, W).
        chroma: normalised chroma, shape (N, 2, H, W) (e.g. a generator's tanh output).
        space: the colour space of ``luma`` and ``chroma``.

    Returns:
        RGB tensor of shape (N, 3, H, W) in [0, 1], in the promoted dtype of the inputs.

    Raises:
        ValueError: on wrong shapes, mismatched N/H/W, or an unknown colour space.

    Examples:
        >>> rgb = torch.rand(2, 3, 8, 8, dtype=torch.float64)
        >>> luma, chroma = rgb_to_luma_chroma(rgb, "lab")
        >>> bool(torch.allclose(luma_chroma_to_rgb(luma, chroma, "lab"), rgb, atol=1e-8))
        True
    """
    space = _as_space(space)
    check_image_batch(luma, 1, "luma")
    check_image_batch(chroma, 2, "chroma")
    if luma.shape[0] != chroma.shape[0] or luma.shape[2:] != chroma.shape[2:]:
        raise ValueError(
            "luma (N, 1, H, W) and chroma (N, 2, H, W) must agree on N, H and W; "
            f"got {tuple(luma.shape)} and {tuple(chroma.shape)}"
        )
    if luma.device != chroma.device:
        raise ValueError(f"luma is on {luma.device} but chroma is on {chroma.device}")
    dtype = torch.promote_types(luma.dtype, chroma.dtype)
    luma, chroma = luma.to(dtype), chroma.to(dtype)
    chroma = denormalise_chroma(chroma, space)
    if space is ColourSpace.LAB:
        return lab_to_rgb(torch.cat([(luma + 1.0) * LAB_L_SCALE, chroma], dim=1))
    return yuv_to_rgb(torch.cat([(luma + 1.0) / 2.0, chroma], dim=1))
