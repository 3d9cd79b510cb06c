"""Several Pix2Pix models stepped together: time per step of M models (default 6) stepped
together against the same M one after another and against one model alone.

    python bench/bench_stacked.py                              # CUDA, 256 px, width 64
    python bench/bench_stacked.py --device cpu --size 64 --width 8 --steps 3 --threads 1

Each "step" is one Pix2Pix training step (G forward, D step, G step, both Adam steps) of
every model on its own batch of ``--batch`` images. Variants:

* ``one``: a single model (``Pix2PixStep.step_tensor``).
* ``sequential``: M models, one step after another (what M separate trainings cost).
* ``stacked``: M models through :class:`colourmodels.training.stacked.StackExecutor`, the
  executor ``train_pix2pix_stack`` uses (CUDA: one stream per model; in the fast modes
  all M steps in one CUDA graph; CPU: one after another).
* ``vmap``: the alternative method, measured: parameters of the M models stacked
  (``torch.func.stack_module_state``) and the whole step vectorised over models with
  ``vmap`` + ``functional_call`` (convolutions become grouped ones), one Adam over the
  stacked parameters; in the fast modes bf16 autocast, fused Adam and the step in a CUDA
  graph (no channels_last, no torch.compile). Dropout uses ``randomness="different"``
  (not the per-model RNG streams).

Before timing, ``vmap`` is checked against ``sequential`` from the same weights (32 px,
where the U-Net has no dropout): the losses of 3 steps must agree to float tolerance.

The issue's target (on the GPU): ``stacked`` < 1.5 × ``one`` at batch 16. The CPU gains
nothing from running models together (it is not launch-bound, and the executor runs them
one after another there): CPU figures show only that the code runs and what the vmap
variant costs; the GPU figure needs a CUDA machine (bench/gpu_check.sh runs this).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colourmodels.networks import PatchDiscriminator, UNetGenerator, init_weights  # noqa: E402
from colourmodels.training.performance import PerformanceOptions  # noqa: E402
from colourmodels.training.stacked import StackExecutor, StepRequest  # noqa: E402
from colourmodels.training.step import Pix2PixStep  # noqa: E402

MODES = {
    "reference": PerformanceOptions.reference(),
    "fast": PerformanceOptions.fast(),
    "fast-no-compile": replace(PerformanceOptions.fast(), compile=False),
}


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_pairs(m: int, size: int, width: int, seed: int):
    pairs = []
    for i in range(m):
        torch.manual_seed(seed + i)
        g = init_weights(UNetGenerator(1, 2, image_size=size, width=width))
        d = init_weights(PatchDiscriminator(3, width=width))
        pairs.append((g, d))
    return pairs


def batches(m: int, batch: int, size: int, device: torch.device, seed: int = 123):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(m):
        luma = torch.rand(batch, 1, size, size, generator=gen) * 2 - 1
        chroma = (torch.rand(batch, 2, size, size, generator=gen) * 2 - 1) * 0.5
        out.append((luma.to(device), chroma.to(device)))
    return out


class VmapStep:
    """M Pix2Pix steps vectorised over models with torch.func (see the module doc)."""

    def __init__(self, pairs, *, perf: PerformanceOptions, device: torch.device, lr=2e-4):
        from torch.func import stack_module_state

        self.device = device
        cuda = device.type == "cuda"
        self.amp = perf.amp_bf16 and cuda
        self.graphs = perf.cuda_graph and cuda
        gens = [g.to(device) for g, _ in pairs]
        discs = [d.to(device) for _, d in pairs]
        self.gp, self.gb = stack_module_state(gens)
        self.dp, self.db = stack_module_state(discs)
        self.g_base = copy.deepcopy(gens[0]).to("meta")
        self.d_base = copy.deepcopy(discs[0]).to("meta")
        adam = {"lr": lr, "betas": (0.5, 0.999)}
        if cuda and perf.fused_adam:
            adam["fused"] = True
        if self.graphs:
            adam["capturable"] = True
        self.opt_g = torch.optim.Adam(list(self.gp.values()), **adam)
        self.opt_d = torch.optim.Adam(list(self.dp.values()), **adam)
        self._graph = None
        self._warmup = 3
        self._static: tuple[torch.Tensor, ...] | None = None

    def _autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=not self.graphs)

    def _g(self, p, b, x):
        from torch.func import functional_call

        return functional_call(self.g_base, (p, b), (x,))

    def _d(self, p, b, x):
        from torch.func import functional_call

        return functional_call(self.d_base, (p, b), (x,))

    def _train_step(self, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        """luma (M, N, 1, H, W), chroma (M, N, 2, H, W); returns (M, 4) losses."""
        from torch.func import vmap

        set_to_none = not self.graphs
        with self._autocast():
            fake = vmap(self._g, randomness="different")(self.gp, self.gb, luma)
        self.opt_d.zero_grad(set_to_none=set_to_none)
        with self._autocast():
            d = vmap(self._d)
            pred_fake = d(self.dp, self.db, torch.cat([luma, fake.detach()], dim=2))
            pred_real = d(self.dp, self.db, torch.cat([luma, chroma], dim=2))
        d_loss = 0.5 * (_bce_per_model(pred_real, 1.0) + _bce_per_model(pred_fake, 0.0))
        d_loss.sum().backward()
        self.opt_d.step()
        for p in self.dp.values():
            p.requires_grad_(False)
        try:
            self.opt_g.zero_grad(set_to_none=set_to_none)
            with self._autocast():
                pred = vmap(self._d)(self.dp, self.db, torch.cat([luma, fake], dim=2))
            g_gan = _bce_per_model(pred, 1.0)
            g_l1 = 100.0 * (fake.float() - chroma).abs().flatten(1).mean(1)
            g_total = g_gan + g_l1
            g_total.sum().backward()
            self.opt_g.step()
        finally:
            for p in self.dp.values():
                p.requires_grad_(True)
        with torch.no_grad():
            return torch.stack([d_loss, g_gan, g_l1, g_total], dim=1)

    def step(self, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        if not self.graphs:
            return self._train_step(luma, chroma)
        if self._graph is None and self._warmup > 0:
            self._warmup -= 1
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                out = self._train_step(luma, chroma)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return out
        if self._graph is None:
            self._static = (luma.clone(), chroma.clone())
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._static_out = self._train_step(*self._static)
            self._graph = graph
        self._static[0].copy_(luma)
        self._static[1].copy_(chroma)
        self._graph.replay()
        return self._static_out.clone()


def _bce_per_model(logits: torch.Tensor, target: float) -> torch.Tensor:
    logits = logits.float()
    loss = F.binary_cross_entropy_with_logits(
        logits, torch.full_like(logits, target), reduction="none"
    )
    return loss.flatten(1).mean(1)


def make_variant(name: str, args, device: torch.device, m: int) -> Callable[[], object]:
    """A closure doing one timed step of variant ``name``."""
    perf = MODES[args.mode]
    torch.backends.cudnn.benchmark = False
    pairs = build_pairs(m, args.size, args.width, args.seed)
    data = batches(m, args.batch, args.size, device)
    if name == "vmap":
        vm = VmapStep(pairs, perf=perf, device=device)
        luma = torch.stack([b[0] for b in data])
        chroma = torch.stack([b[1] for b in data])
        return lambda: vm.step(luma, chroma)
    steps = [Pix2PixStep(g, d, perf=perf, device=device) for g, d in pairs]
    if name in ("one", "sequential"):

        def run():
            for s, (luma, chroma) in zip(steps, data, strict=True):
                s.step_tensor(luma, chroma)

        return run
    executor = StackExecutor(device)

    def run_stacked():
        executor.run([StepRequest(s, lu, ch) for s, (lu, ch) in zip(steps, data, strict=True)])

    return run_stacked


def time_steps(run: Callable[[], object], device, steps: int) -> float:
    synchronise(device)
    start = time.perf_counter()
    for _ in range(steps):
        run()
    synchronise(device)
    return (time.perf_counter() - start) / steps


def handoff_us(m: int, device: torch.device, ticks: int = 300) -> float:
    """What train_pix2pix_stack adds per model per tick besides the steps: the turn passed
    to a lane thread and back (two semaphores) and its RNG state captured and installed
    twice (as the lane and the executor do), in microseconds."""
    import threading

    from colourmodels.training.stacked import _Rng

    cuda = device if device.type == "cuda" else None
    back = threading.Semaphore(0)
    gos = [threading.Semaphore(0) for _ in range(m)]

    def lane(go: threading.Semaphore) -> None:
        for _ in range(ticks):
            go.acquire()
            _Rng.capture(cuda).install(cuda)
            back.release()

    threads = [threading.Thread(target=lane, args=(g,), daemon=True) for g in gos]
    for t in threads:
        t.start()
    start = time.perf_counter()
    for _ in range(ticks):
        for go in gos:
            go.release()
            back.acquire()
            _Rng.capture(cuda).install(cuda)
    seconds = time.perf_counter() - start
    for t in threads:
        t.join()
    return seconds / (ticks * m) * 1e6


def check_vmap(device: torch.device, m: int = 3) -> float:
    """Largest relative difference between vmap's and one-after-another's losses over 3
    steps from the same weights (32 px: no dropout), float32."""
    size, batch = 32, 4
    perf = PerformanceOptions.reference()
    data = batches(m, batch, size, device, seed=7)
    steps = [Pix2PixStep(g, d, perf=perf, device=device) for g, d in build_pairs(m, size, 8, 1)]
    vm = VmapStep(build_pairs(m, size, 8, 1), perf=perf, device=device)
    luma = torch.stack([b[0] for b in data])
    chroma = torch.stack([b[1] for b in data])
    worst = 0.0
    for _ in range(3):
        a = torch.stack([s.step_tensor(lu, ch) for s, (lu, ch) in zip(steps, data, strict=True)])
        b = vm.step(luma, chroma)
        worst = max(worst, ((a - b).abs() / a.abs().clamp_min(1e-6)).max().item())
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--mode", choices=list(MODES), default=None)
    parser.add_argument("--variants", nargs="+", default=["one", "sequential", "stacked", "vmap"])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="CPU intra-op threads (default torch's)")
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mode is None:
        args.mode = "fast" if device.type == "cuda" else "reference"
    m = args.models
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"torch {torch.__version__}, {name}, {args.size} px, width {args.width}, "
        f"batch {args.batch}, {m} models, mode {args.mode}, {torch.get_num_threads()} CPU threads",
        flush=True,
    )
    diff = check_vmap(device)
    print(f"vmap vs one after another, 3 steps at 32 px: max relative loss difference {diff:.1e}")
    lane_us = handoff_us(m, device)
    print(
        f"stacked trainer's lane hand-off and RNG swaps: {lane_us:.0f} µs per model per tick "
        "(host time; on CUDA it overlaps the GPU's work: no host sync per tick)"
    )
    runs: dict[str, Callable[[], object]] = {}
    for variant in args.variants:
        try:
            runs[variant] = make_variant(variant, args, device, 1 if variant == "one" else m)
            for _ in range(args.warmup):
                runs[variant]()
        except Exception as exc:  # report and go on: one failing variant must not hide the rest
            print(f"{variant:>10}: FAILED {type(exc).__name__}: {exc}", flush=True)
            runs.pop(variant, None)
    # Rounds in turn, the median per variant: a shared machine's load hits all alike.
    times: dict[str, list[float]] = {v: [] for v in runs}
    for _ in range(args.rounds):
        for variant, run in runs.items():
            times[variant].append(time_steps(run, device, args.steps))
    ms = {v: statistics.median(t) * 1e3 for v, t in times.items()}
    for variant, value in ms.items():
        models = 1 if variant == "one" else m
        images = models * args.batch / value * 1e3
        spread = f"{min(times[variant]) * 1e3:.2f}–{max(times[variant]) * 1e3:.2f}"
        print(
            f"{variant:>10}: {models} model(s) {value:9.2f} ms/step ({spread})  "
            f"{images:9.1f} images/s",
            flush=True,
        )
    if "one" in ms:
        for variant in ("sequential", "stacked", "vmap"):
            if variant in ms:
                print(f"{variant:>10} ÷ one = {ms[variant] / ms['one']:.2f}×", end="")
                if "sequential" in ms and variant != "sequential":
                    print(
                        f"   sequential ÷ {variant} = {ms['sequential'] / ms[variant]:.2f}×", end=""
                    )
                print()
        best = min((ms[v], v) for v in ("stacked", "vmap") if v in ms) if len(ms) > 1 else None
        if best is not None:
            ok = best[0] < 1.5 * ms["one"]
            print(
                f"target (issue 17, GPU): {m} together < 1.5 × one: "
                f"{'met' if ok else 'NOT met'} ({best[1]}: {best[0] / ms['one']:.2f}×)"
            )
    if device.type == "cpu":
        print(
            "(CPU: not launch-bound, the executor runs the models one after another; the "
            "GPU's gain from stepping together does not show here)"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "device": str(device),
        "name": name,
        "torch": torch.__version__,
        "size": args.size,
        "width": args.width,
        "batch": args.batch,
        "models": m,
        "mode": args.mode,
        "ms_per_step": ms,
        "ms_per_step_rounds": {v: [x * 1e3 for x in t] for v, t in times.items()},
        "vmap_check_max_rel_diff": diff,
        "handoff_us_per_model_tick": lane_us,
    }
    (args.out / "bench_stacked.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'bench_stacked.json'}")


if __name__ == "__main__":
    main()
