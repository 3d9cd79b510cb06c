"""Data-path speed on this machine's CPUs: importing, the MIRFLICKR grayscale check, loading.

Prints

(a) import-reading throughput: synthetic 256 px JPEGs read as an importer reads them
    (``load_rgb`` + ``is_grayscale`` + re-encoding to JPEG bytes), on 1 thread and on one
    thread per core;
(b) the MIRFLICKR grayscale check on 500 x 375 JPEGs (real photographs from
    scikit-image's sample data and synthetic scenes): the exact check (full decode +
    ``is_grayscale``) against the reduced-scale shortcut of
    ``colourmodels.data.mirflickr.grayscale_verdict``, and what 25,000 images cost;
(c) loader throughput: images/s that ``ColourisationDataset`` + ``DataLoader`` (with
    ``loader_kwargs``) deliver at 256 px, batch 16, with 0, 1 and 2 workers, for LAB
    and YUV (colour conversion in the loader, the "cpu" data path) and for the rgb8
    output (uint8 RGB, converted on the device: the "device" data path), set against a
    GPU train step of 2,000-3,400 images/s, with the verdict and a per-core
    extrapolation to a 16-core GPU machine (8 workers by ``loader_kwargs``, at most 14).

    python bench/bench_data.py                  # about a minute on 2 cores
    python bench/bench_data.py --images 600 --workers 0 1 2 4
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colourmodels.data.dataset import ColourisationDataset, loader_kwargs  # noqa: E402
from colourmodels.data.device import batch_to_luma_chroma  # noqa: E402
from colourmodels.data.images import is_grayscale, load_rgb  # noqa: E402
from colourmodels.data.mirflickr import grayscale_verdict  # noqa: E402
from colourmodels.data.synthetic import make_scene, write_synthetic  # noqa: E402

GPU_STEP = (2000, 3400)  # images/s of a fast Pix2Pix train step at 256 px on an H200
GPU_BOX_CPUS = 16  # the GPU machine: loader_kwargs gives it 8 workers; 14 is the most
CATEGORIES6 = ("animals", "city", "nature", "people", "scenery", "others")


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def import_one(path: Path) -> int:
    image = load_rgb(path)
    is_grayscale(image)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return len(buffer.getvalue())


def bench_import(paths: list[Path], threads: int) -> float:
    start = time.perf_counter()
    if threads <= 1:
        for path in paths:
            import_one(path)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(import_one, paths))
    return len(paths) / (time.perf_counter() - start)


def photos_500x375(folder: Path, count: int) -> list[Path]:
    """Real sample photographs and synthetic scenes, 500 x 375 JPEGs (MIRFLICKR's size)."""
    import skimage.data as samples

    sources = []
    for name in ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry"):
        try:
            sources.append(Image.fromarray(getattr(samples, name)()).convert("RGB"))
        except Exception:  # a sample missing from this scikit-image build
            pass
    rng = np.random.default_rng(0)
    for i in range(4):
        sources.append(make_scene(CATEGORIES6[i], 500, rng))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image = sources[i % len(sources)]
        scale = max(500 / image.width, 375 / image.height) * (1 + 0.02 * (i // len(sources)))
        resized = image.resize((round(image.width * scale) + 1, round(image.height * scale) + 1))
        left = (resized.width - 500) // 2
        top = (resized.height - 375) // 2
        path = folder / f"im{i + 1}.jpg"
        resized.crop((left, top, left + 500, top + 375)).save(path, quality=90)
        paths.append(path)
    return paths


def bench_gray(paths: list[Path], fast: bool, threads: int) -> float:
    def check(path: Path) -> str | None:
        return grayscale_verdict(path, fast=fast)

    start = time.perf_counter()
    if threads <= 1:
        for path in paths:
            check(path)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(check, paths))
    return len(paths) / (time.perf_counter() - start)


def bench_loader(
    records,
    space: str,
    workers: int,
    batch: int,
    preload: bool = False,
    output: str = "luma_chroma",
) -> float:
    """Images/s out of the DataLoader (``output="rgb8"``: uint8 batches, not converted)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dataset = ColourisationDataset(records, space, 256, train=True, preload=preload, output=output)
    kwargs = loader_kwargs(device, num_workers=workers)
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True, **kwargs)
    for _ in loader:  # warm-up epoch: worker start-up, page cache, first-call costs
        pass
    start = time.perf_counter()
    seen = 0
    for items in loader:
        seen += items[0].shape[0]
    rate = seen / (time.perf_counter() - start)
    del loader
    return rate


def bench_cpu_conversion(space: str, batch: int, repeats: int = 5) -> float:
    """ms per 256 px image of ``batch_to_luma_chroma`` on this CPU (1 thread): the work
    the device path takes off the loader workers."""
    rgb8 = torch.randint(0, 256, (batch, 3, 256, 256), dtype=torch.uint8)
    batch_to_luma_chroma(rgb8, space, "cpu")
    start = time.perf_counter()
    for _ in range(repeats):
        batch_to_luma_chroma(rgb8, space, "cpu")
    return 1000 * (time.perf_counter() - start) / (repeats * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=300, help="256 px JPEGs to generate")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--gray-images", type=int, default=90)
    args = parser.parse_args()

    n_cpus = cpus()
    # one intra-op thread, as in a DataLoader worker: the figures are per core, and the
    # main process of a GPU run leaves its threads to the GPU step
    torch.set_num_threads(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {n_cpus} usable CPU cores, load average {load:.1f} at start "
        f"(other work on the cores lowers the figures)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        per_category = max(1, args.images // 6)
        start = time.perf_counter()
        records = write_synthetic(root / "set", per_category, 256, seed=0, image_format="jpeg")
        print(
            f"generated {len(records)} synthetic 256 px JPEGs in "
            f"{time.perf_counter() - start:.1f} s"
        )
        paths = [r.path for r in records]
        for path in paths:  # page cache warm
            path.read_bytes()

        print("\n(a) import reading: load_rgb + is_grayscale + JPEG re-encode, 256 px")
        one = bench_import(paths, 1)
        print(f"    1 thread:   {one:7.0f} images/s  ({1000 / one:.2f} ms/image)")
        many = bench_import(paths, n_cpus)
        print(f"    {n_cpus} threads:  {many:7.0f} images/s")

        print("\n(b) MIRFLICKR grayscale check, 500x375 JPEGs (real + synthetic)")
        gray_paths = photos_500x375(root / "mirflickr", args.gray_images)
        for path in gray_paths:
            path.read_bytes()
        exact = bench_gray(gray_paths, fast=False, threads=1)
        fast = bench_gray(gray_paths, fast=True, threads=1)
        fast_all = bench_gray(gray_paths, fast=True, threads=n_cpus)
        agree = sum(
            (grayscale_verdict(p, fast=True) is None) == (grayscale_verdict(p, fast=False) is None)
            for p in gray_paths
        )
        print(f"    exact (full decode), 1 thread:   {exact:6.0f} images/s")
        print(
            f"    reduced-scale first, 1 thread:   {fast:6.0f} images/s  "
            f"({fast / exact:.1f}x; verdicts agree on {agree}/{len(gray_paths)})"
        )
        print(
            f"    reduced-scale first, {n_cpus} threads:  {fast_all:6.0f} images/s  -> "
            f"25,000 images in about {25000 / fast_all:.0f} s "
            f"(exact, 1 thread: {25000 / exact:.0f} s)"
        )

        print(
            f"\n(c) loader: ColourisationDataset + DataLoader, 256 px, batch {args.batch}, "
            "train=True (random flip)"
        )
        results: dict[tuple[str, int], float] = {}
        paths = (("lab", "lab"), ("yuv", "yuv"), ("rgb8", "lab"))  # (path, dataset space)
        for name, space in paths:
            output = "rgb8" if name == "rgb8" else "luma_chroma"
            for workers in args.workers:
                rate = bench_loader(records, space, workers, args.batch, output=output)
                results[(name, workers)] = rate
                label = "RGB8" if name == "rgb8" else f"{name.upper()} "
                print(f"    {label} workers={workers}:  {rate:7.0f} images/s")
        pre = bench_loader(records, "lab", 0, args.batch, preload=True)
        print(f"    LAB  workers=0, preload=True (decoded crops in memory): {pre:7.0f} images/s")
        pre8 = bench_loader(records, "lab", 0, args.batch, preload=True, output="rgb8")
        print(f"    RGB8 workers=0, preload=True:                            {pre8:7.0f} images/s")
        for space in ("lab", "yuv"):
            ms = bench_cpu_conversion(space, args.batch)
            print(
                f"    ({space.upper()} conversion that RGB8 moves to the device: "
                f"{ms:.2f} ms per image on 1 CPU core)"
            )

        low, high = GPU_STEP
        box_workers = int(loader_kwargs("cuda", cpus=GPU_BOX_CPUS)["num_workers"])
        most = GPU_BOX_CPUS - 2
        print(f"\nagainst a GPU train step of {low:,}-{high:,} images/s:")
        for name, _space in paths:
            best = max(results[(name, w)] for w in args.workers)
            per_core = results.get((name, 0), best)  # one process, one core at a time
            if (name, 1) in results:
                per_core = max(per_core, results[(name, 1)])
            starve = best < low
            label = "RGB8 (device path)" if name == "rgb8" else f"{name.upper()} (cpu path)"
            print(
                f"  {label}: best here {best:,.0f} images/s "
                f"({'STARVES' if starve else 'keeps up with'} the step on {n_cpus} cores); "
                f"about {per_core:,.0f} images/s per core, so ~{low / per_core:.0f}-"
                f"{high / per_core:.0f} worker cores needed; on a {GPU_BOX_CPUS}-core GPU "
                f"box {box_workers} workers (loader_kwargs) give ~{box_workers * per_core:,.0f} "
                f"and {most} workers ~{most * per_core:,.0f} images/s"
            )
        end_load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"(load average at the end: {end_load:.1f})")


if __name__ == "__main__":
    main()
