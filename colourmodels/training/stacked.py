"""Several Pix2Pix models trained together in one process (an ensemble's generators).

:func:`train_pix2pix_stack` trains M models, each exactly as :func:`train_pix2pix` would
train it alone: its own configuration (seed, early stopping, data, output folder), its own
networks, Adam states, RNG streams, files and ``checkpoint.pt``. It runs
:func:`train_pix2pix` itself once per model, each in a "lane" (a thread), and passes the
turn from lane to lane so that exactly one runs at a time. Each lane runs until its next
training step; the steps of all lanes are then executed together by a
:class:`StackExecutor`, and every lane gets its losses back at its next turn. Validation,
early stopping and files happen inside each lane, at that model's own epoch ends: the
models need not have the same number of batches per epoch, and a model whose training
ends (early stopping, its last epoch) leaves the stack, so it stops costing time.

**Why this method** (against ``torch.func.stack_module_state`` + ``vmap`` or hand-written
grouped convolutions): the models here differ in what vmap needs to be equal. Their
datasets differ in size, so their epochs end at different steps and their last batches
are smaller; each stops on its own epoch; each has its own global-RNG stream (data
augmentation in the loader, Dropout). A stacked-parameter step needs equal shapes in every
model at every step, an Adam with a per-model step count, dropout masks drawn outside
vmap, and re-stacking (a copy of all parameters and Adam states) whenever the set of
stepping models changes. Per-model modules need none of that: the networks, the
optimisers, the checkpoints and the step are the single trainer's own code, and on the
GPU the gain comes from running the models' kernels concurrently (below). vmap's batching
rule turns each convolution into a grouped one (``groups=M``); ``bench/bench_stacked.py``
times that variant beside this one.

**What stepping together can gain.** It fills the GPU time a batch-16 step leaves idle; it
cannot make the work smaller. The last H200 figures (256 px, width 64, fast mode) were
1,976 images/s at batch 16 and 3,401 at batch 64: six models at batch 16 are 96 images,
about 28 ms at the batch-64 rate, against 8.1 ms for one model's step, i.e. about 3.5x
one model's time and 1.7x faster than six one after another. Issue 17's target (six in
less than 1.5x one model's time) would need 7,900 images/s, 2.3x the batch-64 rate: no
method of stepping together reaches it unless a larger batch itself runs that much faster.

**Equality with training alone.** Each lane's global RNG state (torch CPU, NumPy,
Python's ``random``, and torch CUDA where stated below) is swapped in whenever that lane
runs and whenever its step runs, so every model draws exactly the numbers it would draw
alone: its initial weights, its loader's augmentations (``num_workers=0``; workers are
seeded from the loader's own generator anyway) and its dropout masks. On the CPU a model
trained in the stack is therefore bit-for-bit the model trained alone from the same
configuration (history, weights, optimiser states, files), and so is a stack resumed
after an interruption. Each model's folder is exactly what :func:`train_pix2pix` writes,
so a checkpoint is interchangeable both ways: a model stopped in a stack can be finished
alone and vice versa.

**On CUDA** the executor runs each model's step on its own CUDA stream, so the kernels of
different models overlap on the device. With ``perf.cuda_graph`` (fast mode) the steps of
all stepping models are captured into **one** CUDA graph (forked onto the models' streams
inside the capture) and replayed; a tick whose set of models or batch shapes differs from
the captured one (a model's last, smaller batch; a model that has left) runs eagerly, and
the graph is re-captured for a new set. In graph mode the models' dropout draws come
from the one CUDA generator of the process (not from per-model CUDA streams of random
numbers): each model's dropout is still random, deterministic for a given stack, but
not the draws it would make alone; without dropout (32 px) or without graphs the
CUDA RNG is swapped per model like the others. A capture that fails (cuDNN's errors have
been seen inside a single step's capture) is said once in a warning and the stack goes on
without graphs. The CUDA paths ran on an H200 on 2026-12-04 (``bench/gpu_check.sh`` runs
the CUDA tests and the benchmark).

Not under ``torchrun``: the stack trains in one process on one device.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from colourmodels.training.common import ProgressCallback, resolve_device
from colourmodels.training.distributed import env_world_size
from colourmodels.training.pix2pix import Pix2PixConfig, Pix2PixResult, train_pix2pix
from colourmodels.training.step import Pix2PixStep, warn_capture_failed

__all__ = ["StackJob", "StackExecutor", "StepRequest", "train_pix2pix_stack"]


@dataclass(frozen=True)
class StackJob:
    """One model of a stack: what :func:`train_pix2pix` would be called with."""

    config: Pix2PixConfig
    train_set: Dataset
    val_set: Dataset
    out_dir: str | Path
    on_progress: ProgressCallback | None = None
    #: A label for error messages (e.g. the category); defaults to the job's position.
    name: str = ""
    #: Called in the model's own thread as its training ends, before the next model's turn:
    #: ``(result, None)`` when it finished, ``(None, error)`` when it failed (the error is
    #: then raised by the stack too), ``(None, None)`` when it was stopped because another
    #: model failed. What it raises is taken as the model's failure. For per-model
    #: bookkeeping as each model ends (a worker marks its sub-model done at once) and for
    #: what the thread holds (a database connection).
    on_end: Callable[[Pix2PixResult | None, BaseException | None], None] | None = None


class _Aborted(Exception):
    """Raised inside a lane whose stack is stopping because another lane failed."""


# ---------------------------------------------------------------------------- RNG states


@dataclass
class _Rng:
    """A snapshot of the process's global RNGs (one lane's streams)."""

    torch_cpu: torch.Tensor
    numpy: Any
    python: Any
    cuda: torch.Tensor | None

    @classmethod
    def capture(cls, cuda_device: torch.device | None) -> _Rng:
        return cls(
            torch.get_rng_state(),
            np.random.get_state(),
            random.getstate(),
            torch.cuda.get_rng_state(cuda_device) if cuda_device is not None else None,
        )

    def install(self, cuda_device: torch.device | None) -> None:
        torch.set_rng_state(self.torch_cpu)
        np.random.set_state(self.numpy)
        random.setstate(self.python)
        if cuda_device is not None and self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, cuda_device)


# ---------------------------------------------------------------------------- the executor


@dataclass
class StepRequest:
    """One model's training step in a tick: its :class:`Pix2PixStep`, its batch, and (in
    the trainer) its lane's RNG state, installed for the step and updated after it. ``out``
    receives the packed losses (``Pix2PixStep.step_tensor``'s)."""

    step: Pix2PixStep
    luma: torch.Tensor
    chroma: torch.Tensor
    rng: _Rng | None = None
    out: torch.Tensor | None = None


@dataclass
class _Graph:
    key: tuple
    #: The captured steps, kept alive with the graph (the key holds their ids).
    steps: list[Pix2PixStep]
    graph: Any
    lumas: list[torch.Tensor]
    chromas: list[torch.Tensor]
    outs: list[torch.Tensor]


class StackExecutor:
    """Runs one training step of each of several models ("a tick"), together.

    CPU: one after another (the CPU gains nothing from concurrency; the steps are exact).
    CUDA: each model's step on its own stream; when every step was built with
    ``perf.cuda_graph``, one CUDA graph holding all the tick's steps (see the module doc).
    ``ticks`` counts, per tick, how many models stepped (a stopped model leaves it).
    """

    def __init__(self, device: str | torch.device) -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.ticks: list[int] = []
        self.graph_replays = 0
        self.graph_captures = 0
        self._streams: dict[int, Any] = {}
        self._first_shape: dict[int, tuple] = {}
        self._eager_steps: dict[int, int] = {}
        self._graph: _Graph | None = None
        #: Why the tick's CUDA graph could not be captured (None: it was, or graphs are off).
        self.graph_failure: str | None = None

    def uses_graphs(self, steps: Sequence[Pix2PixStep]) -> bool:
        return self.cuda and all(s.graphs for s in steps)

    def run(self, requests: Sequence[StepRequest]) -> None:
        """Step every request's model on its batch; fills each request's ``out``."""
        self.ticks.append(len(requests))
        if not requests:
            return
        if not self.cuda:
            for r in requests:
                with self._rng(r):
                    r.out = r.step.step_tensor(r.luma, r.chroma)
            return
        if self.graph_failure is not None:
            for r in requests:  # a model that was not in the failed tick
                r.step.graphs = False
        if self.uses_graphs([r.step for r in requests]):
            self._run_graphed(requests)
        else:
            self._run_streams(requests, graphs=False)

    def reset(self) -> None:
        """Forget the captured graph (the next full tick re-captures it)."""
        self._graph = None

    # ------------------------------------------------------------------ internals

    @contextlib.contextmanager
    def _rng(self, request: StepRequest) -> Iterator[None]:
        if request.rng is None:
            yield
            return
        cuda = self.device if request.rng.cuda is not None else None
        request.rng.install(cuda)
        try:
            yield
        finally:
            request.rng = _Rng.capture(cuda)

    def _stream(self, step: Pix2PixStep) -> Any:
        key = id(step)
        if key not in self._streams:
            self._streams[key] = torch.cuda.Stream(device=self.device)
        return self._streams[key]

    def _run_streams(self, requests: Sequence[StepRequest], *, graphs: bool) -> None:
        """Each step eagerly on its model's stream (with graphs: a warm-up or off-shape
        step, run as ``Pix2PixStep`` runs those: ``_train_step`` on a side stream)."""
        current = torch.cuda.current_stream(self.device)
        streams = []
        for r in requests:
            stream = self._stream(r.step)
            stream.wait_stream(current)
            for t in (r.luma, r.chroma):
                if t.device.type == "cuda":
                    t.record_stream(stream)
            with self._rng(r), torch.cuda.stream(stream):
                if graphs:
                    r.out = r.step._train_step(r.step._prep(r.luma), r.step._prep(r.chroma))
                    self._count_eager(r.step)
                else:
                    r.out = r.step.step_tensor(r.luma, r.chroma)
            streams.append(stream)
        for stream, r in zip(streams, requests, strict=True):
            current.wait_stream(stream)
            r.out.record_stream(current)

    def _run_graphed(self, requests: Sequence[StepRequest]) -> None:
        action = self.plan(requests)
        if action == "eager":
            self._run_streams(requests, graphs=True)
            return
        if action == "capture":
            try:
                self._capture(self._key(requests), requests)
            except RuntimeError as exc:  # torch.AcceleratorError, cuDNN's errors in the capture
                self._without_graphs(exc, requests)
                return
        self._replay(requests)

    def _without_graphs(self, exc: Exception, requests: Sequence[StepRequest]) -> None:
        """A capture that failed (as the single step's can, see
        ``Pix2PixStep._without_graphs``): said once; the tick is taken again eagerly, and so
        is every later one. Nothing of the failed capture ran, and no lane's RNG was drawn."""
        self.graph_failure = warn_capture_failed(exc, stacklevel=5)
        self._graph = None
        for r in requests:
            r.step.graphs = False
            r.step.graph_failure = self.graph_failure
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._run_streams(requests, graphs=False)

    def plan(self, requests: Sequence[StepRequest]) -> str:
        """With graphs: "replay" the captured graph if the tick has its models and shapes;
        else "capture" a new one if every model has had its warm-up steps and brings a batch
        of its first shape (a full batch); else "eager" (warm-up, a smaller last batch)."""
        key = self._key(requests)
        for k in key:
            self._first_shape.setdefault(k[0], k[1:])
        if self._graph is not None and self._graph.key == key:
            return "replay"
        full = all(self._first_shape[k[0]] == k[1:] for k in key)
        warm = all(self._eager_steps.get(id(r.step), 0) >= r.step.warmup_steps for r in requests)
        return "capture" if full and warm else "eager"

    @staticmethod
    def _key(requests: Sequence[StepRequest]) -> tuple:
        return tuple((id(r.step), tuple(r.luma.shape), tuple(r.chroma.shape)) for r in requests)

    def _capture(self, key: tuple, requests: Sequence[StepRequest]) -> None:
        self._graph = None  # frees the previous graph's pool once its tensors are gone
        lumas = [_static_like(r.luma, r.step) for r in requests]
        chromas = [_static_like(r.chroma, r.step) for r in requests]
        for r, lu, ch in zip(requests, lumas, chromas, strict=True):
            lu.copy_(r.luma)
            ch.copy_(r.chroma)
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        outs: list[torch.Tensor] = []
        # thread_local: the loaders' pin-memory threads may allocate pinned memory meanwhile.
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            capture = torch.cuda.current_stream(self.device)
            streams = []
            for r, lu, ch in zip(requests, lumas, chromas, strict=True):
                stream = self._stream(r.step)
                stream.wait_stream(capture)
                with torch.cuda.stream(stream):
                    outs.append(r.step._train_step(lu, ch))
                streams.append(stream)
            for stream in streams:
                capture.wait_stream(stream)
        self._graph = _Graph(key, [r.step for r in requests], graph, lumas, chromas, outs)
        self.graph_captures += 1

    def _count_eager(self, step: Pix2PixStep) -> None:
        self._eager_steps[id(step)] = self._eager_steps.get(id(step), 0) + 1

    def _replay(self, requests: Sequence[StepRequest]) -> None:
        g = self._graph
        assert g is not None
        for r, lu, ch in zip(requests, g.lumas, g.chromas, strict=True):
            lu.copy_(r.luma, non_blocking=True)
            ch.copy_(r.chroma, non_blocking=True)
        # One CUDA generator for the whole graph (see the module doc); no CPU RNG is drawn.
        g.graph.replay()
        for r, out in zip(requests, g.outs, strict=True):
            r.out = out.clone()
        self.graph_replays += 1


def _static_like(batch: torch.Tensor, step: Pix2PixStep) -> torch.Tensor:
    return torch.empty(
        batch.shape, dtype=step.dtype, device=step.device, memory_format=step.memory_format
    )


# ---------------------------------------------------------------------------- the lanes


@dataclass
class _Lane:
    index: int
    job: StackJob
    coordinator: _Coordinator
    go: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    request: StepRequest | None = None
    result: Pix2PixResult | None = None
    error: BaseException | None = None
    done: bool = False
    thread: threading.Thread | None = None

    @property
    def label(self) -> str:
        return self.job.name or f"model {self.index}"

    def start(self) -> None:
        self.thread = threading.Thread(
            target=self._main, name=f"stack-lane-{self.index}", daemon=True
        )
        self.thread.start()

    def _main(self) -> None:
        self.go.acquire()
        try:
            if self.coordinator.aborting:
                raise _Aborted
            job = self.job
            self.result = train_pix2pix(
                job.config,
                job.train_set,
                job.val_set,
                job.out_dir,
                on_progress=job.on_progress,
                resume=self.coordinator.resume,
                stepper=self.stepper,
            )
        except _Aborted:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the coordinator, re-raised
            self.error = exc
        try:
            if self.job.on_end is not None:
                self.job.on_end(self.result, self.error)
        except BaseException as exc:  # noqa: BLE001 - as above
            self.result, self.error = None, self.error or exc
        finally:
            self.done = True
            self.request = None
            self.coordinator.back.release()

    def stepper(self, step: Pix2PixStep, luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
        """Post this step, hand the turn back, and wait for the losses (next turn)."""
        cuda = self.coordinator.rng_cuda_device(step)
        request = StepRequest(step, luma, chroma, _Rng.capture(cuda))
        self.request = request
        self.coordinator.back.release()
        self.go.acquire()
        if self.coordinator.aborting:
            raise _Aborted
        assert request.rng is not None and request.out is not None
        request.rng.install(cuda)
        return request.out


class _Coordinator:
    def __init__(self, jobs: Sequence[StackJob], executor: StackExecutor, resume: bool) -> None:
        self.executor = executor
        self.resume = resume
        self.back = threading.Semaphore(0)
        self.aborting = False
        self.lanes = [_Lane(i, job, self) for i, job in enumerate(jobs)]

    def rng_cuda_device(self, step: Pix2PixStep) -> torch.device | None:
        """The CUDA device whose RNG is swapped per lane (None: the CPU's only)."""
        if self.executor.cuda and not self.executor.uses_graphs([step]):
            return self.executor.device
        return None

    def _turn(self, lane: _Lane) -> None:
        lane.go.release()
        self.back.acquire()

    def run(self) -> list[Pix2PixResult]:
        for lane in self.lanes:
            lane.start()
        live = list(self.lanes)
        failed: _Lane | None = None
        try:
            while live:
                requests: list[StepRequest] = []
                for lane in list(live):
                    self._turn(lane)
                    if lane.done:
                        live.remove(lane)
                        if lane.error is not None:
                            failed = lane
                            break
                    else:
                        assert lane.request is not None
                        requests.append(lane.request)
                if failed is not None:
                    break
                if requests:
                    self.executor.run(requests)
        finally:
            self._abort(live)
        if failed is not None:
            error = failed.error
            assert error is not None
            if isinstance(error, Exception):
                error.add_note(f"(in the stacked training of {failed.label})")
            raise error
        return [lane.result for lane in self.lanes]  # type: ignore[misc]

    def _abort(self, live: list[_Lane]) -> None:
        """Let every lane still waiting unwind (``_Aborted`` at its rendezvous), one at a
        time, then wait for their threads."""
        remaining = [lane for lane in live if not lane.done]
        if remaining:
            self.aborting = True
            for lane in remaining:
                while not lane.done:
                    self._turn(lane)
        for lane in self.lanes:
            if lane.thread is not None:
                lane.thread.join()


# ---------------------------------------------------------------------------- entry point


def train_pix2pix_stack(
    jobs: Sequence[StackJob],
    *,
    resume: bool = True,
    executor: StackExecutor | None = None,
) -> list[Pix2PixResult]:
    """Train every job's Pix2Pix model together in this process; returns their results in
    the jobs' order, each what ``train_pix2pix(job.config, job.train_set, job.val_set,
    job.out_dir, on_progress=job.on_progress, resume=resume)`` returns (see the module doc).

    All jobs train on one device (their configs' ``device`` must resolve to the same one);
    the output folders must differ. ``resume=True`` resumes each model from its own
    ``checkpoint.pt`` where there is one (a model that had finished stays finished).

    An exception in one model's training (its data, or its ``on_progress``, e.g.
    :class:`~colourmodels.training.common.TrainingCancelled`) stops the whole stack: the
    other models stop at their next step, each folder keeps its last complete epoch, and
    the exception is raised (with a note naming the job) once every lane has ended.
    ``executor``: a :class:`StackExecutor` to use (e.g. to read its ``ticks`` afterwards).
    """
    jobs = list(jobs)
    if not jobs:
        raise ValueError("a stack needs at least one job")
    for job in jobs:
        if not isinstance(job, StackJob):
            raise TypeError(f"jobs must be StackJob instances, got {type(job).__name__}")
    if env_world_size() > 1:
        raise RuntimeError(
            "stacked training runs in one process on one device, not under torchrun; "
            "under torchrun train the models one after another with train_pix2pix"
        )
    devices = {str(resolve_device(job.config.device)) for job in jobs}
    if len(devices) > 1:
        raise ValueError(f"the jobs of a stack must train on one device, got {sorted(devices)}")
    folders = [Path(job.out_dir).resolve() for job in jobs]
    if len(set(folders)) != len(folders):
        dupes = sorted({str(f) for f in folders if folders.count(f) > 1})
        raise ValueError(f"the jobs of a stack need distinct output folders; shared: {dupes}")
    device = torch.device(devices.pop())
    if executor is None:
        executor = StackExecutor(device)
    elif executor.device != device:
        raise ValueError(f"the executor is for {executor.device}, the jobs train on {device}")
    return _Coordinator(jobs, executor, resume).run()
