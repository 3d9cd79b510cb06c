"""One Pix2Pix optimisation step (method.md section 3), optionally as a replayed CUDA graph.

This is the unit a GPU benchmark times: it holds the two Adam optimisers and does no host
synchronisation (no ``.item()``, no ``.cpu()``); the losses come back as 0-dim device tensors.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from colourmodels.training.performance import PerformanceOptions

__all__ = ["Pix2PixStep", "STEP_LOSSES", "EVAL_LOSSES"]

#: Order of the packed loss vector returned by :meth:`Pix2PixStep.step_tensor`.
STEP_LOSSES = ("d_loss", "g_gan", "g_l1", "g_total")
#: Order of the packed loss vector returned by :meth:`Pix2PixStep.evaluate_tensor`.
EVAL_LOSSES = ("gan", "l1", "total")


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 if it is of a narrower type (bf16 under autocast); float64 stays."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """BCEWithLogits against a constant target, averaged over every patch, in float32 (in
    float64 for float64 networks)."""
    logits = _at_least_float32(logits)
    fill = torch.ones_like if target == 1.0 else torch.zeros_like
    return F.binary_cross_entropy_with_logits(logits, fill(logits))


class Pix2PixStep:
    """Owns the generator's and discriminator's Adam optimisers and performs training steps.

    One :meth:`step` on a batch (g = luminance, x = true chroma), as junyanz's
    ``Pix2PixModel.optimize_parameters``:

    1. ``fake = G(g)``;
    2. D step: ``d_loss = ½·[BCE(D(g, x), 1) + BCE(D(g, fake.detach()), 0)]`` (D sees the fake
       first, then the real pair, as junyanz), backward, ``optD.step()``;
    3. G step (D's parameters frozen, D forward *after* D's update):
       ``g_gan = BCE(D(g, fake), 1)``, ``g_l1 = λ·mean|fake − x|``,
       ``g_total = g_gan + g_l1``, backward, ``optG.step()``.

    ``BCE`` is ``binary_cross_entropy_with_logits`` computed in float32 (also under bf16
    autocast). :meth:`step` returns ``{"d_loss", "g_gan", "g_l1", "g_total"}`` as 0-dim, detached
    tensors on the device; they are fresh tensors (safe to keep across steps). The networks must
    be in training mode (as constructed); :meth:`evaluate` switches to eval mode and back.

    **CUDA graphs** (``perf.cuda_graph`` on a CUDA device): the batch shape of the first call
    becomes the graph's shape. The first ``warmup_steps`` calls of that shape run eagerly on a
    side stream (they are real training steps); the next one captures the whole step (both
    forwards and backwards, both ``zero_grad(set_to_none=False)`` and both Adam steps, Adam
    built with ``capturable=True``) into one ``torch.cuda.CUDAGraph`` and replays it; later
    calls of that shape copy the batch into static input buffers and replay. Batches of another
    shape (e.g. the last, partial batch of an epoch) run eagerly: nothing is dropped. Since the
    graph bakes in the learning rate and the tensors' addresses, change neither afterwards;
    :meth:`load_state_dict` (which replaces the optimiser state tensors) discards the graph and
    it is re-captured after a new warm-up.

    **Distributed** (``distributed=True``, inside a started ``torch.distributed`` process
    group, see :mod:`colourmodels.training.distributed`): both networks' BatchNorm layers
    become synchronised BatchNorm (statistics of the global batch, in place: the modules and
    their state-dict keys stay the same); the generator and the discriminator are wrapped in
    ``DistributedDataParallel``, which averages their gradients over the ranks. D's wrapper
    runs only in the D step, as one call on both pairs (fake, then real: one DDP forward per
    backward); the G step's adversarial term runs the plain (unwrapped) discriminator with
    its parameters frozen, so D's DDP wrapper never sees a forward whose parameters get no
    gradient (no ``find_unused_parameters`` needed) and only G's gradients are reduced in
    that step. ``perf.cuda_graph`` and ``perf.compile`` are switched off in this mode (a
    warning says so): DDP's reducer does host-side bookkeeping every iteration (bucket
    readiness, the all-reduce launches) and SyncBatchNorm synchronises with the host, which
    a replayed graph would skip; capturing DDP needs ``static_graph`` and its own warm-up,
    and DDP + ``torch.compile`` splits the graphs at the gradient buckets; neither has been
    validated on GPUs here. The other performance options apply unchanged.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        *,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        lambda_l1: float = 100.0,
        perf: PerformanceOptions | None = None,
        device: str | torch.device = "cpu",
        warmup_steps: int = 3,
        distributed: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.perf = perf if perf is not None else PerformanceOptions()
        is_cuda = self.device.type == "cuda"
        self.distributed = bool(distributed)
        if self.distributed:
            import torch.distributed as dist

            from colourmodels.training.distributed import convert_sync_batchnorm

            if not (dist.is_available() and dist.is_initialized()):
                raise RuntimeError("distributed=True needs a started torch.distributed group")
            off = [n for n in ("cuda_graph", "compile") if getattr(self.perf, n) and is_cuda]
            if off and dist.get_rank() == 0:
                warnings.warn(
                    f"{' and '.join(off)} switched off under DistributedDataParallel "
                    "(see Pix2PixStep)",
                    stacklevel=2,
                )
            generator = convert_sync_batchnorm(generator, self.device)
            discriminator = convert_sync_batchnorm(discriminator, self.device)
        self.lambda_l1 = float(lambda_l1)
        self.amp = self.perf.amp_bf16 and is_cuda
        self.graphs = self.perf.cuda_graph and is_cuda and not self.distributed
        self.memory_format = (
            torch.channels_last if self.perf.channels_last else torch.contiguous_format
        )
        if self.perf.cudnn_benchmark and is_cuda:
            torch.backends.cudnn.benchmark = True

        if self.perf.channels_last:
            generator = generator.to(self.device, memory_format=torch.channels_last)
            discriminator = discriminator.to(self.device, memory_format=torch.channels_last)
        else:
            generator = generator.to(self.device)
            discriminator = discriminator.to(self.device)
        self.generator = generator
        self.discriminator = discriminator
        # Batches are cast to the networks' dtype: float32, or float64 (a test's exact check).
        self.dtype = next(generator.parameters()).dtype
        # The training step calls these; the plain modules stay for saving and evaluation.
        self._d_params = [p for p in discriminator.parameters()]
        if self.distributed:
            from colourmodels.training.distributed import wrap_ddp

            self._train_g: nn.Module = wrap_ddp(generator, self.device)
            self._d_pair: nn.Module = wrap_ddp(_DiscriminatorPair(discriminator), self.device)
            self._adv_d: nn.Module = discriminator
        else:
            compiled = self.perf.compile and is_cuda
            self._train_g = torch.compile(generator) if compiled else generator
            train_d = torch.compile(discriminator) if compiled else discriminator
            self._d_pair = _DiscriminatorPair(train_d)
            self._adv_d = train_d

        adam: dict[str, Any] = {"lr": float(lr), "betas": (float(betas[0]), float(betas[1]))}
        if is_cuda and self.perf.fused_adam:
            adam["fused"] = True
        if self.graphs:
            adam["capturable"] = True
        self.opt_g = torch.optim.Adam(generator.parameters(), **adam)
        self.opt_d = torch.optim.Adam(discriminator.parameters(), **adam)

        # CUDA-graph state.
        self.warmup_steps = int(warmup_steps)
        self._warmup_left = self.warmup_steps
        self._graph: torch.cuda.CUDAGraph | None = None
        self._graph_shape: tuple[tuple[int, ...], tuple[int, ...]] | None = None
        self._static_luma: torch.Tensor | None = None
        self._static_chroma: torch.Tensor | None = None
        self._static_out: torch.Tensor | None = None
        self._side_stream: torch.cuda.Stream | None = None
        #: Why the CUDA graph could not be captured (None: it was, or graphs are off).
        self.graph_failure: str | None = None

    # ------------------------------------------------------------------ public API

    def step(self, luma: torch.Tensor, chroma: torch.Tensor) -> dict[str, torch.Tensor]:
        """One training step; returns 0-dim device tensors ``d_loss, g_gan, g_l1, g_total``."""
        return dict(zip(STEP_LOSSES, self.step_tensor(luma, chroma).unbind()))

    def step_tensor(self, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`step`, the losses packed in a (4,) tensor in ``STEP_LOSSES`` order."""
        if not self.graphs:
            return self._train_step(self._prep(luma), self._prep(chroma))
        shape = (tuple(luma.shape), tuple(chroma.shape))
        if self._graph is not None:
            if shape == self._graph_shape:
                self._static_luma.copy_(luma, non_blocking=True)
                self._static_chroma.copy_(chroma, non_blocking=True)
                self._graph.replay()
                return self._static_out.clone()
            return self._train_step(self._prep(luma), self._prep(chroma))
        if self._graph_shape is None:
            self._graph_shape = shape
        if shape != self._graph_shape:
            return self._train_step(self._prep(luma), self._prep(chroma))
        if self._warmup_left > 0:
            self._warmup_left -= 1
            if self._warmup_left == 0:  # the last warm-up reads the buffers the graph will read
                return self._warmup(*self._fill_static(luma, chroma))
            return self._warmup(self._prep(luma), self._prep(chroma))
        try:
            return self._capture_and_replay(luma, chroma)
        except RuntimeError as exc:  # torch.AcceleratorError, cuDNN's errors in the capture
            return self._without_graphs(exc, luma, chroma)

    @torch.no_grad()
    def evaluate(self, luma: torch.Tensor, chroma: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generator losses on a batch in eval mode: ``gan`` (GAN plain loss), ``l1`` (λ
        included) and ``total``, as 0-dim device tensors. No parameter or statistic changes."""
        return dict(zip(EVAL_LOSSES, self.evaluate_tensor(luma, chroma).unbind()))

    @torch.no_grad()
    def evaluate_tensor(self, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`evaluate`, packed in a (3,) tensor in ``EVAL_LOSSES`` order."""
        luma, chroma = self._prep(luma), self._prep(chroma)
        G, D = self.generator, self.discriminator
        was = (G.training, D.training)
        G.eval()
        D.eval()
        try:
            with self._autocast():
                fake = G(luma)
                pred = D(torch.cat([luma, fake], dim=1))
            gan = _bce(pred, 1.0)
            l1 = self.lambda_l1 * (_at_least_float32(fake) - chroma).abs().mean()
            return torch.stack([gan, l1, gan + l1])
        finally:
            G.train(was[0])
            D.train(was[1])

    def state_dict(self) -> dict[str, Any]:
        """The two optimisers' states (the networks' weights are saved by their owner)."""
        return {"opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load optimiser states saved by :meth:`state_dict`, on any device / option set.

        The current optimisers' implementation flags (fused, foreach, capturable) are kept, the
        state tensors are moved to the parameters' device and memory format, and any captured
        CUDA graph is discarded (re-captured after a new warm-up)."""
        _load_optimizer(self.opt_g, state["opt_g"])
        _load_optimizer(self.opt_d, state["opt_d"])
        self.reset_graph()

    def reset_graph(self) -> None:
        """Forget the captured CUDA graph (if any); the next steps warm up and capture anew."""
        self._graph = None
        self._graph_shape = None
        self._static_luma = self._static_chroma = self._static_out = None
        self._warmup_left = self.warmup_steps

    @property
    def graph_captured(self) -> bool:
        return self._graph is not None

    # ------------------------------------------------------------------ internals

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(
            device=self.device,
            dtype=self.dtype,
            non_blocking=True,
            memory_format=self.memory_format,
        )

    def _autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=not self.graphs)

    @contextlib.contextmanager
    def _d_frozen(self) -> Iterator[None]:
        for p in self._d_params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in self._d_params:
                p.requires_grad_(True)

    def _train_step(self, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        G = self._train_g
        # With graphs the .grad tensors must stay the same objects: zero them, never free them.
        set_to_none = not self.graphs

        with self._autocast():
            fake = G(luma)

        # Discriminator: fake pair first, then real pair (junyanz's order; it matters only for
        # BatchNorm's running statistics).
        self.opt_d.zero_grad(set_to_none=set_to_none)
        with self._autocast():
            pred_fake, pred_real = self._d_pair(luma, fake.detach(), chroma)
        d_loss = 0.5 * (_bce(pred_real, 1.0) + _bce(pred_fake, 0.0))
        d_loss.backward()
        self.opt_d.step()

        # Generator: D frozen (no D weight gradients), D forward after D's update. Under DDP
        # this is the plain discriminator: nothing of D is reduced in this step.
        with self._d_frozen():
            self.opt_g.zero_grad(set_to_none=set_to_none)
            with self._autocast():
                pred = self._adv_d(torch.cat([luma, fake], dim=1))
            g_gan = _bce(pred, 1.0)
            g_l1 = self.lambda_l1 * (_at_least_float32(fake) - chroma).abs().mean()
            g_total = g_gan + g_l1
            g_total.backward()
            self.opt_g.step()

        with torch.no_grad():
            return torch.stack([d_loss, g_gan, g_l1, g_total])

    def _warmup(self, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        """A training step of prepared batches on the side stream (as PyTorch's graph docs warm
        up), so that cuDNN's algorithm search and the allocator's first requests happen here
        and not inside the capture."""
        if self._side_stream is None:
            self._side_stream = torch.cuda.Stream(device=self.device)
        stream = self._side_stream
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            out = self._train_step(luma, chroma)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        return out

    def _fill_static(self, luma: torch.Tensor, chroma: torch.Tensor):
        """The graph's input buffers (made once for the graph's shape), holding this batch."""
        if self._static_luma is None:
            self._static_luma = torch.empty(
                luma.shape, dtype=self.dtype, device=self.device, memory_format=self.memory_format
            )
            self._static_chroma = torch.empty(
                chroma.shape, dtype=self.dtype, device=self.device, memory_format=self.memory_format
            )
        self._static_luma.copy_(luma)
        self._static_chroma.copy_(chroma)
        return self._static_luma, self._static_chroma

    def _without_graphs(self, exc: Exception, luma: torch.Tensor, chroma: torch.Tensor):
        """A capture that failed: this step and every later one run eagerly, said once.

        Seen on an H200 (2026-12-04): a 32 px run of the command line with every speed-up
        failed in its first capture with cuDNN's CUDNN_STATUS_EXECUTION_FAILED_CUDART, which
        ended the training (the capture was then in the "global" mode, in which the loader's
        pin-memory thread can spoil it; the stack's capture was already "thread_local", as
        this one is now). Nothing of the failed capture ran (a capture records kernels
        without running them), so the step is taken again eagerly on the same batch."""
        self.graph_failure = warn_capture_failed(exc, stacklevel=4)
        self.graphs = False
        self._graph = None
        self._static_luma = self._static_chroma = self._static_out = None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return self._train_step(self._prep(luma), self._prep(chroma))

    def _capture_and_replay(self, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        self._fill_static(luma, chroma)
        graph = torch.cuda.CUDAGraph()
        # thread_local: a loader's pin-memory thread may allocate pinned memory meanwhile,
        # which the default ("global") mode counts as an error of this capture.
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            # Capture records the kernels without running them; the replay below runs them.
            self._static_out = self._train_step(self._static_luma, self._static_chroma)
        self._graph = graph
        graph.replay()
        return self._static_out.clone()


def warn_capture_failed(exc: Exception, *, stacklevel: int) -> str:
    """Say once, as a ``RuntimeWarning``, that a CUDA-graph capture failed with ``exc`` and
    the training goes on without graphs; returns the reason in one line."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    failure = f"{type(exc).__name__}: {reason}"
    warnings.warn(
        f"CUDA graph capture failed ({failure}); this training goes on without "
        "CUDA graphs (slower, the same steps)",
        RuntimeWarning,
        stacklevel=stacklevel,
    )
    return failure


class _DiscriminatorPair(nn.Module):
    """D on the fake pair, then on the real pair, in one call (one DDP forward per D step)."""

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.d = discriminator

    def forward(
        self, luma: torch.Tensor, fake: torch.Tensor, real: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.d(torch.cat([luma, fake], dim=1)), self.d(torch.cat([luma, real], dim=1))


def _load_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    flags = ("fused", "foreach", "capturable")
    current = [{f: g.get(f) for f in flags if f in g} for g in optimizer.param_groups]
    state = {
        # Deep copy: Optimizer.load_state_dict keeps tensors that need no cast, so loading an
        # in-memory state dict would otherwise alias the other optimiser's state tensors.
        "state": copy.deepcopy(state["state"]),
        "param_groups": [
            {**saved, **cur} for saved, cur in zip(state["param_groups"], current, strict=True)
        ],
    }
    optimizer.load_state_dict(state)
    # Match each state tensor's memory format (and device) to its parameter's, which fused and
    # foreach kernels require; checkpoints store them contiguous on the CPU.
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p)
            if not st:
                continue
            for key, value in st.items():
                if (
                    isinstance(value, torch.Tensor)
                    and value.shape == p.shape
                    and (value.stride() != p.stride() or value.device != p.device)
                ):
                    st[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)
