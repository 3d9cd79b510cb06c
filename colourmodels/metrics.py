"""Per-image evaluation metrics on batched tensors (method.md §6).

Every metric takes batches shaped ``(N, C, H, W)`` and returns a 1-D tensor of
length ``N`` (one value per image) on the input's device, except
:func:`gan_plain_loss`, which is a per-batch scalar like the loss it mirrors.
Floating inputs only; ``float64`` inputs are computed in ``float64`` and anything
else in ``float32``.

* :func:`l1_distance` — the paper's "L1 distance": ``λ · mean|ĉ − c|`` over the two
  normalised chroma channels (the generator loss's L1 term, λ = 100).
* :func:`chroma_mae` — the same error in the colour space's own units (ab or UV).
* :func:`ssim` — ``skimage.metrics.structural_similarity(x, y, channel_axis=-1,
  data_range=1.0)`` on RGB, batched (optionally the Gaussian variant of Wang et al.).
* :func:`psnr` — peak signal-to-noise ratio on RGB.
* :func:`colourfulness` / :func:`colourfulness_difference` — Hasler & Süsstrunk (2003).
* :func:`gan_plain_loss` — the generator's adversarial BCE term, without gradients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from colourmodels.colour import ColourSpace, check_image_batch, denormalise_chroma

__all__ = [
    "chroma_mae",
    "colourfulness",
    "colourfulness_difference",
    "gan_plain_loss",
    "l1_distance",
    "psnr",
    "ssim",
]


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _check_pair(
    pred: object, target: object, channels: int, names: tuple[str, str] = ("pred", "target")
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a (pred, target) pair and cast both to the working dtype."""
    pred = check_image_batch(pred, channels, names[0])
    target = check_image_batch(target, channels, names[1])
    if pred.shape != target.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.device != target.device:
        raise ValueError(f"{names[0]} is on {pred.device} but {names[1]} is on {target.device}")
    dtype = _work_dtype(pred, target)
    return pred.to(dtype), target.to(dtype)


