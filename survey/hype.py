"""HYPE_time (Zhou, Gordon, Krishna, Narcomey, Fei-Fei & Bernstein, "HYPE: A Benchmark
for Human eYe Perceptual Evaluation of Generative Models", NeurIPS 2019, §3.1): one image
at a time, "Real or AI?", each image shown for an exposure time that an adaptive staircase
sets, then covered by backward masks. The statistic is the exposure threshold: the
shortest exposure at which a participant still tells the model's images from photographs.

This module is pure (no database): the staircase, the threshold of one participant and
the per-condition mean with its bootstrap over participants. survey.services.trials
stores each trial's exposure (``Trial.exposure_ms``) from it; survey.analysis reads it.

**What HYPE describes, and what this platform does**

- *Exposure ladder*: discrete exposure times from 100 ms to 1000 ms in fixed steps. Here
  :data:`LADDER_MS` = 100, 200, …, 1000 ms (ten rungs of 100 ms).
- *3-up/1-down*: three correct answers in a row make the exposure one rung shorter, one
  wrong answer makes it one rung longer (Levitt 1971: it converges on the exposure
  answered right 79.4 % of the time).
- *Backward masks*: each image is followed at once by :data:`MASKS` noise masks of
  :data:`MASK_MS` ms each (on screen refreshes: 2 frames at 60 Hz), then the image area
  stays empty until the answer. (Four masks of about 30 ms is our reading of HYPE; the
  paper's text was not at hand when this was written: check it, both are constants.)
- *Real and fake*: real photographs and the model's images, half and half in random
  order, answered alike ("correct" is the true answer whichever the image is).

**Choices where HYPE leaves a detail open** (also in the README)

1. *One staircase per participant* over all their measured trials, real and fake alike
   (not one per kind); a participant who always says "Real" is right half the time and
   climbs to 1000 ms, as a participant who cannot tell should.
2. *Start*: the middle rung, :data:`START_MS` = 500 ms. Practice trials, attention and
   instructed checks are shown at the staircase's current exposure but do not move it.
3. *Bounds*: a step beyond 100 ms or 1000 ms keeps the exposure where it is, but counts
   as a step in its direction (so the turn after it is a reversal).
4. *Reversal*: a step in the other direction than the step before it; its value is the
   exposure of the trial whose answer made it.
5. *Threshold of a participant*: the mean exposure at the last :data:`LAST_REVERSALS`
   (6) reversals (all of them if fewer); a staircase with fewer than
   :data:`MIN_REVERSALS` (2) reversals reports the exposure it ended on (the next one it
   would show; typically a bound: 100 ms when the participant was always right, 1000 ms
   when they could not tell) and is marked ``converged=False``. HYPE reports the modal
   exposure; the mean of the last reversals is the usual estimate of a staircase's
   threshold and less coarse with ten rungs.
6. *One model per participant* (between subjects): a staircase mixes every image a
   participant sees, so a per-model threshold needs one model per participant.
7. *Per condition*: the mean of its participants' thresholds, with a percentile
   bootstrap interval over participants.
8. *Masks*: random colour blocks (16 × 16 blocks of 16 px, 256 × 256 px) drawn from a
   seed of the participant and trial, stretched over the image's box; they depend on
   nothing about the image, so they cannot tell real from fake.

*Leak*: as in any staircase, the next exposure says whether the answers already given
were right (three right: shorter; one wrong: longer). It says nothing about the image at
hand, whose exposure is fixed before it is shown.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LADDER_MS: tuple[int, ...] = tuple(range(100, 1001, 100))
START_MS = 500
#: Correct answers in a row that shorten the exposure by one rung.
DOWN_AFTER = 3
MASKS = 4
MASK_MS = 30
MASK_SIZE = 256
MASK_BLOCK = 16
LAST_REVERSALS = 6
MIN_REVERSALS = 2

SHORTER, LONGER = -1, +1


@dataclass(frozen=True)
class Staircase:
    """A staircase run over answers in order: the exposure each trial was shown at, the
    step each answer made (SHORTER, LONGER or 0), the positions (0-based) of the
    reversals and the exposure the next trial gets."""

    exposures: tuple[int, ...]
    steps: tuple[int, ...]
    reversals: tuple[int, ...]
    next_ms: int


def _rung(ms: int) -> int:
    if ms not in LADDER_MS:
        raise ValueError(f"{ms} ms is not on the ladder {LADDER_MS}")
    return LADDER_MS.index(ms)


def steps_of(correct: Sequence[bool]) -> tuple[int, ...]:
    """The step each answer makes: LONGER after a wrong answer, SHORTER after the third
    right answer in a row (the count then starts again), else 0."""
    steps, streak = [], 0
    for right in correct:
        if not right:
            steps.append(LONGER)
            streak = 0
        else:
            streak += 1
            if streak == DOWN_AFTER:
                steps.append(SHORTER)
                streak = 0
            else:
                steps.append(0)
    return tuple(steps)


def reversals_of(steps: Sequence[int]) -> tuple[int, ...]:
    """The positions of the steps in the other direction than the step before them."""
    out, last = [], 0
    for i, step in enumerate(steps):
        if step:
            if last and step != last:
                out.append(i)
            last = step
    return tuple(out)


def staircase(correct: Sequence[bool], start_ms: int = START_MS) -> Staircase:
    """Run the 3-up/1-down staircase over ``correct`` (whether each measured answer was
    right, in order) from ``start_ms``."""
    rung = _rung(start_ms)
    steps = steps_of(correct)
    exposures = []
    for step in steps:
        exposures.append(LADDER_MS[rung])
        rung = min(len(LADDER_MS) - 1, max(0, rung + step))
    return Staircase(tuple(exposures), steps, reversals_of(steps), LADDER_MS[rung])


def next_exposure(correct: Sequence[bool]) -> int:
    """The exposure of the next trial after these measured answers."""
    return staircase(correct).next_ms


@dataclass(frozen=True)
class Threshold:
    """One participant's exposure threshold (ms), the reversals it was taken from, and
    whether the staircase turned at least MIN_REVERSALS times."""

    threshold_ms: float
    reversals: int
    trials: int
    converged: bool


def participant_threshold(exposures: Sequence[int], correct: Sequence[bool]) -> Threshold | None:
    """The threshold of one participant from the exposures their measured trials were
    shown at (as stored) and whether each answer was right: the mean exposure at the last
    LAST_REVERSALS reversals; with fewer than MIN_REVERSALS, the exposure the staircase
    ended on. None without any measured trial."""
    if len(exposures) != len(correct):
        raise ValueError("one exposure per answer")
    if not exposures:
        return None
    steps = steps_of(correct)
    turns = reversals_of(steps)
    if len(turns) >= MIN_REVERSALS:
        values = [exposures[i] for i in turns[-LAST_REVERSALS:]]
        return Threshold(float(np.mean(values)), len(turns), len(exposures), True)
    rung = min(len(LADDER_MS) - 1, max(0, _rung(exposures[-1]) + steps[-1]))
    return Threshold(float(LADDER_MS[rung]), len(turns), len(exposures), False)


@dataclass(frozen=True)
class ConditionThreshold:
    """A condition's threshold: the mean of its participants' thresholds, with a
    percentile bootstrap interval over participants (NaN bounds with one participant)."""

    mean_ms: float
    low_ms: float
    high_ms: float
    participants: int
    not_converged: int
    n_boot: int
    seed: int
    confidence: float


def condition_threshold(
    thresholds: Sequence[Threshold], *, n_boot: int = 2000, seed: int = 0, confidence=0.95
) -> ConditionThreshold | None:
    """The mean threshold of a condition's participants and its percentile bootstrap
    interval (participants resampled with replacement, ``numpy.random.default_rng(seed)``)."""
    if not thresholds:
        return None
    values = np.array([t.threshold_ms for t in thresholds], dtype=float)
    low = high = float("nan")
    if len(values) > 1:
        rng = np.random.default_rng(seed)
        means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
        alpha = 1 - confidence
        low, high = (float(x) for x in np.percentile(means, [50 * alpha, 100 - 50 * alpha]))
    return ConditionThreshold(
        float(values.mean()),
        low,
        high,
        len(values),
        sum(not t.converged for t in thresholds),
        n_boot,
        seed,
        confidence,
    )


def mask_jpeg(seed_text: str) -> bytes:
    """A backward mask: MASK_SIZE² px of random colour blocks drawn from ``seed_text``
    alone (nothing of the image it follows), encoded as a JPEG."""
    from PIL import Image

    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    n = MASK_SIZE // MASK_BLOCK
    blocks = rng.integers(0, 256, size=(n, n, 3), dtype=np.uint8)
    pixels = np.kron(blocks, np.ones((MASK_BLOCK, MASK_BLOCK, 1), dtype=np.uint8))
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "JPEG", quality=85)
    return out.getvalue()
