"""Statistics of the human study (method.md §7): pure functions over 2×2 tables and judgements.

No Django here: the study app turns its database rows into :class:`Judgement` objects (or
counts into a :class:`ContingencyTable`) and hands them to these functions.

Conventions
-----------
* A table has rows = the image's truth (actual Real, actual AI) and columns = the answer
  (judged Real, judged AI); its cells are ``real_real``, ``real_ai``, ``ai_real``, ``ai_ai``
  (``real_ai`` = a real photograph judged AI).
* Every rate is a fraction in [0, 1]; the formatting helpers print percentages.
* **Fooling rate** (the paper's definition) = (real judged AI + AI judged real) / all
  judgements, i.e. the participants' error rate; 0.5 is chance.
* **ai_judged_real_rate** = P(judged Real | AI image), the rate used by Zhang et al. and
  pix2pix. **real_judged_ai_rate** = P(judged AI | real photograph).
* **Pearson χ²** is the paper's statistic: the test of independence with df = 1 and *no*
  continuity correction (``scipy.stats.chi2_contingency(table, correction=False)``). The
  Yates-corrected χ² (SciPy's default for 2×2 tables) and Fisher's exact test are given beside
  it. When a column is empty (everybody answered the same) the expected count of that column
  is zero and χ² is 0/0: the functions return NaN and say why, they never raise.
* Signal detection: "signal" = an AI image, "hit" = an AI image judged AI, "false alarm" = a
  real photograph judged AI. d′ = z(H) − z(F), c = −(z(H) + z(F)) / 2, with the log-linear
  correction of Hautus (1995): H = (hits + 0.5) / (AI trials + 1), F = (false alarms + 0.5) /
  (real trials + 1). d′ = 0 means the participant cannot tell AI from real; c > 0 means a
  bias towards answering "Real".
* Binomial tests, Wilson/exact intervals, the Newcombe interval and the two-proportion z test
  treat judgements as independent. Judgements are clustered by participant (and by image);
  the bootstrap over participants, the two-way bootstrap over participants and images, and
  the long-format export (for a mixed-effects model) are the answers to that.
* Practice trials and attention-check trials are not part of the measured design and are
  dropped before anything is counted (:func:`measured`). Whether a participant who *failed*
  attention checks is excluded altogether is the caller's decision, made before calling.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

import numpy as np
from scipy import stats

from colourmodels.numbers import finite_or_none

__all__ = [
    "ANSWERS",
    "BinomialTest",
    "BootstrapEstimate",
    "BootstrapResult",
    "ChiSquare",
    "ConditionComparison",
    "ContingencyTable",
    "ImageRate",
    "Interval",
    "Judgement",
    "ProportionDifference",
    "SDT",
    "SDTSummary",
    "accuracy",
    "ai_judged_real_rate",
    "analyse_judgements",
    "analyse_table",
    "binomial_test",
    "bootstrap_counts",
    "bootstrap_difference",
    "bootstrap_over_participants",
    "bootstrap_two_way",
    "two_way_draws",
    "chi_square",
    "compare_conditions",
    "difference_of_proportions",
    "dumps_json",
    "exact_interval",
    "fisher_exact_p",
    "fooling_rate",
    "format_latex",
    "format_latex_conditions",
    "format_p",
    "format_text",
    "latex_escape",
    "long_format",
    "measured",
    "newcombe_interval",
    "pearson_chi2",
    "per_image_rates",
    "real_judged_ai_rate",
    "sdt_by_participant",
    "sdt_from_counts",
    "sdt_summary_from_counts",
    "summarise_sdt",
    "table_from_judgements",
    "tables_by_condition",
    "to_jsonable",
    "wilson_interval",
    "wilson_intervals",
    "yates_chi2",
]

ANSWERS = ("real", "ai")
CELLS = ("real_real", "real_ai", "ai_real", "ai_ai")
DEFAULT_CONFIDENCE = 0.95
NAN = float("nan")

EMPTY_COLUMN_REASON = (
    "chi-square is undefined: the {column} column is empty (no judgement was {answer!r}), "
    "so its expected counts are zero and the statistic is 0/0"
)


def _check_confidence(confidence: float) -> float:
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    return confidence


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + _check_confidence(confidence) / 2))


# --------------------------------------------------------------------------------------------
# The 2×2 table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContingencyTable:
    """Counts of one condition: rows = actual (Real, AI), columns = judged (Real, AI).

    Cells must be non-negative integers (ints or NumPy integers; not bools, not floats) and
    neither row may be empty; anything else raises ValueError naming the cell or row.
    """

    real_real: int
    real_ai: int
    ai_real: int
    ai_ai: int

    def __post_init__(self) -> None:
        for name in CELLS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(
                    f"{name}: a count must be a non-negative integer, got {value!r} "
                    f"({type(value).__name__})"
                )
            if value < 0:
                raise ValueError(f"{name}: a count must be a non-negative integer, got {value}")
            object.__setattr__(self, name, int(value))
        if self.real_real + self.real_ai == 0:
            raise ValueError(
                "the actual-Real row is empty (real_real + real_ai = 0): no real photograph "
                "was judged, so the rates are undefined"
            )
        if self.ai_real + self.ai_ai == 0:
            raise ValueError(
                "the actual-AI row is empty (ai_real + ai_ai = 0): no AI image was judged, "
                "so the rates are undefined"
            )

    @classmethod
    def from_matrix(cls, matrix: Sequence[Sequence[int]] | np.ndarray) -> ContingencyTable:
        """From [[real_real, real_ai], [ai_real, ai_ai]]."""
        array = np.asarray(matrix)
        if array.shape != (2, 2):
            raise ValueError(f"expected a 2×2 table, got shape {array.shape}")
        (a, b), (c, d) = matrix
        return cls(a, b, c, d)

    @property
    def cells(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in CELLS}

    @property
    def n(self) -> int:
        return self.real_real + self.real_ai + self.ai_real + self.ai_ai

    @property
    def n_real(self) -> int:
        """Row total: judgements of real photographs."""
        return self.real_real + self.real_ai

    @property
    def n_ai(self) -> int:
        """Row total: judgements of AI images."""
        return self.ai_real + self.ai_ai

    @property
    def judged_real(self) -> int:
        """Column total."""
        return self.real_real + self.ai_real

    @property
    def judged_ai(self) -> int:
        """Column total."""
        return self.real_ai + self.ai_ai

    @property
    def errors(self) -> int:
        """Wrong answers: real judged AI + AI judged real (the fooling rate's numerator)."""
        return self.real_ai + self.ai_real

    def as_array(self) -> np.ndarray:
        return np.array([[self.real_real, self.real_ai], [self.ai_real, self.ai_ai]])


# --------------------------------------------------------------------------------------------
# Rates
# --------------------------------------------------------------------------------------------


def fooling_rate(table: ContingencyTable) -> float:
    """The paper's fooling rate: (real judged AI + AI judged real) / all judgements."""
    return table.errors / table.n


def ai_judged_real_rate(table: ContingencyTable) -> float:
    """P(judged Real | AI image): the rate of Zhang et al. and pix2pix."""
    return table.ai_real / table.n_ai


def real_judged_ai_rate(table: ContingencyTable) -> float:
    """P(judged AI | real photograph)."""
    return table.real_ai / table.n_real


def accuracy(table: ContingencyTable) -> float:
    """(real judged real + AI judged AI) / all = 1 − fooling rate."""
    return (table.real_real + table.ai_ai) / table.n


# The rates analyse_table reports: name -> (successes, trials) of the table.
_RATES = {
    "fooling_rate": lambda t: (t.errors, t.n),
    "ai_judged_real_rate": lambda t: (t.ai_real, t.n_ai),
    "real_judged_ai_rate": lambda t: (t.real_ai, t.n_real),
    "accuracy": lambda t: (t.real_real + t.ai_ai, t.n),
}


# --------------------------------------------------------------------------------------------
# Intervals and binomial tests
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float
    method: str
    reason: str | None = None  # why the bounds are NaN, when they are

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def as_list(self) -> list[float]:
        return [self.low, self.high]


def _check_proportion(successes: int, n: int) -> tuple[int, int]:
    for name, value in (("successes", successes), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if n <= 0:
        raise ValueError(f"a proportion needs n > 0 trials, got n = {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in 0..n = 0..{n}, got {successes}")
    return int(successes), int(n)


def wilson_interval(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Wilson score interval (no continuity correction) for successes / n."""
    k, n = _check_proportion(successes, n)
    z = _z(confidence)
    p = k / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return Interval(low, high, confidence, "wilson")


def wilson_intervals(
    successes: Sequence[int] | np.ndarray,
    n: Sequence[int] | np.ndarray,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`wilson_interval` of many proportions at once: (lows, highs); NaN where n = 0."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    if k.shape != n.shape or (k < 0).any() or (k > n).any():
        raise ValueError("successes must lie in 0..n, element by element")
    z = _z(confidence)
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denominator = 1 + z2 / n
        centre = (p + z2 / (2 * n)) / denominator
        half = z / denominator * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = np.where(k == 0, 0.0, np.maximum(0.0, centre - half))
    high = np.where(k == n, 1.0, np.minimum(1.0, centre + half))
    empty = n == 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def exact_interval(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Clopper–Pearson ("exact") interval for successes / n, from the beta quantiles."""
    k, n = _check_proportion(successes, n)
    alpha = 1 - _check_confidence(confidence)
    low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return Interval(low, high, confidence, "clopper-pearson")


@dataclass(frozen=True)
class BinomialTest:
    successes: int
    n: int
    null: float
    p_value: float
    alternative: str = "two-sided"


def binomial_test(
    successes: int, n: int, null: float = 0.5, alternative: str = "two-sided"
) -> BinomialTest:
    """Exact binomial test of successes / n against ``null`` (scipy.stats.binomtest)."""
    k, n = _check_proportion(successes, n)
    result = stats.binomtest(k, n, p=null, alternative=alternative)
    return BinomialTest(k, n, float(null), float(result.pvalue), alternative)


# --------------------------------------------------------------------------------------------
# Chi-square and Fisher
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChiSquare:
    statistic: float
    p_value: float
    dof: int
    correction: bool  # True = Yates' continuity correction
    reason: str | None = None  # why statistic and p are NaN, when they are

    @property
    def defined(self) -> bool:
        return self.reason is None


def _empty_column_reason(table: ContingencyTable) -> str | None:
    if table.judged_real == 0:
        return EMPTY_COLUMN_REASON.format(column="judged-Real", answer="real")
    if table.judged_ai == 0:
        return EMPTY_COLUMN_REASON.format(column="judged-AI", answer="ai")
    return None


def chi_square(table: ContingencyTable, *, correction: bool = False) -> ChiSquare:
    """Pearson's χ² test of independence (df = 1).

    ``correction=False`` is the paper's statistic; ``correction=True`` applies Yates'
    correction the way ``scipy.stats.chi2_contingency`` does (each |O − E| is reduced by
    0.5 but never below zero). Computed in exact integer arithmetic:
    χ² = n (|ad − bc| − k)² / (r₁ r₂ c₁ c₂), k = 0 or n/2 (Yates, clamped at 0).
    """
    reason = _empty_column_reason(table)
    if reason is not None:
        return ChiSquare(NAN, NAN, 1, correction, reason)
    a, b, c, d = table.real_real, table.real_ai, table.ai_real, table.ai_ai
    margins = table.n_real * table.n_ai * table.judged_real * table.judged_ai
    cross = abs(a * d - b * c)
    if correction:
        # (|ad − bc| − n/2)², kept integral by doubling: (2|ad − bc| − n)² / 4.
        excess = max(0, 2 * cross - table.n)
        statistic = excess * excess * table.n / (4 * margins)
    else:
        statistic = cross * cross * table.n / margins
    p_value = float(stats.chi2.sf(statistic, 1))
    return ChiSquare(float(statistic), p_value, 1, correction)


def pearson_chi2(table: ContingencyTable) -> ChiSquare:
    """The paper's χ²: Pearson, no continuity correction."""
    return chi_square(table, correction=False)


def yates_chi2(table: ContingencyTable) -> ChiSquare:
    return chi_square(table, correction=True)


def fisher_exact_p(table: ContingencyTable) -> float:
    """Two-sided p of Fisher's exact test (scipy.stats.fisher_exact). With an empty column
    the observed table is the only one with its margins and p = 1."""
    return float(stats.fisher_exact(table.as_array(), alternative="two-sided").pvalue)


# --------------------------------------------------------------------------------------------
# Judgements
# --------------------------------------------------------------------------------------------


def _answer(value: str, name: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in ANSWERS:
        raise ValueError(f"{name} must be 'real' or 'ai', got {value!r}")
    return value.strip().lower()


@dataclass(frozen=True)
class Judgement:
    """One trial: a participant's answer about one image in one condition (model).

    ``truth`` and ``answer`` are "real" or "ai" (case-insensitive, stored lower case).
    ``practice`` marks practice trials and ``attention`` attention-check trials; both are
    left out of every count (:func:`measured`) but kept in the long-format export.
    """

    participant: Hashable
    image: Hashable
    condition: Hashable
    truth: str
    answer: str
    rt_ms: float | None = None
    position: int | None = None
    practice: bool = False
    attention: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "truth", _answer(self.truth, "truth"))
        object.__setattr__(self, "answer", _answer(self.answer, "answer"))
        if self.rt_ms is not None and not (
            isinstance(self.rt_ms, numbers.Real) and self.rt_ms >= 0
        ):
            raise ValueError(f"rt_ms must be a non-negative number or None, got {self.rt_ms!r}")

    @property
    def fooled(self) -> bool:
        """The answer is wrong (a real photograph judged AI, or an AI image judged real)."""
        return self.truth != self.answer

    @property
    def cell(self) -> str:
        return f"{self.truth}_{self.answer}"

    @property
    def is_measured(self) -> bool:
        return not (self.practice or self.attention)


def measured(rows: Iterable[Judgement]) -> list[Judgement]:
    """The rows that count: practice and attention-check trials dropped."""
    return [row for row in rows if row.is_measured]


def _select(rows: Iterable[Judgement], condition: Hashable | None) -> list[Judgement]:
    """Measured rows of one condition; with condition=None the rows must hold only one."""
    kept = measured(rows)
    if condition is not None:
        return [row for row in kept if row.condition == condition]
    conditions = {row.condition for row in kept}
    if len(conditions) > 1:
        raise ValueError(
            f"the rows span {len(conditions)} conditions; pass condition= to pick one "
            "(pooling models would mix their images)"
        )
    return kept


def _counts(rows: Iterable[Judgement]) -> np.ndarray:
    counts = np.zeros(4, dtype=np.int64)
    for row in rows:
        counts[CELLS.index(row.cell)] += 1
    return counts


def table_from_judgements(
    rows: Iterable[Judgement], condition: Hashable | None = None
) -> ContingencyTable:
    """The table of one condition (measured rows only)."""
    return ContingencyTable(*(int(x) for x in _counts(_select(rows, condition))))


def tables_by_condition(rows: Iterable[Judgement]) -> dict[Hashable, ContingencyTable]:
    """One table per condition, in the order the conditions first appear.

    Practice and attention-check rows are excluded. A condition whose real or AI row ends
    up empty raises ValueError naming the condition.
    """
    grouped: dict[Hashable, list[Judgement]] = {}
    for row in measured(rows):
        grouped.setdefault(row.condition, []).append(row)
    tables = {}
    for condition, group in grouped.items():
        try:
            tables[condition] = ContingencyTable(*(int(x) for x in _counts(group)))
        except ValueError as exc:
            raise ValueError(f"condition {condition!r}: {exc}") from None
    return tables


def long_format(rows: Iterable[Judgement]) -> list[dict[str, Any]]:
    """One record per judgement (practice and attention rows included, flagged) for a
    mixed-effects model: ``is_ai`` (truth), ``judged_ai`` (answer) and ``correct`` as 0/1."""
    return [
        {
            "participant": row.participant,
            "image": row.image,
            "condition": row.condition,
            "truth": row.truth,
            "answer": row.answer,
            "is_ai": int(row.truth == "ai"),
            "judged_ai": int(row.answer == "ai"),
            "correct": int(not row.fooled),
            "rt_ms": row.rt_ms,
            "position": row.position,
            "practice": int(row.practice),
            "attention": int(row.attention),
        }
        for row in rows
    ]


# --------------------------------------------------------------------------------------------
# Signal detection per participant
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SDT:
    """Sensitivity and bias of one participant (signal = AI image; see the module doc)."""

    hits: int  # AI judged AI
    n_signal: int  # AI trials
    false_alarms: int  # real judged AI
    n_noise: int  # real trials
    hit_rate: float  # log-linear corrected
    false_alarm_rate: float  # log-linear corrected
    d_prime: float
    criterion: float


def sdt_from_counts(hits: int, n_signal: int, false_alarms: int, n_noise: int) -> SDT:
    """d′ and c with the log-linear correction (Hautus 1995):
    H = (hits + 0.5) / (n_signal + 1), F = (false_alarms + 0.5) / (n_noise + 1)."""
    _check_proportion(hits, n_signal)
    _check_proportion(false_alarms, n_noise)
    h = (hits + 0.5) / (n_signal + 1)
    f = (false_alarms + 0.5) / (n_noise + 1)
    zh, zf = float(stats.norm.ppf(h)), float(stats.norm.ppf(f))
    return SDT(
        int(hits), int(n_signal), int(false_alarms), int(n_noise), h, f, zh - zf, -(zh + zf) / 2
    )


def sdt_by_participant(
    rows: Iterable[Judgement], condition: Hashable | None = None
) -> tuple[dict[Hashable, SDT], list[Hashable]]:
    """d′ and c of every participant (measured rows of one condition).

    Returns (participant -> SDT, skipped participants): a participant with no AI trial or
    no real trial has no d′ and is listed as skipped.
    """
    per: dict[Hashable, np.ndarray] = {}
    for row in _select(rows, condition):
        per.setdefault(row.participant, np.zeros(4, dtype=np.int64))[CELLS.index(row.cell)] += 1
    result, skipped = {}, []
    for participant, (rr, ra, ar, aa) in per.items():
        if rr + ra == 0 or ar + aa == 0:
            skipped.append(participant)
            continue
        result[participant] = sdt_from_counts(int(aa), int(ar + aa), int(ra), int(rr + ra))
    return result, skipped


@dataclass(frozen=True)
class SDTSummary:
    n_participants: int
    mean_d_prime: float
    sd_d_prime: float
    d_prime_interval: Interval  # t-based, across participants
    d_prime_t_test_p: float  # one-sample t test of d′ against 0
    mean_criterion: float
    sd_criterion: float
    criterion_interval: Interval
    criterion_t_test_p: float
    skipped: list = field(default_factory=list)


def _t_summary(values: np.ndarray, confidence: float) -> tuple[float, float, Interval, float]:
    k = len(values)
    mean = float(values.mean()) if k else NAN
    if k < 2:
        reason = f"a t interval needs at least 2 participants, got {k}"
        return mean, NAN, Interval(NAN, NAN, confidence, "t", reason), NAN
    sd = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, k - 1)) * sd / math.sqrt(k)
    if sd == 0:
        return mean, sd, Interval(mean, mean, confidence, "t"), NAN
    p = float(stats.ttest_1samp(values, 0.0).pvalue)
    return mean, sd, Interval(mean - half, mean + half, confidence, "t"), p


def summarise_sdt(
    per_participant: Mapping[Hashable, SDT],
    confidence: float = DEFAULT_CONFIDENCE,
    skipped: Sequence[Hashable] = (),
) -> SDTSummary:
    """Mean d′ and c across participants with t-based intervals (df = participants − 1)."""
    confidence = _check_confidence(confidence)
    d = np.array([s.d_prime for s in per_participant.values()], dtype=float)
    c = np.array([s.criterion for s in per_participant.values()], dtype=float)
    md, sdd, di, dp = _t_summary(d, confidence)
    mc, sdc, ci, cp = _t_summary(c, confidence)
    return SDTSummary(len(d), md, sdd, di, dp, mc, sdc, ci, cp, list(skipped))


# --------------------------------------------------------------------------------------------
# Bootstrap over participants
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapEstimate:
    estimate: float
    interval: Interval  # percentile
    n_valid: int  # replicates where the rate was defined


@dataclass(frozen=True)
class BootstrapResult:
    fooling_rate: BootstrapEstimate
    ai_judged_real_rate: BootstrapEstimate
    n_participants: int
    n_boot: int
    seed: int
    n_images: int | None = None  # the two-way bootstrap's images; None: images fixed


_BOOT_CHUNK = 1000


def _participant_counts(
    rows: Iterable[Judgement], conditions: Sequence[Hashable]
) -> tuple[list[Hashable], np.ndarray]:
    """participants, counts[participant, condition, cell]."""
    index: dict[Hashable, int] = {}
    counts: list[np.ndarray] = []
    for row in measured(rows):
        if row.condition not in conditions:
            continue
        if row.participant not in index:
            index[row.participant] = len(counts)
            counts.append(np.zeros((len(conditions), 4), dtype=np.int64))
        counts[index[row.participant]][conditions.index(row.condition), CELLS.index(row.cell)] += 1
    array = np.stack(counts) if counts else np.zeros((0, len(conditions), 4), dtype=np.int64)
    return list(index), array


def _rates_of_sums(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fooling and ai_judged_real rates of (..., 4) cell sums; NaN where undefined."""
    rr, ra, ar, aa = (sums[..., i].astype(float) for i in range(4))
    n = rr + ra + ar + aa
    n_ai = ar + aa
    with np.errstate(divide="ignore", invalid="ignore"):
        fooling = np.where(n > 0, (ra + ar) / n, np.nan)
        ajr = np.where(n_ai > 0, ar / n_ai, np.nan)
    return fooling, ajr


def _resampled_sums(counts: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Cell sums of n_boot resamples (with replacement) of the participants: (n_boot, ..., 4)."""
    rng = np.random.default_rng(seed)
    k = counts.shape[0]
    out = []
    for start in range(0, n_boot, _BOOT_CHUNK):
        size = min(_BOOT_CHUNK, n_boot - start)
        picks = rng.integers(0, k, size=(size, k))
        out.append(counts[picks].sum(axis=1))
    return np.concatenate(out)


def _percentile(values: np.ndarray, estimate: float, confidence: float) -> BootstrapEstimate:
    valid = values[np.isfinite(values)]
    if len(valid) == 0:
        reason = "no bootstrap replicate had the rate defined"
        return BootstrapEstimate(estimate, Interval(NAN, NAN, confidence, "percentile", reason), 0)
    alpha = 1 - confidence
    low, high = np.percentile(valid, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return BootstrapEstimate(
        estimate, Interval(float(low), float(high), confidence, "percentile"), len(valid)
    )


def _check_boot(n_boot: int, seed: int) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def bootstrap_over_participants(
    rows: Iterable[Judgement],
    condition: Hashable | None = None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> BootstrapResult:
    """Percentile intervals of the fooling rate and ai_judged_real_rate, resampling
    participants (with replacement, all their judgements together) ``n_boot`` times with
    ``numpy.random.default_rng(seed)``. Each replicate's rate is the pooled rate of the
    resampled judgements. The same rows, seed and n_boot give the same result."""
    confidence = _check_confidence(confidence)
    _check_boot(n_boot, seed)
    selected = _select(rows, condition)
    if not selected:
        raise ValueError("no measured judgements to bootstrap")
    _, counts = _participant_counts(selected, [selected[0].condition])
    counts = counts[:, 0, :]
    table_fooling, table_ajr = _rates_of_sums(counts.sum(axis=0))
    sums = _resampled_sums(counts, n_boot, seed)
    fooling, ajr = _rates_of_sums(sums)
    return BootstrapResult(
        _percentile(fooling, float(table_fooling), confidence),
        _percentile(ajr, float(table_ajr), confidence),
        counts.shape[0],
        int(n_boot),
        int(seed),
    )


def bootstrap_difference(
    rows: Iterable[Judgement],
    condition_a: Hashable,
    condition_b: Hashable,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[str, BootstrapEstimate]:
    """Percentile intervals of rate(a) − rate(b), resampling participants jointly.

    Valid whether the same participants saw both conditions (within subjects: the pairing
    is kept) or each saw one (between subjects). Keys: "fooling_rate", "ai_judged_real_rate".
    """
    confidence = _check_confidence(confidence)
    _check_boot(n_boot, seed)
    if condition_a == condition_b:
        raise ValueError("compare two different conditions")
    _, counts = _participant_counts(rows, [condition_a, condition_b])
    for i, name in enumerate((condition_a, condition_b)):
        if counts.shape[0] == 0 or counts[:, i, :].sum() == 0:
            raise ValueError(f"condition {name!r} has no measured judgements")
    fa, ja = _rates_of_sums(counts[:, 0, :].sum(axis=0))
    fb, jb = _rates_of_sums(counts[:, 1, :].sum(axis=0))
    sums = _resampled_sums(counts, n_boot, seed)  # (n_boot, 2, 4)
    fooling, ajr = _rates_of_sums(sums)
    return {
        "fooling_rate": _percentile(fooling[:, 0] - fooling[:, 1], float(fa - fb), confidence),
        "ai_judged_real_rate": _percentile(ajr[:, 0] - ajr[:, 1], float(ja - jb), confidence),
    }


# --------------------------------------------------------------------------------------------
# From participants' cell counts (what a database aggregation returns)
# --------------------------------------------------------------------------------------------


def _cell_rows(
    counts: Sequence[Sequence[int]] | np.ndarray, weights: Sequence[int] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, weights): ``counts`` as a (k, 4) int array of cells (real_real, real_ai, ai_real,
    ai_ai) and ``weights`` (how many participants have each row; 1 each when None)."""
    rows = np.asarray(counts, dtype=np.int64).reshape(-1, 4)
    w = np.ones(len(rows), dtype=np.int64) if weights is None else np.asarray(weights, np.int64)
    if w.shape != (len(rows),):
        raise ValueError(f"expected one weight per row ({len(rows)}), got shape {w.shape}")
    if (rows < 0).any() or (w < 0).any():
        raise ValueError("counts and weights must be non-negative")
    return rows, w


def sdt_summary_from_counts(
    counts: Sequence[Sequence[int]] | np.ndarray,
    weights: Sequence[int] | np.ndarray | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[SDTSummary, int]:
    """:func:`summarise_sdt` of :func:`sdt_by_participant`, from cell counts: one row
    (real_real, real_ai, ai_real, ai_ai) per participant, or per group of ``weights[i]``
    participants with the same cells. Vectorised, with the same log-linear correction as
    :func:`sdt_from_counts`. Returns (summary, participants skipped: no AI or no real trial);
    the summary's ``skipped`` list is empty (rows carry no participant ids)."""
    confidence = _check_confidence(confidence)
    rows, w = _cell_rows(counts, weights)
    rr, ra, ar, aa = rows.T
    usable = (rr + ra > 0) & (ar + aa > 0) & (w > 0)
    skipped = int(w[~usable].sum())
    rr, ra, ar, aa, w = rr[usable], ra[usable], ar[usable], aa[usable], w[usable]
    h = (aa + 0.5) / (ar + aa + 1)
    f = (ra + 0.5) / (rr + ra + 1)
    zh, zf = stats.norm.ppf(h), stats.norm.ppf(f)
    d = np.repeat(zh - zf, w)
    c = np.repeat(-(zh + zf) / 2, w)
    md, sdd, di, dp = _t_summary(d, confidence)
    mc, sdc, ci, cp = _t_summary(c, confidence)
    return SDTSummary(len(d), md, sdd, di, dp, mc, sdc, ci, cp, []), skipped


def _resampled_rates(
    successes: np.ndarray, trials: np.ndarray, weights: np.ndarray, n_boot: int, rng
) -> np.ndarray:
    """Pooled rates of ``n_boot`` resamples of the participants (with replacement), each
    participant a (successes, trials) pair held by ``weights`` participants; NaN where a
    resample has no trials. Drawing k participants picks a pair with probability weight / k
    at each draw, so the number of times each distinct pair is drawn is multinomial(k,
    weights / k): one draw over the distinct pairs per replicate."""
    pairs, inverse = np.unique(np.stack([successes, trials], axis=1), axis=0, return_inverse=True)
    held = np.bincount(inverse.ravel(), weights=weights, minlength=len(pairs))
    k = int(weights.sum())
    draws = rng.multinomial(k, held / k, size=n_boot)  # (n_boot, distinct pairs)
    hits, total = draws @ pairs[:, 0], draws @ pairs[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, hits / total, np.nan)


def bootstrap_counts(
    counts: Sequence[Sequence[int]] | np.ndarray,
    weights: Sequence[int] | np.ndarray | None = None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> BootstrapResult:
    """:func:`bootstrap_over_participants` from cell counts (one row per participant, or
    per group of ``weights[i]`` participants with the same cells).

    Each rate is resampled on its own, over the participants' distinct (numerator,
    denominator) pairs (:func:`_resampled_rates`: a multinomial draw per replicate instead of
    k random indices; with 12 real and 12 AI images there are at most 25 such pairs). The
    resampling distribution of each rate is that of :func:`bootstrap_over_participants`;
    the random stream is not, so one seed gives close but not identical bounds."""
    confidence = _check_confidence(confidence)
    _check_boot(n_boot, seed)
    rows, w = _cell_rows(counts, weights)
    rows, w = rows[w > 0], w[w > 0]
    if not len(rows) or rows.sum() == 0:
        raise ValueError("no measured judgements to bootstrap")
    rr, ra, ar, aa = rows.T
    table_fooling, table_ajr = _rates_of_sums((rows * w[:, None]).sum(axis=0))
    rng = np.random.default_rng(seed)
    fooling = _resampled_rates(ra + ar, rr + ra + ar + aa, w, n_boot, rng)
    ajr = _resampled_rates(ar, ar + aa, w, n_boot, rng)
    return BootstrapResult(
        _percentile(fooling, float(table_fooling), confidence),
        _percentile(ajr, float(table_ajr), confidence),
        int(w.sum()),
        int(n_boot),
        int(seed),
    )


# --------------------------------------------------------------------------------------------
# Two-way bootstrap: participants and images together
# --------------------------------------------------------------------------------------------

#: Most judgement weights held in memory at once by the two-way bootstrap (a chunk of
#: replicates times the judgements).
_TWO_WAY_CELLS = 4_000_000


def _index(values: Sequence[Hashable]) -> tuple[np.ndarray, int]:
    """Each value's position among the distinct values (first-seen order), and their count."""
    seen: dict[Hashable, int] = {}
    return np.array([seen.setdefault(v, len(seen)) for v in values], np.int64), len(seen)


def two_way_draws(n_participants: int, n_real: int, n_ai: int, n_boot: int, seed: int):
    """The two-way bootstrap's random draws, one replicate at a time: (participants drawn,
    real images drawn, AI images drawn), each an array of indices drawn with replacement
    (as many as there are), from ``numpy.random.default_rng(seed)``. Yields chunks: a list
    of replicates per chunk, so the vectorised and any explicit implementation see the same
    draws."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, _BOOT_CHUNK):
        size = min(_BOOT_CHUNK, n_boot - start)
        people = rng.integers(0, max(1, n_participants), size=(size, n_participants))
        real = rng.integers(0, max(1, n_real), size=(size, n_real))
        ai = rng.integers(0, max(1, n_ai), size=(size, n_ai))
        yield people, real, ai


def bootstrap_two_way(
    participants: Sequence[Hashable],
    images: Sequence[Hashable],
    is_ai: Sequence[bool],
    fooled: Sequence[bool],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> BootstrapResult:
    """Percentile intervals of the fooling rate and of P(judged Real | AI) that resample
    participants *and* images, one judgement per (``participants[j]``, ``images[j]``):
    ``is_ai[j]`` (the image's truth) and ``fooled[j]`` (a wrong answer).

    The crossed (two-way, "pigeonhole") bootstrap of Owen (2007, Ann. Appl. Stat. 1(2)) and
    Field & Welsh (2007, JRSS B 69(3)): each replicate draws the participants with
    replacement, and the images with replacement *within their truth* (real photographs
    among the real ones, AI images among the AI ones, so each replicate keeps the design's
    balance of real and AI), and keeps every judgement of a drawn participant about a drawn
    image, counted once per time the participant was drawn times the times the image was
    drawn. The replicate's rate is the pooled rate of those judgements. Unlike
    :func:`bootstrap_over_participants` (images fixed), its interval also covers the
    variation between images, so generalises to other images as well as to other people;
    it is conservative (the variance of a crossed design is overestimated by its
    interaction term). Replicates in which no judgement survives have the rate undefined
    and are left out (``n_valid``). The same input, seed and n_boot give the same result.
    """
    confidence = _check_confidence(confidence)
    _check_boot(n_boot, seed)
    n = len(participants)
    if not (len(images) == len(is_ai) == len(fooled) == n):
        raise ValueError("participants, images, is_ai and fooled must have the same length")
    if n == 0:
        raise ValueError("no measured judgements to bootstrap")
    person, n_people = _index(participants)
    ai = np.asarray(is_ai, bool)
    wrong = np.asarray(fooled, bool).astype(float)
    image, n_images = _index(list(zip(images, ai.tolist(), strict=True)))
    image_is_ai = np.zeros(n_images, bool)
    image_is_ai[image] = ai
    n_real, n_ai = int((~image_is_ai).sum()), int(image_is_ai.sum())
    step = max(1, _TWO_WAY_CELLS // n)
    fooling_parts, ajr_parts = [], []
    for people, real, ai_draws in two_way_draws(n_people, n_real, n_ai, n_boot, seed):
        size = len(people)
        times_person = np.stack([np.bincount(p, minlength=n_people) for p in people])
        # Times each image was drawn, in the images' order (the draws number the real and
        # the AI images each in that order).
        times_image = np.zeros((size, n_images), np.int64)
        times_image[:, ~image_is_ai] = [np.bincount(r, minlength=n_real) for r in real]
        times_image[:, image_is_ai] = [np.bincount(a, minlength=n_ai) for a in ai_draws]
        for lo in range(0, size, step):
            hi = min(size, lo + step)
            weight = (times_person[lo:hi][:, person] * times_image[lo:hi][:, image]).astype(float)
            total, total_ai = weight.sum(axis=1), weight[:, ai].sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                fooling_parts.append(np.where(total > 0, weight @ wrong / total, np.nan))
                ajr_parts.append(
                    np.where(total_ai > 0, weight[:, ai] @ wrong[ai] / total_ai, np.nan)
                )
    return BootstrapResult(
        _percentile(np.concatenate(fooling_parts), float(wrong.mean()), confidence),
        _percentile(
            np.concatenate(ajr_parts), float(wrong[ai].mean()) if ai.any() else NAN, confidence
        ),
        n_people,
        int(n_boot),
        int(seed),
        n_images,
    )


# --------------------------------------------------------------------------------------------
# Per image
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRate:
    image: Hashable
    truth: str
    n: int
    fooled: int  # wrong answers: AI image judged real, or real photograph judged AI
    rate: float
    interval: Interval  # Wilson


def per_image_rates(
    rows: Iterable[Judgement],
    condition: Hashable | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[Hashable, ImageRate]:
    """Fooling rate of every image (the share of its judgements that were wrong), with a
    Wilson interval; measured rows of one condition, images in first-seen order."""
    confidence = _check_confidence(confidence)
    tally: dict[Hashable, list] = {}
    for row in _select(rows, condition):
        entry = tally.setdefault(row.image, [row.truth, 0, 0])
        if entry[0] != row.truth:
            raise ValueError(f"image {row.image!r} appears both as real and as AI")
        entry[1] += 1
        entry[2] += int(row.fooled)
    return {
        image: ImageRate(image, truth, n, k, k / n, wilson_interval(k, n, confidence))
        for image, (truth, n, k) in tally.items()
    }


# --------------------------------------------------------------------------------------------
# Comparing two conditions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProportionDifference:
    """p_a − p_b with Newcombe's hybrid-score interval and the pooled two-proportion z test
    (z² equals Pearson's χ² on the 2×2 table of successes/failures, so p is that test's)."""

    successes_a: int
    n_a: int
    successes_b: int
    n_b: int
    difference: float
    interval: Interval
    z: float
    p_value: float
    reason: str | None = None  # why z and p are NaN, when they are


def newcombe_interval(
    successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = DEFAULT_CONFIDENCE
) -> Interval:
    """Newcombe's (1998, method 10) hybrid Wilson-score interval for p_a − p_b, independent
    samples, no continuity correction."""
    p1, p2 = successes_a / n_a, successes_b / n_b
    w1 = wilson_interval(successes_a, n_a, confidence)
    w2 = wilson_interval(successes_b, n_b, confidence)
    d = p1 - p2
    low = d - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    high = d + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high), confidence, "newcombe")


def difference_of_proportions(
    successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = DEFAULT_CONFIDENCE
) -> ProportionDifference:
    k1, n1 = _check_proportion(successes_a, n_a)
    k2, n2 = _check_proportion(successes_b, n_b)
    interval = newcombe_interval(k1, n1, k2, n2, confidence)
    d = k1 / n1 - k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        reason = "z test undefined: the pooled proportion is 0 or 1 (no variation)"
        return ProportionDifference(k1, n1, k2, n2, d, interval, NAN, NAN, reason)
    z = d / se
    return ProportionDifference(k1, n1, k2, n2, d, interval, z, float(2 * stats.norm.sf(abs(z))))


@dataclass(frozen=True)
class ConditionComparison:
    """Condition a minus condition b, treating the two tables as independent samples."""

    fooling_rate: ProportionDifference
    ai_judged_real_rate: ProportionDifference


def compare_conditions(
    a: ContingencyTable, b: ContingencyTable, confidence: float = DEFAULT_CONFIDENCE
) -> ConditionComparison:
    return ConditionComparison(
        difference_of_proportions(a.errors, a.n, b.errors, b.n, confidence),
        difference_of_proportions(a.ai_real, a.n_ai, b.ai_real, b.n_ai, confidence),
    )


# --------------------------------------------------------------------------------------------
# The whole analysis of a table, as a JSON-ready dict
# --------------------------------------------------------------------------------------------


def analyse_table(
    table: ContingencyTable, confidence: float = DEFAULT_CONFIDENCE, null: float = 0.5
) -> dict[str, Any]:
    """Everything about one table, as plain Python values (rates as fractions).

    Keys: ``cells``, ``row_totals``, ``column_totals``, ``n``, ``dof``, ``confidence``,
    ``chi2_pearson``/``p_pearson`` (the paper's, no continuity correction),
    ``chi2_yates``/``p_yates``, ``chi2_reason`` (None, or why χ² is NaN), ``fisher_p``,
    ``fooling_rate``, ``ai_judged_real_rate``, ``real_judged_ai_rate``, ``accuracy``,
    ``intervals`` (rate -> {"wilson": [low, high], "exact": [low, high]}) and
    ``binomial_tests`` (fooling_rate and ai_judged_real_rate against ``null``).
    NaN values stay NaN here; :func:`dumps_json` writes them as null.
    """
    confidence = _check_confidence(confidence)
    pearson = pearson_chi2(table)
    yates = yates_chi2(table)
    result: dict[str, Any] = {
        "cells": table.cells,
        "row_totals": {"actual_real": table.n_real, "actual_ai": table.n_ai},
        "column_totals": {"judged_real": table.judged_real, "judged_ai": table.judged_ai},
        "n": table.n,
        "dof": 1,
        "confidence": confidence,
        "chi2_pearson": pearson.statistic,
        "p_pearson": pearson.p_value,
        "chi2_yates": yates.statistic,
        "p_yates": yates.p_value,
        "chi2_reason": pearson.reason,
        "fisher_p": fisher_exact_p(table),
    }
    intervals = {}
    for name, counts in _RATES.items():
        k, n = counts(table)
        result[name] = k / n
        intervals[name] = {
            "wilson": wilson_interval(k, n, confidence).as_list(),
            "exact": exact_interval(k, n, confidence).as_list(),
        }
    result["intervals"] = intervals
    result["binomial_tests"] = {
        name: asdict(binomial_test(*_RATES[name](table), null=null))
        for name in ("fooling_rate", "ai_judged_real_rate")
    }
    return result


def analyse_judgements(
    rows: Iterable[Judgement],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The study's analysis: per condition the table analysis, d′/c, the bootstrap and the
    per-image rates; then every pair of conditions compared (a − b, in first-seen order)."""
    rows = list(rows)
    tables = tables_by_condition(rows)
    conditions: dict[Hashable, Any] = {}
    for condition, table in tables.items():
        per, skipped = sdt_by_participant(rows, condition)
        conditions[condition] = {
            "table": analyse_table(table, confidence),
            "sdt": summarise_sdt(per, confidence, skipped),
            "bootstrap": bootstrap_over_participants(
                rows, condition, n_boot=n_boot, seed=seed, confidence=confidence
            ),
            "per_image": list(per_image_rates(rows, condition, confidence).values()),
        }
    names = list(tables)
    comparisons = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            comparisons.append(
                {
                    "a": a,
                    "b": b,
                    "independent": compare_conditions(tables[a], tables[b], confidence),
                    "bootstrap": bootstrap_difference(
                        rows, a, b, n_boot=n_boot, seed=seed, confidence=confidence
                    ),
                }
            )
    return {"conditions": conditions, "comparisons": comparisons}


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """Plain JSON values: dataclasses and NumPy values converted, NaN and ±inf -> None,
    tuples -> lists, mapping keys -> str."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return finite_or_none(value)
    return value


def dumps_json(value: Any, **kwargs: Any) -> str:
    """json.dumps of :func:`to_jsonable` (strict JSON: never NaN or Infinity)."""
    return json.dumps(to_jsonable(value), allow_nan=False, **kwargs)


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_p(p: float | None, *, latex: bool = False) -> str:
    """p to 4 significant digits; below 0.001 in scientific notation ("n/a" if undefined)."""
    if _missing(p):
        return "---" if latex else "n/a"
    if p >= 0.001:
        return f"{p:.4f}"
    mantissa, exponent = f"{p:.2e}".split("e")
    if latex:
        return f"${mantissa} \\times 10^{{{int(exponent)}}}$"
    return f"{mantissa}e{int(exponent)}"


def _num(value: float | None, digits: int = 4, missing: str = "n/a") -> str:
    return missing if _missing(value) else f"{value:.{digits}f}"


def _pct(value: float | None, missing: str = "n/a") -> str:
    return missing if _missing(value) else f"{100 * value:.2f}"


def _interval_text(bounds: Sequence[float | None], missing: str = "n/a") -> str:
    return f"{_pct(bounds[0], missing)} to {_pct(bounds[1], missing)} %"


def format_text(result: Mapping[str, Any]) -> str:
    """A plain-text report of :func:`analyse_table`'s result (also after a JSON round trip)."""
    c = result["cells"]
    rt, ct = result["row_totals"], result["column_totals"]
    level = f"{100 * result['confidence']:g} %"
    iv = result["intervals"]
    lines = [
        f"{'':14}{'judged Real':>12}{'judged AI':>12}{'total':>8}",
        f"{'actual Real':14}{c['real_real']:>12}{c['real_ai']:>12}{rt['actual_real']:>8}",
        f"{'actual AI':14}{c['ai_real']:>12}{c['ai_ai']:>12}{rt['actual_ai']:>8}",
        f"{'total':14}{ct['judged_real']:>12}{ct['judged_ai']:>12}{result['n']:>8}",
        "",
        f"Pearson chi-square (no continuity correction, df = {result['dof']}): "
        f"{_num(result['chi2_pearson'])}, p = {format_p(result['p_pearson'])}",
        f"Yates-corrected chi-square: {_num(result['chi2_yates'])}, "
        f"p = {format_p(result['p_yates'])}",
    ]
    if result.get("chi2_reason"):
        lines.append(f"  ({result['chi2_reason']})")
    lines.append(f"Fisher's exact test (two-sided): p = {format_p(result['fisher_p'])}")
    labels = {
        "fooling_rate": "Fooling rate ((real judged AI + AI judged real) / all)",
        "ai_judged_real_rate": "P(judged Real | AI) (Zhang et al. / pix2pix)",
        "real_judged_ai_rate": "P(judged AI | Real)",
        "accuracy": "Accuracy",
    }
    for name, label in labels.items():
        lines.append(
            f"{label}: {_pct(result[name])} % ({level} Wilson {_interval_text(iv[name]['wilson'])}"
            f"; exact {_interval_text(iv[name]['exact'])})"
        )
    tests = result.get("binomial_tests", {})
    for name in ("fooling_rate", "ai_judged_real_rate"):
        if name in tests:
            t = tests[name]
            lines.append(
                f"Binomial test of {name} against {100 * t['null']:g} %: "
                f"p = {format_p(t['p_value'])}"
            )
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # A table row starting "[" would be read as \\'s (or \midrule's) optional argument.
    "[": "{[}",
    "]": "{]}",
    # A line break would end a LaTeX comment or a table row; inside text it is a space.
    "\n": " ",
    "\r": " ",
}


def latex_escape(text: Any) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _latex_pct(value: float | None) -> str:
    return "---" if _missing(value) else f"{100 * value:.2f}\\,\\%"


def _latex_interval(bounds: Sequence[float | None]) -> str:
    return f"{_pct(bounds[0], '---')}--{_pct(bounds[1], '---')}\\,\\%"


def _table_env(body: list[str], caption: str | None, label: str | None) -> str:
    head = ["\\begin{table}[htbp]", "\\centering"]
    if caption:
        head.append(f"\\caption{{{caption}}}")
    if label:
        head.append(f"\\label{{{label}}}")
    return "\n".join(head + body + ["\\end{table}"]) + "\n"


def format_latex(
    result: Mapping[str, Any], caption: str | None = None, label: str | None = None
) -> str:
    """A booktabs table laid out like the paper's Tables 5 and 7–9: rows actual Real /
    actual AI (and the column totals), columns judged Real / judged AI / total, then
    Pearson's χ² (no continuity correction), p and the fooling rate with its Wilson interval.
    ``caption`` and ``label`` are LaTeX source, inserted as given. Needs \\usepackage{booktabs}.
    """
    c = result["cells"]
    rt, ct = result["row_totals"], result["column_totals"]
    level = f"{100 * result['confidence']:g}\\,\\%"
    wilson = result["intervals"]["fooling_rate"]["wilson"]
    chi2 = _num(result["chi2_pearson"], missing="---")
    body = [
        "\\begin{tabular}{lrrr}",
        "\\toprule",
        " & Judged Real & Judged AI & Total \\\\",
        "\\midrule",
        f"Actual Real & {c['real_real']} & {c['real_ai']} & {rt['actual_real']} \\\\",
        f"Actual AI & {c['ai_real']} & {c['ai_ai']} & {rt['actual_ai']} \\\\",
        f"Total & {ct['judged_real']} & {ct['judged_ai']} & {result['n']} \\\\",
        "\\midrule",
        "\\multicolumn{3}{l}{$\\chi^2$ (Pearson, no continuity correction, df = "
        f"{result['dof']})}} & {chi2} \\\\",
        f"\\multicolumn{{3}}{{l}}{{$p$}} & {format_p(result['p_pearson'], latex=True)} \\\\",
        f"\\multicolumn{{3}}{{l}}{{Fooling rate}} & {_latex_pct(result['fooling_rate'])} \\\\",
        f"\\multicolumn{{3}}{{l}}{{{level} Wilson interval}} & {_latex_interval(wilson)} \\\\",
        "\\bottomrule",
        "\\end{tabular}",
    ]
    return _table_env(body, caption, label)


def format_latex_conditions(
    results: Mapping[Any, Mapping[str, Any]],
    caption: str | None = None,
    label: str | None = None,
) -> str:
    """One booktabs row per condition (name -> :func:`analyse_table` result): the four
    cells, Pearson χ² (no continuity correction), p, and the fooling rate with its Wilson
    interval. Condition names are escaped; caption and label are LaTeX source."""
    levels = {r["confidence"] for r in results.values()}
    level = "/".join(f"{100 * x:g}" for x in sorted(levels)) + "\\,\\%"
    body = [
        "\\begin{tabular}{lrrrrrrl}",
        "\\toprule",
        " & \\multicolumn{2}{c}{Actual Real} & \\multicolumn{2}{c}{Actual AI} & & & \\\\",
        "\\cmidrule(lr){2-3} \\cmidrule(lr){4-5}",
        "Condition & Judged Real & Judged AI & Judged Real & Judged AI & $\\chi^2$ & $p$ & "
        f"Fooling rate ({level} CI) \\\\",
        "\\midrule",
    ]
    for name, r in results.items():
        c = r["cells"]
        wilson = r["intervals"]["fooling_rate"]["wilson"]
        body.append(
            f"{latex_escape(name)} & {c['real_real']} & {c['real_ai']} & {c['ai_real']} & "
            f"{c['ai_ai']} & {_num(r['chi2_pearson'], missing='---')} & "
            f"{format_p(r['p_pearson'], latex=True)} & "
            f"{_latex_pct(r['fooling_rate'])} ({_latex_interval(wilson)}) \\\\"
        )
    body += [
        "\\bottomrule",
        "\\end{tabular}",
    ]
    notes = (
        "% chi^2: Pearson's test of independence, df = 1, no continuity correction; "
        "intervals: Wilson."
    )
    return _table_env(body + [notes], caption, label)