def _work_dtype(*tensors: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


# --------------------------------------------------------------------------------------
# Chroma errors
# --------------------------------------------------------------------------------------


def l1_distance(
    pred_chroma: torch.Tensor, target_chroma: torch.Tensor, lambda_l1: float = 100.0
) -> torch.Tensor:
    """The paper's L1 distance: ``lambda_l1 * mean|pred - target|`` per image.

    The mean runs over both normalised chroma channels and all pixels of each image,
    so the batch mean of this metric equals the generator loss's L1 term (λ = 100).

    Args:
        pred_chroma: predicted normalised chroma, shape (N, 2, H, W).
        target_chroma: true normalised chroma, shape (N, 2, H, W).
        lambda_l1: the weight λ (100 in pix2pix and the paper).

    Returns:
        Tensor of shape (N,).

    Raises:
        ValueError: on mismatched or wrong shapes.

    Examples:
        >>> pred = torch.zeros(1, 2, 1, 2)
        >>> target = torch.tensor([0.1, -0.3, 0.0, 0.2]).view(1, 2, 1, 2)
        >>> [round(v, 4) for v in l1_distance(pred, target).tolist()]
        [15.0]
    """
    pred, target = _check_pair(pred_chroma, target_chroma, 2, ("pred_chroma", "target_chroma"))
    return lambda_l1 * (pred - target).abs().mean(dim=(1, 2, 3))


def chroma_mae(
    pred_chroma: torch.Tensor, target_chroma: torch.Tensor, space: ColourSpace | str
) -> torch.Tensor:
    """Mean absolute chroma error per image in the space's own units (ab or UV).

    Both inputs are normalised chroma (as the generator outputs); they are
    denormalised (LAB: ×110; YUV: U×0.436, V×0.615) and the absolute error is
    averaged over both channels and all pixels.

    Args:
        pred_chroma: predicted normalised chroma, shape (N, 2, H, W).
        target_chroma: true normalised chroma, shape (N, 2, H, W).
        space: ``"lab"`` or ``"yuv"`` (or a :class:`ColourSpace`).

    Returns:
        Tensor of shape (N,).

    Examples:
        >>> pred = torch.zeros(1, 2, 1, 1)
        >>> target = torch.full((1, 2, 1, 1), 0.5)
        >>> chroma_mae(pred, target, "lab").tolist()
        [55.0]
    """
    pred, target = _check_pair(pred_chroma, target_chroma, 2, ("pred_chroma", "target_chroma"))
    error = denormalise_chroma(pred, space) - denormalise_chroma(target, space)
    return error.abs().mean(dim=(1, 2, 3))


# --------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------

_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_UNIFORM_WIN = 7
_GAUSS_SIGMA = 1.5
_GAUSS_TRUNCATE = 3.5  # skimage's choice with gaussian_weights=True: an 11-tap filter
# Bytes of one map processed at once on the CPU, per intra-op thread: a chunk's
# working set (about 14 such maps, allocated once per call) then stays in the caches,
# which is what makes the CPU path fast (256 KiB per thread was best with 1 and with 2
# threads, in float32 and in float64). _CPU_CHUNK_ELEMENTS, when set, overrides this
# rule (the tests use it). On other devices the whole batch, up to
# _GPU_CHUNK_ELEMENTS per map, goes at once.
_CPU_CHUNK_BYTES_PER_THREAD = 1 << 18
_CPU_CHUNK_ELEMENTS: int | None = None
_GPU_CHUNK_ELEMENTS = 1 << 25


def _chunk_budget(device: torch.device, dtype: torch.dtype) -> int:
    """Elements per map of one chunk."""
    if device.type != "cpu":
        return _GPU_CHUNK_ELEMENTS
    if _CPU_CHUNK_ELEMENTS is not None:
        return _CPU_CHUNK_ELEMENTS
    threads = max(1, min(torch.get_num_threads(), 16))
    return _CPU_CHUNK_BYTES_PER_THREAD // dtype.itemsize * threads


def _gaussian_taps(sigma: float, truncate: float) -> list[float]:
    """scipy.ndimage's 1-D Gaussian kernel (radius ``int(truncate * sigma + 0.5)``)."""
    radius = int(truncate * sigma + 0.5)
    taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    total = math.fsum(taps)
    return [t / total for t in taps]


def _leading_view(buffer: torch.Tensor, shape: torch.Size, dim: int, size: int) -> torch.Tensor:
    """The view of ``buffer`` shaped like ``shape`` but with ``size`` along ``dim``."""
    sizes = list(shape)
    sizes[dim] = size
    return buffer[tuple(slice(0, s) for s in sizes)]


class _ChunkViews(NamedTuple):
    """Views into an :class:`_SSIMWorkspace` for one chunk shape."""

    p: torch.Tensor  # x + y
    m: torch.Tensor  # x − y
    pm: torch.Tensor  # (p, m)
    squares: torch.Tensor  # (p² + c2, m²)
    filter_steps: list[tuple[str, tuple[torch.Tensor, ...], float]]
    means: torch.Tensor  # filtered (p, m)
    variances: torch.Tensor  # filtered squares
    plus: torch.Tensor  # (mean², variance) terms of p
    minus: torch.Tensor  # (mean², variance) terms of m
    numerator: torch.Tensor  # scratch


class _SSIMWorkspace:
    """Preallocated buffers and precomputed views for chunked SSIM.

    A chunk is ``planes`` single-channel images of ``rows`` × ``cols``. Its maps are
    stacked as (4, planes, rows, cols): p = x + y, m = x − y, p², m². Only these four
    need filtering, because 2·μxμy = (μp² − μm²)/2, μx² + μy² = (μp² + μm²)/2,
    2σxy = (σp² − σm²)/2 and σx² + σy² = (σp² + σm²)/2.

    All buffers are allocated once per :func:`ssim` call and every view the loop
    needs is built once per chunk shape, so a chunk costs only its ~20 arithmetic
    kernels; on the CPU that, and the cache-sized chunks, is what makes it fast.
    """

    def __init__(
        self,
        planes: int,
        rows: int,
        cols: int,
        taps: list[float] | None,
        c1: float,
        c2: float,
        cov_norm: float,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        self.taps = taps
        self.win = _UNIFORM_WIN if taps is None else len(taps)
        # The box filter returns plain sums (weights add up to k = 49), the Gaussian
        # one weighted means (k = 1). With s = k·μ the terms formed below are
        # s_p² = k²·μp² and s_pp − s_p²/k = k·σp² (population), so C1 is scaled by k²
        # and C2 by k; the factor 2 absorbs the ½ of the identities above, and the
        # covariance normalisation is divided out of the variance factors.
        self.k = k = float(self.win * self.win) if taps is None else 1.0
        out_rows, out_cols = rows - self.win + 1, cols - self.win + 1
        empty = {"dtype": dtype, "device": device}
        self.maps = torch.empty((4, planes, rows, cols), **empty)
        self.col_filtered = torch.empty((4, planes, rows, out_cols), **empty)
        self.filtered = torch.empty((4, planes, out_rows, out_cols), **empty)
        self.scratch = torch.empty((2, planes, out_rows, out_cols), **empty)
        if taps is None:  # partial sums of the 7-tap box filter
            self.pairs_w = torch.empty((4, planes, rows, cols - 1), **empty)
            self.quads_w = torch.empty((4, planes, rows, cols - 3), **empty)
            self.pairs_h = torch.empty((4, planes, rows - 1, out_cols), **empty)
            self.quads_h = torch.empty((4, planes, rows - 3, out_cols), **empty)
        # C2 enters through the p² map: the window sum of (p² + 2·C2/cov_norm) is
        # s_pp + 2·C2·k/cov_norm (the m² map gets nothing). C1 is added to s_p².
        self.c2_p = torch.tensor([2.0 * c2 / cov_norm, 0.0], **empty).view(2, 1, 1, 1)
        self.c1_p = torch.tensor([2.0 * c1 * k * k, 0.0], **empty).view(2, 1, 1, 1)
        self._views: dict[tuple[int, int, int], _ChunkViews] = {}

    def _filter_steps(
        self,
        src: torch.Tensor,
        dim: int,
        out: torch.Tensor,
        pairs_buffer: torch.Tensor | None,
        quads_buffer: torch.Tensor | None,
    ) -> list[tuple[str, tuple[torch.Tensor, ...], float]]:
        """Kernels of a 1-D 'valid' filter of ``src`` along ``dim`` into ``out``."""
        n = src.shape[dim]
        m = out.shape[dim]
        if self.taps is not None:  # weighted taps: out = Σ taps[i]·src[i : i + m]
            steps = [("mul", (src.narrow(dim, 0, m), out), self.taps[0])]
            for i in range(1, self.win):
                steps.append(("add_", (out, src.narrow(dim, i, m)), self.taps[i]))
            return steps
        # 7-tap box in four passes: pairs[i] = src[i] + src[i+1];
        # quads[i] = pairs[i] + pairs[i+2]; out[i] = quads[i] + pairs[i+4] + src[i+6].
        assert pairs_buffer is not None and quads_buffer is not None
        pairs = _leading_view(pairs_buffer, src.shape, dim, n - 1)
        quads = _leading_view(quads_buffer, src.shape, dim, n - 3)
        return [
            ("add", (src.narrow(dim, 0, n - 1), src.narrow(dim, 1, n - 1), pairs), 1.0),
            ("add", (pairs.narrow(dim, 0, n - 3), pairs.narrow(dim, 2, n - 3), quads), 1.0),
            ("add", (quads.narrow(dim, 0, m), pairs.narrow(dim, 4, m), out), 1.0),
            ("add_", (out, src.narrow(dim, 6, m)), 1.0),
        ]

    def _make_views(self, planes: int, rows: int, cols: int) -> _ChunkViews:
        out_rows, out_cols = rows - self.win + 1, cols - self.win + 1
        maps = self.maps[:, :planes, :rows, :cols]
        col_filtered = self.col_filtered[:, :planes, :rows, :out_cols]
        s = self.filtered[:, :planes, :out_rows, :out_cols]
        boxed = self.taps is None
        steps = self._filter_steps(
            maps,
            -1,
            col_filtered,
            self.pairs_w if boxed else None,
            self.quads_w if boxed else None,
        )
        steps += self._filter_steps(
            col_filtered,
            -2,
            s,
            self.pairs_h if boxed else None,
            self.quads_h if boxed else None,
        )
        pairs = s.view(2, 2, planes, out_rows, out_cols)
        return _ChunkViews(
            p=maps[0],
            m=maps[1],
            pm=maps[:2],
            squares=maps[2:],
            filter_steps=steps,
            means=s[:2],
            variances=s[2:],
            plus=pairs[:, 0],
            minus=pairs[:, 1],
            numerator=self.scratch[:, :planes, :out_rows, :out_cols],
        )

    def ssim_sums(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Sum of the SSIM map over the valid region of each plane of ``x``, ``y``.

        ``x`` and ``y`` are (planes, rows, cols) with planes, rows and cols at most
        the sizes the workspace was built for.
        """
        key = (x.shape[0], x.shape[1], x.shape[2])
        v = self._views.get(key)
        if v is None:
            v = self._views[key] = self._make_views(*key)
        torch.add(x, y, out=v.p)
        torch.sub(x, y, out=v.m)
        torch.addcmul(self.c2_p, v.pm, v.pm, out=v.squares)  # p² + c2, m²
        for op, tensors, weight in v.filter_steps:
            if op == "add":
                torch.add(tensors[0], tensors[1], out=tensors[2])
            elif op == "add_":
                tensors[0].add_(tensors[1], alpha=weight)
            else:
                torch.mul(tensors[0], weight, out=tensors[1])
        v.variances.addcmul_(v.means, v.means, value=-1.0 / self.k)  # k·σ² (+ c2 for p)
        torch.addcmul(self.c1_p, v.means, v.means, out=v.means)  # s² (+ c1 for p)
        # plus = (s_p² + c1, k·σp² + c2), minus = (s_m², k·σm²), both ∝ (2·k², 2·k/cov_norm)
        numerator = torch.sub(v.plus, v.minus, out=v.numerator)  # ∝ (2μxμy + C1, 2σxy + C2)
        denominator = v.plus.add_(v.minus)  # ∝ (μx² + μy² + C1, σx² + σy² + C2)
        numerator[0].mul_(numerator[1])
        denominator[0].mul_(denominator[1])
        return numerator[0].div_(denominator[0]).sum(dim=(-2, -1))


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    gaussian: bool = False,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Mean structural similarity per image, per channel then averaged over channels.

    Default (``gaussian=False``): identical to
    ``skimage.metrics.structural_similarity(x, y, channel_axis=-1, data_range=1.0)``:
    7×7 uniform window, sample covariance (× 49/48), K1 = 0.01, K2 = 0.03, and the
    mean taken over the map with a 3-pixel border cropped (i.e. over the windows that
    lie wholly inside the image, so no padding is ever needed).

    ``gaussian=True``: Wang et al.'s variant, identical to ``structural_similarity``
    with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``: 11-tap
    Gaussian window (σ = 1.5, truncated at 3.5σ), population covariance, 5-pixel
    border cropped.

    The batch is processed in cache-sized chunks on the CPU (whole on a GPU); float64
    input is computed in float64, anything else in float32 (its result agrees with
    skimage's float64 one to about 1e-7).

    Args:
        pred: RGB images (N, 3, H, W) in [0, data_range].
        target: RGB images (N, 3, H, W) in [0, data_range].
        gaussian: use the Gaussian window instead of the 7×7 box.
        data_range: the value range of the images (1.0 for [0, 1]).

    Returns:
        Tensor of shape (N,) with the SSIM of each image (1.0 for identical images).

    Raises:
        ValueError: on mismatched or wrong shapes, or images smaller than the window
            (7 px, or 11 px with ``gaussian=True``).

    Examples:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> ssim(x, x).tolist()
        [1.0, 1.0]
        >>> ssim(x, 1 - x).shape
        torch.Size([2])
    """
    pred, target = _check_pair(pred, target, 3)
    if gaussian:
        taps: list[float] | None = _gaussian_taps(_GAUSS_SIGMA, _GAUSS_TRUNCATE)
        win = len(taps)
        cov_norm = 1.0
    else:
        taps = None
        win = _UNIFORM_WIN
        cov_norm = win * win / (win * win - 1.0)
    n, c, h, w = pred.shape
    if h < win or w < win:
        raise ValueError(
            f"ssim needs images of at least {win}x{win} pixels "
            f"({'Gaussian' if gaussian else 'uniform'} window of {win}), "
            f"got {h}x{w}"
        )
    planes_x = pred.reshape(n * c, h, w)
    planes_y = target.reshape(n * c, h, w)
    out_h, out_w = h - win + 1, w - win + 1
    if n == 0:
        return torch.zeros(0, dtype=pred.dtype, device=pred.device)

    budget = _chunk_budget(pred.device, pred.dtype)
    planes_per_chunk = min(n * c, max(1, budget // (h * w)))
    # A single plane bigger than the budget is split into bands of output rows, each
    # read with its (win - 1)-row halo.
    rows_per_band = out_h if h * w <= budget else max(16, budget // w - (win - 1))
    band_rows = min(h, rows_per_band + win - 1)
    workspace = _SSIMWorkspace(
        planes_per_chunk,
        band_rows,
        w,
        taps,
        (_SSIM_K1 * data_range) ** 2,
        (_SSIM_K2 * data_range) ** 2,
        cov_norm,
        pred.dtype,
        pred.device,
    )
    chunk_totals = []
    for p0 in range(0, n * c, planes_per_chunk):
        p1 = min(n * c, p0 + planes_per_chunk)
        total = None
        for r0 in range(0, out_h, rows_per_band):
            r1 = min(out_h, r0 + rows_per_band) + win - 1
            band = workspace.ssim_sums(planes_x[p0:p1, r0:r1], planes_y[p0:p1, r0:r1])
            total = band.double() if total is None else total + band.double()
        chunk_totals.append(total)
    totals = torch.cat(chunk_totals)
    per_channel = totals.view(n, c) / (out_h * out_w)
    return per_channel.mean(dim=1).to(pred.dtype)


# --------------------------------------------------------------------------------------
# PSNR and colourfulness
# --------------------------------------------------------------------------------------


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB, over all channels and pixels.

    ``10 · log10(data_range² / MSE)``, as ``skimage.metrics.peak_signal_noise_ratio``
    called with ``data_range``. Identical images (MSE = 0) give ``inf``; average
    such values with care (e.g. drop or cap them before taking a mean).

    Args:
        pred: RGB images (N, 3, H, W).
        target: RGB images (N, 3, H, W).
        data_range: the value range of the images (1.0 for [0, 1]).

    Returns:
        Tensor of shape (N,).

    Examples:
        >>> target = torch.zeros(1, 3, 2, 2)
        >>> psnr(target + 0.1, target).tolist()  # MSE = 0.01 -> 20 dB
        [20.0]
    """
    pred, target = _check_pair(pred, target, 3)
    mse = (pred - target).square().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(data_range**2 / mse)


def colourfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Süsstrunk (2003) colourfulness of each image, on RGB scaled to 0–255.

    ``rg = R − G``, ``yb = ½(R + G) − B``,
    ``M = √(σ_rg² + σ_yb²) + 0.3 · √(μ_rg² + μ_yb²)`` with population standard
    deviations over the pixels of each image. A gray image scores 0.

    Args:
        rgb: RGB images (N, 3, H, W) in [0, 1].

    Returns:
        Tensor of shape (N,).

    Examples:
        >>> red = torch.zeros(1, 3, 4, 4)
        >>> red[:, 0] = 1.0
        >>> [round(v, 4) for v in colourfulness(red).tolist()]  # 0.3 * sqrt(255² + 127.5²)
        [85.5296]
    """
    check_image_batch(rgb, 3, "rgb")
    rgb = rgb.to(_work_dtype(rgb)) * 255.0
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    rg = (r - g).flatten(1)
    yb = (0.5 * (r + g) - b).flatten(1)
    var_rg, mean_rg = torch.var_mean(rg, dim=1, correction=0)
    var_yb, mean_yb = torch.var_mean(yb, dim=1, correction=0)
    return torch.sqrt(var_rg + var_yb) + 0.3 * torch.sqrt(mean_rg.square() + mean_yb.square())


#: The per-image metrics of :func:`image_metrics`, in the order reports show them.
IMAGE_METRICS = (
    "l1_distance",
    "chroma_mae",
    "ssim",
    "psnr",
    "colourfulness",
    "colourfulness_truth",
    "colourfulness_difference",
)


def image_metrics(
    pred_rgb: torch.Tensor,
    true_rgb: torch.Tensor,
    pred_chroma: torch.Tensor,
    true_chroma: torch.Tensor,
    space: ColourSpace | str,
) -> dict[str, torch.Tensor]:
    """Every per-image metric of a colourised batch against its ground truth (method.md §6),
    keyed as :data:`IMAGE_METRICS`, each a tensor of shape (N,): the L1 distance and chroma
    error on the normalised chroma of ``space``, SSIM, PSNR and colourfulness on RGB."""
    values = {
        "l1_distance": l1_distance(pred_chroma, true_chroma),
        "chroma_mae": chroma_mae(pred_chroma, true_chroma, space),
        "ssim": ssim(pred_rgb, true_rgb),
        "psnr": psnr(pred_rgb, true_rgb),
        "colourfulness": colourfulness(pred_rgb),
        "colourfulness_truth": colourfulness(true_rgb),
    }
    values["colourfulness_difference"] = values["colourfulness"] - values["colourfulness_truth"]
    return values


def colourfulness_difference(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``colourfulness(pred) − colourfulness(target)`` per image (> 0: more saturated).

    Args:
        pred: RGB images (N, 3, H, W) in [0, 1], e.g. colourised.
        target: RGB images (N, 3, H, W) in [0, 1], e.g. the ground truth.

    Returns:
        Tensor of shape (N,).
    """
    pred, target = _check_pair(pred, target, 3)
    return colourfulness(pred) - colourfulness(target)


# --------------------------------------------------------------------------------------
# GAN plain loss
# --------------------------------------------------------------------------------------


def gan_plain_loss(
    discriminator: Callable[[torch.Tensor], torch.Tensor],
    luma: torch.Tensor,
    fake_chroma: torch.Tensor,
) -> torch.Tensor:
    """The generator's adversarial term, ``BCE(D(g, G(g)), 1)``, without gradients.

    ``discriminator`` receives ``torch.cat([luma, fake_chroma], 1)`` and must return
    logits (e.g. a PatchGAN's N×1×30×30 map); the result is the mean binary
    cross-entropy of those logits against 1 over the whole batch (a 0-dim tensor),
    computed under ``torch.no_grad()``. The discriminator's train/eval mode is left
    as the caller set it (in train mode its BatchNorm layers use, and update, batch
    statistics; call ``discriminator.eval()`` first for a pure evaluation).

    Args:
        discriminator: module or callable mapping (N, 3, H, W) to logits.
        luma: normalised luminance, shape (N, 1, H, W).
        fake_chroma: generated normalised chroma, shape (N, 2, H, W).

    Returns:
        0-dim tensor.

    Examples:
        >>> always_unsure = lambda x: torch.zeros(x.shape[0], 1, 2, 2)
        >>> loss = gan_plain_loss(always_unsure, torch.zeros(2, 1, 4, 4), torch.zeros(2, 2, 4, 4))
        >>> round(loss.item(), 6)  # log 2
        0.693147
    """
    check_image_batch(luma, 1, "luma")
    check_image_batch(fake_chroma, 2, "fake_chroma")
    if luma.shape[0] != fake_chroma.shape[0] or luma.shape[2:] != fake_chroma.shape[2:]:
        raise ValueError(
            "luma (N, 1, H, W) and fake_chroma (N, 2, H, W) must agree on N, H and W; "
            f"got {tuple(luma.shape)} and {tuple(fake_chroma.shape)}"
        )
    with torch.no_grad():
        dtype = torch.promote_types(luma.dtype, fake_chroma.dtype)
        logits = discriminator(torch.cat([luma.to(dtype), fake_chroma.to(dtype)], dim=1))
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
