"""How long a run's training may take on a machine without a GPU, for the launch form.

The estimate counts the generators' Pix2Pix steps: every training image once per epoch
(a baseline's one generator sees them all; an ensemble's generators each see their own
category's, so together they see them all once too), plus the validation images once per
epoch at a third of a step (a forward pass). It leaves out the ensemble's classifier and
the evaluation, and early stopping may end sooner: it is a rough upper figure, meant to
warn before a run that would take hours.

Whether the workers have a GPU is not known to the web process (it never imports torch):
the device the newest started run recorded (``ModelRun.environment["device"]``, written by
the worker) is the best evidence there is.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.formatting import format_duration
from worker.models import DatasetImage, ModelRun

#: Seconds of one Pix2Pix training step per image at 64 × 64 px and generator width 64,
#: float32 on a CPU: 16.5 images/s, measured on 2026-12-02 on this project's 2-core build
#: machine (load average 2.2) with
#:   python bench/bench_train.py --device cpu --size 64 --width 64 --batches 16 \
#:       --modes reference --warmup 2 --steps 5 --no-inference
#: The same command under heavier load (other jobs on the 2 cores) gave 2.1 images/s, so a
#: busy machine is slower still. The bench counts 5.0 GFLOP per image at 64 px width 64,
#: 20.9 at 128 px width 64 and 5.3 at 128 px width 32: the work grows with the pixels and
#: with the width squared, and so does the estimate.
CPU_SECONDS_PER_IMAGE = 1 / 16.5
REFERENCE_SIZE = 64
REFERENCE_WIDTH = 64
#: A validation image costs about a third of a training step (forward only).
VALIDATION_SHARE = 1 / 3
#: Above this many seconds on a CPU, the launch form warns.
WARN_AFTER_SECONDS = 3600


def seconds_per_image(*, image_size: int, width: int) -> float:
    """One training step's seconds per image on a CPU: the measured constant scaled by the
    pixels (image size²) and by the width squared (a convolution's work is its input
    channels times its output channels)."""
    pixels = (image_size / REFERENCE_SIZE) ** 2
    return CPU_SECONDS_PER_IMAGE * pixels * (width / REFERENCE_WIDTH) ** 2


def cpu_training_seconds(
    *, image_size: int, width: int, epochs: int, train_images: int, val_images: int
) -> float:
    """The generators' training time on a CPU, in seconds, for at most ``epochs`` epochs."""
    per_epoch = train_images + VALIDATION_SHARE * val_images
    return seconds_per_image(image_size=image_size, width=width) * epochs * per_epoch


@dataclass(frozen=True)
class Estimate:
    seconds: float
    gpu: bool | None  # the newest started run's worker had a GPU (None: no run yet)
    device: str  # what that worker recorded, e.g. "cpu" or "cuda (NVIDIA H200)"

    @property
    def text(self) -> str:
        return format_duration(self.seconds)

    @property
    def warn(self) -> bool:
        """Hours of work, and no sign of a GPU."""
        return self.seconds > WARN_AFTER_SECONDS and self.gpu is not True


def worker_device() -> str:
    """What the newest started run's worker recorded as its device ("" when none has)."""
    environment = (
        ModelRun.objects.exclude(environment={})
        .exclude(started_at=None)
        .order_by("-started_at")
        .values_list("environment", flat=True)
        .first()
    )
    return str((environment or {}).get("device", ""))


def _split_counts(dataset) -> dict[str, int]:
    counts = dict.fromkeys(DatasetImage.Split.values, 0)
    for per_split in (dataset.counts or {}).values():  # {category: {split: images}}
        for split, n in per_split.items():
            counts[split] = counts.get(split, 0) + n
    return counts


def reference_epoch_seconds(dataset) -> float:
    """One epoch on ``dataset`` at the reference size and width (for the page's script,
    which scales it as :func:`seconds_per_image` does)."""
    counts = _split_counts(dataset)
    return cpu_training_seconds(
        image_size=REFERENCE_SIZE,
        width=REFERENCE_WIDTH,
        epochs=1,
        train_images=counts[DatasetImage.Split.TRAIN],
        val_images=counts[DatasetImage.Split.VAL],
    )


def run_estimate(*, dataset, image_size: int, width: int, epochs: int) -> Estimate:
    """The CPU estimate for training on ``dataset`` with these settings."""
    counts = _split_counts(dataset)
    seconds = cpu_training_seconds(
        image_size=image_size,
        width=width,
        epochs=epochs,
        train_images=counts[DatasetImage.Split.TRAIN],
        val_images=counts[DatasetImage.Split.VAL],
    )
    device = worker_device()
    gpu = device.startswith("cuda") if device else None
    return Estimate(seconds=seconds, gpu=gpu, device=device)
