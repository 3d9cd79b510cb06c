"""Histograms of participants (accuracy, typical response times), from the counts; pure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from survey.analysis.counts import RT_BIN_MS, RT_CAP_MS


@dataclass(frozen=True)
class Distribution:
    """A histogram of participants: ``edges`` has one more entry than ``counts`` (the last
    bin is open when ``open_end``); median and quartiles are interpolated within bins."""

    edges: list[float]
    counts: list[int]
    n: int
    mean: float | None = None
    median: float | None = None
    quartiles: list[float] | None = None
    open_end: bool = False


def _quantile(edges: np.ndarray, counts: np.ndarray, q: float) -> float:
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    target = q * cumulative[-1]
    i = int(np.searchsorted(cumulative, target, side="left"))
    i = min(max(i, 1), len(counts))
    inside = counts[i - 1]
    fraction = 0.0 if inside == 0 else (target - cumulative[i - 1]) / inside
    return float(edges[i - 1] + fraction * (edges[i] - edges[i - 1]))


def rt_distribution(bins: dict[int, int]) -> Distribution:
    """Participants' geometric mean response times (``bins``: RT_BIN_MS bin -> participants)
    as a histogram of RT_BIN_MS bins up to RT_CAP_MS, the last bin open (RT_CAP_MS and
    more); median and quartiles exact to within RT_BIN_MS ms."""
    last = RT_CAP_MS // RT_BIN_MS
    fine = np.zeros(last + 1, np.int64)
    for b, n in bins.items():
        fine[min(max(int(b), 0), last)] += n
    edges = [float(i * RT_BIN_MS) for i in range(last + 2)]
    n = int(fine.sum())
    if not n:
        return Distribution(edges, [0] * (last + 1), 0, open_end=True)
    centres = np.array(edges[:-1]) + RT_BIN_MS / 2
    q1, median, q3 = (_quantile(np.array(edges), fine, q) for q in (0.25, 0.5, 0.75))
    mean = float((fine * centres).sum() / n)
    return Distribution(edges, [int(x) for x in fine], n, mean, median, [q1, q3], open_end=True)


def regroup(d: Distribution, *, width: float, upto: float) -> Distribution:
    """``d`` (an open-ended histogram of equal bins) in bins of ``width`` (a multiple of
    its own) up to ``upto``, everything above in the last, open bin."""
    step = round(width / (d.edges[1] - d.edges[0]))
    keep = round((upto - d.edges[0]) / (d.edges[1] - d.edges[0]))
    counts = [sum(d.counts[i : min(i + step, keep)]) for i in range(0, keep, step)]
    counts.append(sum(d.counts[keep:]))
    edges = [d.edges[0] + width * i for i in range(len(counts) + 1)]
    return Distribution(edges, counts, d.n, d.mean, d.median, d.quartiles, open_end=True)


def quantile(d: Distribution, q: float) -> float | None:
    """The ``q`` quantile of a histogram, interpolated within its bin (None when empty)."""
    return _quantile(np.array(d.edges), np.array(d.counts), q) if d.n else None


def accuracy_distribution(rows: list[tuple[int, int, int]], *, bins: int = 10) -> Distribution:
    """Participants' accuracy (``rows``: (correct, judged, participants)) in ``bins`` equal
    bins over [0, 1] (1.0 in the last); the median is exact."""
    rows = [(correct / n, participants) for correct, n, participants in rows if n]
    counts = np.zeros(bins, np.int64)
    for accuracy, participants in rows:
        counts[min(int(accuracy * bins), bins - 1)] += participants
    edges = [i / bins for i in range(bins + 1)]
    total = int(counts.sum())
    if not total:
        return Distribution(edges, [int(x) for x in counts], 0)
    rows.sort()
    values = np.array([a for a, _ in rows])
    weights = np.array([p for _, p in rows])
    cumulative = np.cumsum(weights)
    lower = values[np.searchsorted(cumulative, (total + 1) // 2)]
    upper = values[np.searchsorted(cumulative, total // 2 + 1)]
    return Distribution(
        edges,
        [int(x) for x in counts],
        total,
        float((values * weights).sum() / total),
        float((lower + upper) / 2),
    )
