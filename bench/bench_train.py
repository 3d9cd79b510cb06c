"""Pix2Pix train-step speed: "reference" (how the original pix2pix runs) against "fast".

Prints, per mode and batch size, images/s, TFLOP/s (FLOPs counted with
torch.utils.flop_counter on one eager step) and fast ÷ reference; then generator inference
speed; then (with --curves) the loss curves of both modes on real photos from the same
initial weights and batches, to show that "fast" trains the same model.

    python bench/bench_train.py                       # 256 px, batches 16 and 64, CUDA
    python bench/bench_train.py --device cpu --size 64 --batches 16 --steps 5
    python bench/bench_train.py --curves bench/data/photos.npy --out bench/out

Modes: reference = float32 eager, contiguous, plain Adam, cudnn.benchmark off (PyTorch's
default TF32 convolutions left as they are, as in the original code); fast = bf16 autocast,
channels_last, fused Adam, cudnn.benchmark, both networks through torch.compile, the whole
step captured in one CUDA graph; fast-no-compile = fast without torch.compile. Inputs live
on the device in every mode: this times the step, not a loader.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colourmodels.networks import PatchDiscriminator, UNetGenerator, init_weights  # noqa: E402
from colourmodels.training.performance import PerformanceOptions  # noqa: E402
from colourmodels.training.step import Pix2PixStep  # noqa: E402

MODES = {
    "reference": PerformanceOptions.reference(),
    "fast": PerformanceOptions.fast(),
    "fast-no-compile": replace(PerformanceOptions.fast(), compile=False),
}


@dataclass
class Measurement:
    mode: str
    batch: int
    images_per_s: float
    tflops: float
    ms_per_step: float


def build_networks(size: int, width: int, seed: int) -> tuple[UNetGenerator, PatchDiscriminator]:
    torch.manual_seed(seed)
    generator = init_weights(UNetGenerator(1, 2, image_size=size, width=width))
    discriminator = init_weights(PatchDiscriminator(3, width=width))
    return generator, discriminator


def make_step(mode: str, size: int, width: int, device: torch.device, seed: int = 0):
    torch.backends.cudnn.benchmark = False  # process-wide: reset so "reference" is clean
    generator, discriminator = build_networks(size, width, seed)
    return Pix2PixStep(generator, discriminator, perf=MODES[mode], device=device)


def flops_per_image(size: int, width: int, device: torch.device, batch: int = 4) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    step = make_step("reference", size, width, device)
    luma = torch.randn(batch, 1, size, size, device=device)
    chroma = torch.randn(batch, 2, size, size, device=device).clamp(-1, 1)
    with FlopCounterMode(display=False) as counter:
        step.step(luma, chroma)
    return counter.get_total_flops() / batch


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Pix2PixStep, batch: int, size: int, device, warmup: int, steps: int) -> float:
    luma = torch.rand(batch, 1, size, size, device=device) * 2 - 1
    chroma = torch.rand(batch, 2, size, size, device=device) * 2 - 1
    for _ in range(warmup):
        step.step_tensor(luma, chroma)
    synchronise(device)
    start = time.perf_counter()
    for _ in range(steps):
        step.step_tensor(luma, chroma)
    synchronise(device)
    return (time.perf_counter() - start) / steps


def bench_steps(args, device, flops) -> list[Measurement]:
    results = []
    for mode in args.modes:
        if mode != "reference" and device.type != "cuda":
            continue
        for batch in args.batches:
            try:
                step = make_step(mode, args.size, args.width, device)
                seconds = time_steps(step, batch, args.size, device, args.warmup, args.steps)
            except Exception as exc:  # report and go on: one failing mode must not hide the rest
                print(f"{mode:>13} batch {batch:>3}: FAILED {type(exc).__name__}: {exc}")
                continue
            m = Measurement(
                mode, batch, batch / seconds, flops * batch / seconds / 1e12, seconds * 1e3
            )
            results.append(m)
            print(
                f"{mode:>13} batch {batch:>3}: {m.images_per_s:9.1f} images/s  "
                f"{m.tflops:7.2f} TFLOP/s  {m.ms_per_step:8.2f} ms/step",
                flush=True,
            )
            del step
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return results


KERNEL_KINDS = (  # (kind, substrings of the kernel's name), first match wins
    ("convolution / matmul", ("conv", "gemm", "cutlass", "xmma", "sm90", "wgrad", "dgrad", "nhwc")),
    ("normalisation", ("norm", "bn_")),
    ("optimiser", ("adam", "multi_tensor", "foreach")),
    ("elementwise / reduction", ("elementwise", "vectorized", "reduce", "unrolled", "pointwise")),
)


def _kind(name: str) -> str:
    low = name.lower()
    for kind, keys in KERNEL_KINDS:
        if any(k in low for k in keys):
            return kind
    return "other"


def what_limits(args, device, by: dict) -> dict:
    """Where a step's time goes: the kernels of the fast step run eagerly (no graph, no
    compile, so each kernel is seen) under torch.profiler, set against the measured step.
    GPU-busy time well below the step time means launch / host overhead; otherwise the kinds
    of kernel that fill it say whether convolutions (arithmetic) or memory-bound layers
    (normalisation, elementwise, the optimiser) are the limit."""
    from torch.profiler import ProfilerActivity, profile

    perf = replace(PerformanceOptions.fast(), compile=False, cuda_graph=False)
    activity = ProfilerActivity.CUDA if device.type == "cuda" else ProfilerActivity.CPU
    report = {}
    for batch in args.batches:
        torch.backends.cudnn.benchmark = False
        step = Pix2PixStep(*build_networks(args.size, args.width, 0), perf=perf, device=device)
        luma = torch.rand(batch, 1, args.size, args.size, device=device) * 2 - 1
        chroma = torch.rand(batch, 2, args.size, args.size, device=device) * 2 - 1
        for _ in range(5):
            step.step_tensor(luma, chroma)
        synchronise(device)
        steps = 5
        with profile(activities=[activity]) as prof:
            for _ in range(steps):
                step.step_tensor(luma, chroma)
            synchronise(device)
        kinds: dict[str, float] = {}
        for event in prof.key_averages():
            if device.type == "cuda":
                us = getattr(event, "self_device_time_total", None)
                if us is None:
                    us = getattr(event, "self_cuda_time_total", 0.0)
            else:
                us = event.self_cpu_time_total
            if us:
                kinds[_kind(event.key)] = kinds.get(_kind(event.key), 0.0) + us / 1e3 / steps
        busy = sum(kinds.values())
        measured = by.get(("fast", batch)) or by.get(("fast-no-compile", batch))
        step_ms = measured.ms_per_step if measured else None
        entry = {"busy_ms": busy, "step_ms": step_ms, "kinds_ms": kinds}
        share = busy / step_ms if step_ms else None
        top = max(kinds, key=kinds.get) if kinds else "?"
        unit = "GPU" if device.type == "cuda" else "CPU"
        if share is not None and share < 0.8:
            verdict = f"launch / host overhead (the {unit} is busy {share:.0%} of the step)"
        elif top == "convolution / matmul":
            verdict = f"the convolutions' arithmetic ({unit} busy; convolutions fill most of it)"
        else:
            verdict = f"memory-bound layers ({top} fill most of the busy time)"
        entry["limit"] = verdict
        report[str(batch)] = entry
        parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(kinds.items(), key=lambda x: -x[1]))
        print(
            f"what limits batch {batch}: kernels {busy:.2f} ms per step ({parts})"
            + (f" against {step_ms:.2f} ms measured (fast)" if step_ms else "")
            + f": {verdict}",
            flush=True,
        )
        del step
    return report


def bench_inference(args, device) -> dict[str, float]:
    out = {}
    torch.manual_seed(0)
    generator = init_weights(UNetGenerator(1, 2, image_size=args.size, width=args.width))
    generator = generator.to(device).eval()
    batch = max(args.batches)
    luma = torch.rand(batch, 1, args.size, args.size, device=device) * 2 - 1
    variants = {"float32": (torch.contiguous_format, None)}
    if device.type == "cuda":
        variants["bf16+channels_last"] = (torch.channels_last, torch.bfloat16)
    for name, (fmt, dtype) in variants.items():
        net = generator.to(memory_format=fmt)
        x = luma.contiguous(memory_format=fmt)
        with (
            torch.inference_mode(),
            torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
        ):
            for _ in range(3):
                net(x)
            synchronise(device)
            start = time.perf_counter()
            n = max(3, args.steps)
            for _ in range(n):
                net(x)
            synchronise(device)
        out[name] = batch * n / (time.perf_counter() - start)
        print(f"inference {name:>20} batch {batch}: {out[name]:9.1f} images/s", flush=True)
    return out


def loss_curves(args, device) -> dict[str, list[list[float]]]:
    """Both modes from the same weights on the same batches of real photos."""
    import numpy as np

    from colourmodels.colour import rgb_to_luma_chroma

    photos = torch.from_numpy(np.load(args.curves))  # (N, H, W, 3) uint8
    rgb = photos.permute(0, 3, 1, 2).float() / 255
    rgb = torch.nn.functional.interpolate(
        rgb, size=(args.size, args.size), mode="bicubic", align_corners=False, antialias=True
    ).clamp(0, 1)
    luma, chroma = rgb_to_luma_chroma(rgb, "lab")
    batch = args.curve_batch
    order = torch.Generator().manual_seed(1)
    batches = [torch.randperm(len(rgb), generator=order)[:batch] for _ in range(args.curve_steps)]
    curves = {}
    for mode in ("reference", "fast"):
        torch.manual_seed(123)  # same dropout stream start; the graph draws its own after
        step = make_step(mode, args.size, args.width, device, seed=7)
        losses = []
        for idx in batches:
            out = step.step_tensor(luma[idx].to(device), chroma[idx].to(device))
            losses.append(out)
        curves[mode] = torch.stack(losses).float().cpu().tolist()
        print(f"curves: {mode} done", flush=True)
    return curves


def summarise_curves(curves, window: int) -> dict:
    import numpy as np

    names = ("d_loss", "g_gan", "g_l1", "g_total")
    summary = {}
    for mode, rows in curves.items():
        arr = np.asarray(rows)
        summary[mode] = {
            name: {
                "first_window_mean": float(arr[:window, i].mean()),
                "last_window_mean": float(arr[-window:, i].mean()),
                "last_window_std": float(arr[-window:, i].std()),
            }
            for i, name in enumerate(names)
        }
    return summary


def plot_curves(curves, path: Path, window: int) -> None:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib not installed: no plot (curves.json has the numbers)")
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = ("D loss", "G GAN plain loss", "G L1 loss (λ=100)")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for mode, rows in curves.items():
        arr = np.asarray(rows)
        kernel = np.ones(window) / window
        for i, ax in enumerate(axes):
            ax.plot(np.convolve(arr[:, i], kernel, mode="valid"), label=mode)
            ax.set_title(names[i])
            ax.set_xlabel("step")
    axes[0].legend()
    fig.suptitle(f"reference vs fast, moving mean over {window} steps")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--modes", nargs="+", default=["reference", "fast"], choices=list(MODES))
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--no-inference", action="store_true")
    parser.add_argument("--curves", help=".npy of uint8 photos (N, H, W, 3) for loss curves")
    parser.add_argument("--curve-steps", type=int, default=400)
    parser.add_argument("--curve-batch", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(torch.get_num_threads())

    print(f"torch {torch.__version__}, device {device}", end="")
    if device.type == "cuda":
        print(f" ({torch.cuda.get_device_name(device)})", end="")
    print(f", {args.size} px, width {args.width}", flush=True)
    flops = flops_per_image(args.size, args.width, device)
    print(f"FLOPs per image per train step: {flops / 1e9:.1f} GFLOP", flush=True)

    results = bench_steps(args, device, flops)
    by = {(m.mode, m.batch): m for m in results}
    for batch in args.batches:
        ref = by.get(("reference", batch))
        for mode in MODES:
            m = by.get((mode, batch))
            if ref and m and mode != "reference":
                ratio = m.images_per_s / ref.images_per_s
                print(f"batch {batch:>3}: {mode} ÷ reference = {ratio:.2f}×")
    report = {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "size": args.size,
        "width": args.width,
        "gflop_per_image_step": flops / 1e9,
        "steps": [m.__dict__ for m in results],
    }
    try:
        report["limits"] = what_limits(args, device, by)
    except Exception as exc:  # the profile must not cost the rest of the benchmark
        print(f"what limits: profile FAILED {type(exc).__name__}: {exc}")
    if not args.no_inference:
        report["inference_images_per_s"] = bench_inference(args, device)
    if args.curves:
        curves = loss_curves(args, device)
        window = max(10, args.curve_steps // 10)
        report["curves"] = summarise_curves(curves, window)
        for mode, s in report["curves"].items():
            print(
                f"curves {mode:>9}: "
                + "  ".join(
                    f"{k} {v['first_window_mean']:.3f}→{v['last_window_mean']:.3f}"
                    f"±{v['last_window_std']:.3f}"
                    for k, v in s.items()
                )
            )
        args.out.mkdir(parents=True, exist_ok=True)
        plot_curves(curves, args.out / "loss_curves.png", window)
        (args.out / "curves.json").write_text(json.dumps(curves))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_train.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'bench_train.json'}")


if __name__ == "__main__":
    main()
