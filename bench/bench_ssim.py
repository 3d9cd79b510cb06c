"""Throughput of colourmodels.metrics.ssim against skimage's structural_similarity.

Not a test. Run from the repository root:

    .venv/bin/python bench/bench_ssim.py [--batch 64] [--size 256] [--repeats 5]

It times, on the same batch of random RGB images (N, 3, size, size) in [0, 1]:

* skimage: ``structural_similarity(x, y, channel_axis=-1, data_range=1.0)`` image by
  image on contiguous HWC arrays, float32 and float64, uniform and Gaussian window
  (on the first ``--skimage-images`` images: it is slow);
* ours: ``ssim(pred, target)`` on the whole batch, CPU float32 and float64, uniform and
  Gaussian window, with 1 and with all torch CPU threads; and on CUDA when present.

Timings are interleaved and repeated; the best (least disturbed) run is reported
next to the median, because this machine may be shared. The ratio is ours / skimage
in images per second, against skimage's run of the same window type and dtype.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import structural_similarity

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colourmodels.metrics import ssim  # noqa: E402

GAUSSIAN_KW = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


def make_batch(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand(n, 3, size, size, generator=gen, dtype=torch.float64)
    noise = 0.1 * torch.randn(n, 3, size, size, generator=gen, dtype=torch.float64)
    return (target + noise).clamp(0, 1), target


def skimage_batch(pred: np.ndarray, target: np.ndarray, gaussian: bool) -> np.ndarray:
    kw = GAUSSIAN_KW if gaussian else {}
    return np.array(
        [
            structural_similarity(p, t, channel_axis=-1, data_range=1.0, **kw)
            for p, t in zip(pred, target)
        ]
    )


def timed(fn: Callable[[], object], sync: Callable[[], None] = lambda: None) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        default=f"1,{torch.get_num_threads()}",
        help="comma-separated torch CPU thread counts to time ours with (skimage is 1 thread)",
    )
    parser.add_argument(
        "--skimage-images",
        type=int,
        default=32,
        help="images per skimage timing run (it is slow; throughput is per image)",
    )
    args = parser.parse_args()

    pred64, target64 = make_batch(args.batch, args.size)
    pred32, target32 = pred64.float(), target64.float()
    k = min(args.skimage_images, args.batch)
    pred_np = pred64[:k].permute(0, 2, 3, 1).contiguous().numpy()
    target_np = target64[:k].permute(0, 2, 3, 1).contiguous().numpy()

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
        f"batch {args.batch} x 3 x {args.size} x {args.size}; {args.repeats} repeats"
    )

    # Agreement check first (also warms everything up).
    for gaussian in (False, True):
        ref = torch.from_numpy(skimage_batch(pred_np, target_np, gaussian))
        for p, t in ((pred32, target32), (pred64, target64)):
            ours = ssim(p[:k], t[:k], gaussian=gaussian).double()
            err = (ours - ref).abs().max().item()
            label = "gaussian" if gaussian else "uniform"
            print(f"  max |ours - skimage| ({label}, {p.dtype}): {err:.2e}")

    cases: dict[str, tuple[Callable[[], object], int, Callable[[], None]]] = {}
    for dtype in ("float32", "float64"):
        p_np, t_np = pred_np.astype(dtype), target_np.astype(dtype)
        for window in ("uniform", "gaussian"):
            fn = functools.partial(skimage_batch, p_np, t_np, window == "gaussian")
            cases[f"skimage {window} {dtype}"] = (fn, k, lambda: None)
    thread_counts = sorted({int(t) for t in args.threads.split(",")})
    default_threads = torch.get_num_threads()

    def with_threads(n: int, fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            torch.set_num_threads(n)
            try:
                return fn()
            finally:
                torch.set_num_threads(default_threads)

        return run

    for n in thread_counts:
        for dtype, (p, t) in (("float32", (pred32, target32)), ("float64", (pred64, target64))):
            for window in ("uniform", "gaussian"):
                fn = functools.partial(ssim, p, t, gaussian=window == "gaussian")
                cases[f"ours cpu {window} {dtype}, {n} thread(s)"] = (
                    with_threads(n, fn),
                    args.batch,
                    lambda: None,
                )
    if torch.cuda.is_available():
        p_cuda, t_cuda = pred32.cuda(), target32.cuda()
        p_cuda64, t_cuda64 = pred64.cuda(), target64.cuda()
        sync = torch.cuda.synchronize
        for gaussian in (False, True):
            ssim(p_cuda, t_cuda, gaussian=gaussian)  # warm-up (kernels, allocator)
        label = torch.cuda.get_device_name()
        cases[f"ours cuda uniform float32 ({label})"] = (
            lambda: ssim(p_cuda, t_cuda),
            args.batch,
            sync,
        )
        cases[f"ours cuda uniform float64 ({label})"] = (
            lambda: ssim(p_cuda64, t_cuda64),
            args.batch,
            sync,
        )
        cases[f"ours cuda gaussian float32 ({label})"] = (
            lambda: ssim(p_cuda, t_cuda, gaussian=True),
            args.batch,
            sync,
        )

    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, (fn, _, sync) in cases.items():
            times[name].append(timed(fn, sync))

    rates = {}
    print(f"\n{'case':<58} {'best img/s':>11} {'median img/s':>13}")
    for name, (_, count, _) in cases.items():
        best = count / min(times[name])
        median = count / statistics.median(times[name])
        rates[name] = (best, median)
        print(f"{name:<58} {best:>11.1f} {median:>13.1f}")

    print("\nratio ours / skimage, same window and dtype (best, median):")
    for name, (best, median) in rates.items():
        if name.startswith("skimage"):
            continue
        window = "gaussian" if "gaussian" in name else "uniform"
        dtype = "float64" if "float64" in name else "float32"
        ref_best, ref_median = rates[f"skimage {window} {dtype}"]
        print(f"  {name:<56} {best / ref_best:7.1f}x {median / ref_median:7.1f}x")


if __name__ == "__main__":
    main()
