"""Power and sample size of a study, by simulation (pure NumPy/SciPy, no Django).

What is simulated
-----------------
A between-subjects study: each condition has its own participants, its own pool of AI
images and its own pool of real photographs (``pool`` of each). Each participant judges
``images_per_participant`` images, half real photographs and half AI images, never the
same image twice, handed out least exposed first (exposures of a pool stay within ±1,
as ``survey.services.assignment`` keeps them). Every judgement is *fooled* (1) or not (0):
fooled means the answer differs from the truth, a real photograph judged AI or an AI
image judged Real, exactly as :attr:`survey.inference.Row.fooled` and the paper's fooling
rate count it. The data come from the model the platform fits
(``fooled ~ 1 + (1|participant) + (1|image)``, logit, an image being an (image, truth)
pair):

    logit P(fooled) = logit(rate) + u_participant + v_image,
    u ~ N(0, participant_sd²), v ~ N(0, image_sd²),

so ``rate`` is the *model-based* fooling rate (a typical participant on a typical image,
expit of the intercept), the number the platform reports, not the pooled rate (which lies
a little closer to 0.5 when the SDs are not 0). Participants, images and answers are drawn
afresh for every simulated study.

The three questions (each a probability over simulated studies, "power"):

* ``equivalence``: the study shows the rate *equivalent to chance within ±δ*: the
  mixed-model TOST of :func:`survey.equivalence.model_tost` (its 1 − 2α interval inside
  0.5 ± δ), falling back to the exact binomial TOST where the model does not converge, as
  ``survey.inference`` decides the verdict.
* ``difference``: two conditions, rates ``rate`` and ``rate + delta``; the joint model's
  contrast (``fooled ~ condition + (1|participant) + (1|image)``) has Wald p < α.
* ``width``: the 95 % interval of the model-based rate is at most ``width`` wide.

Analyses
--------
* ``glmm``: each simulated study analysed by the platform's own code
  (:func:`survey.inference.fooling_model`, :func:`survey.inference.joint_model`): the
  variance components and the intercept estimated by the Laplace approximation as lme4's
  glmer. About 0.2–0.5 s a study, too slow for a page; the command offers it.
* ``fast`` (the page's default): the same model, each study's two SDs estimated by the
  method of moments (:func:`moment_sds`, bincounts) instead of by the Laplace likelihood,
  then β and the random effects by penalized iteratively reweighted least squares at
  those SDs (lme4's nAGQ = 0 estimate for a given θ), β's standard error from the joint
  Hessian (the conditional estimate), the same Wald intervals and TOST. About 5 ms a
  study against 200–450 ms. Measured on the same 100 simulated studies at four points
  (``bench/bench_power.py``): the same verdict as ``glmm`` in 100 %, 97 %, 94 % and 97 %
  of studies. Its power is lower than the GLMM's, so it errs towards more participants:
  for the difference goal 0.80 against 0.86 (the joint GLMM rejects more often), for the
  width goal by much more (rate 0.5, SDs 0.5, pool 100, w 0.15, 20 participants:
  assurance 0.595 ± 0.016 fast, 0.747 ± 0.036 glmm, 0.717 ± 0.026 R's glmer), and with
  both SDs 0 (equivalence, rate 0.5, δ 0.1, 10 participants: 0.744 ± 0.014 fast,
  0.795 ± 0.029 glmm, exact binomial TOST 0.825), the SDs being estimated above 0 by
  chance.
* ``fixed``: as ``fast`` with the SDs fixed at the planned values. Its interval widths
  hardly vary between studies, so for the width goal it is badly optimistic (assurance
  1.00 where the GLMM gives 0.80); kept for the closed-form checks (SDs 0: the pooled
  logistic fit).
* ``binomial``: the pooled analyses the platform reports beside the models (the exact
  binomial TOST, Wilson's interval, the two-proportion z-test, which is the paper's Pearson
  χ² without correction); with both SDs 0 their power is known exactly
  (:func:`exact_binomial_tost_power`, :func:`exact_wilson_width_assurance`), which checks
  the simulation.

Every power is a proportion of ``simulations`` studies; its Monte Carlo standard error
sqrt(p(1 − p)/simulations) is reported beside it. Seeded and reproducible: a study of n
participants is the first n participants of the same replicate's study of more (common
random numbers across the curve, so the curve is smooth and rises with n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import linalg, special, stats
from threadpoolctl import threadpool_limits

from survey.equivalence import check_alpha, check_margin
from survey.statistics import wilson_intervals

__all__ = [
    "ANALYSES",
    "GOALS",
    "LITERATURE_SDS",
    "Plan",
    "PlanError",
    "PlanResult",
    "approximate_participants",
    "exact_binomial_tost_power",
    "exact_wilson_width_assurance",
    "format_text",
    "normal_width_participants",
    "plan",
    "power_at",
    "simulate_study",
]

GOALS = ("equivalence", "difference", "width")
ANALYSES = ("fast", "fixed", "glmm", "binomial")
WIDTH_CONFIDENCE = 0.95
MAX_SIMULATIONS = 100_000
MAX_PARTICIPANTS = 20_000
STEP_TOL = 1e-7  # Newton steps of the fast fit (logit scale): converged below this

#: The SDs used when the researcher has no finished study to take them from. They are
#: assumptions, not values from a published source: random-intercept SDs of about 0.5 on
#: the logit scale are a moderate amount of variation (a participant one SD above the
#: typical one is fooled at 56 % where the typical one is at 45 %); stimulus variation is
#: commonly of the order of participant variation or larger (Judd, Westfall & Kenny 2012).
LITERATURE_SDS = {"participant_sd": 0.5, "image_sd": 0.5}
SDS_SOURCE = (
    "assumed (no finished study to estimate them from): participant SD 0.5 and image SD "
    "0.5 on the logit scale, moderate variation of the order Judd, Westfall & Kenny (2012) "
    "describe; not estimates from a published study of this task"
)


class PlanError(ValueError):
    """An input the planner cannot use; ``option`` names it (a field of :class:`Plan`)."""

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


@dataclass(frozen=True)
class Plan:
    rate: float = 0.5
    participant_sd: float = LITERATURE_SDS["participant_sd"]
    image_sd: float = LITERATURE_SDS["image_sd"]
    images_per_participant: int = 24
    pool: int = 100  # AI images per condition, and as many real photographs
    margin: float = 0.05
    alpha: float = 0.05
    goal: str = "equivalence"
    delta: float | None = None  # difference: the second condition's rate is rate + delta
    width: float | None = None  # width: the 95 % interval's largest acceptable width
    power: float = 0.8
    simulations: int = 200
    seed: int = 1
    analysis: str = "fast"
    participants: tuple[int, ...] | None = None  # the curve's points (None: chosen)

    def checked(self) -> Plan:
        """The plan with every value checked (PlanError naming the first bad one)."""
        values, problems = self._check()
        if problems:
            raise problems[0]
        return replace(self, **values)

    def problems(self) -> list[PlanError]:
        """Every input the planner cannot use, at most one per input, in the order
        :meth:`checked` checks them. A check that needs another input (the pool needs the
        images per participant, Δ the rate) is left out while that input is itself bad."""
        return self._check()[1]

    def _check(self) -> tuple[dict, list[PlanError]]:
        values: dict = {}
        problems: list[PlanError] = []

        def check(name: str, how) -> None:
            try:
                values[name] = how()
            except PlanError as exc:
                problems.append(exc)

        check("rate", lambda: _number("rate", self.rate, 0.0, 1.0))
        for name in ("participant_sd", "image_sd"):
            check(name, lambda name=name: _sd(name, getattr(self, name)))
        check("images_per_participant", lambda: _even_images(self.images_per_participant))
        k = values.get("images_per_participant")
        check("pool", lambda: _pool(self.pool, k))
        check("margin", lambda: _fraction_below_half("margin", self.margin, check_margin))
        check("alpha", lambda: _fraction_below_half("alpha", self.alpha, check_alpha))
        check("goal", lambda: _one_of("goal", self.goal, GOALS))
        check("analysis", lambda: _one_of("analysis", self.analysis, ANALYSES))
        values["delta"], values["width"] = self.delta, self.width
        if self.goal == "difference":
            check("delta", lambda: _delta(self.delta, values.get("rate")))
        if self.goal == "width":
            check("width", lambda: _width(self.width))
        check("power", lambda: _number("power", self.power, 0.0, 1.0))
        check("simulations", lambda: _integer("simulations", self.simulations, 1, MAX_SIMULATIONS))
        check("seed", lambda: _integer("seed", self.seed, 0, 2**63 - 1))
        check("participants", lambda: _participants(self.participants))
        return values, problems

    @property
    def rates(self) -> tuple[float, ...]:
        if self.goal == "difference":
            return (self.rate, self.rate + self.delta)
        return (self.rate,)


def _sd(name: str, value) -> float:
    sd = _number(name, value, None, None)
    if sd < 0:
        raise PlanError(name, f"a standard deviation cannot be negative, got {sd:g}")
    if sd > 10:
        raise PlanError(name, f"must be at most 10 on the logit scale, got {sd:g}")
    return sd


def _even_images(value) -> int:
    k = _integer("images_per_participant", value, 2, 10_000)
    if k % 2:
        raise PlanError("images_per_participant", f"must be even (half real, half AI), got {k}")
    return k


def _pool(value, k: int | None) -> int:
    """The pool's size; against the images per participant ``k`` when that is known."""
    pool = _integer("pool", value, 1, 1_000_000)
    if k is not None and pool < k // 2:
        raise PlanError(
            "pool",
            f"a participant sees {k // 2} images of each kind, never one twice: the pool "
            f"needs at least {k // 2}, got {pool}",
        )
    return pool


def _fraction_below_half(name: str, value, check) -> float:
    try:
        return check(value)
    except (TypeError, ValueError):
        raise PlanError(name, f"must lie strictly between 0 and 0.5, got {value!r}") from None


def _one_of(name: str, value, allowed) -> str:
    if value not in allowed:
        raise PlanError(name, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _delta(value, rate: float | None) -> float:
    """The difference Δ; the second rate, rate + Δ, checked when the rate is known."""
    if value is None:
        raise PlanError("delta", "the difference goal needs the difference Δ to detect")
    delta = _number("delta", value, -1.0, 1.0)
    if delta == 0:
        raise PlanError("delta", "a difference of 0 cannot be detected")
    if rate is not None and not 0 < rate + delta < 1:
        raise PlanError(
            "delta",
            f"the second condition's rate, rate + Δ = {rate + delta:g}, must lie "
            "strictly between 0 and 1",
        )
    return delta


def _width(value) -> float:
    if value is None:
        raise PlanError("width", "the width goal needs the largest width w")
    return _number("width", value, 0.0, 1.0)


def _participants(values) -> tuple[int, ...] | None:
    if values is None:
        return None
    participants = tuple(sorted({_integer("participants", n, 2, MAX_PARTICIPANTS) for n in values}))
    if not participants:
        raise PlanError("participants", "give at least one number of participants")
    return participants


def _number(option: str, value, low: float | None, high: float | None) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PlanError(option, f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise PlanError(option, f"expected a finite number, got {value!r}")
    if low is not None and not low < number < high:
        raise PlanError(option, f"must lie strictly between {low:g} and {high:g}, got {number:g}")
    return number


def _integer(option: str, value, low: int, high: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PlanError(option, f"expected a whole number, got {value!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise PlanError(option, f"expected a whole number, got {value!r}")
    number = int(number)
    if not low <= number <= high:
        raise PlanError(option, f"must be between {low:,} and {high:,}, got {number:,}")
    return number


# --------------------------------------------------------------------------------------------
# Simulating one study
# --------------------------------------------------------------------------------------------


@dataclass
class SimulatedStudy:
    """Judgements as arrays: fooled (0/1), participant and image codes (0-based, unique
    across conditions), condition index, and whether the image is real."""

    fooled: np.ndarray
    participant: np.ndarray
    image: np.ndarray
    condition: np.ndarray
    real: np.ndarray
    n_participants: int
    n_images: int


def _streams(seed: int, replicate: int, condition: int) -> list[np.random.Generator]:
    children = np.random.SeedSequence([seed, replicate, condition]).spawn(4)
    return [np.random.default_rng(c) for c in children]


def simulate_study(plan: Plan, n: int, replicate: int) -> SimulatedStudy:
    """Replicate ``replicate`` of the study with ``n`` participants per condition. The same
    replicate with more participants adds participants and leaves the first n as they were.
    """
    h = plan.images_per_participant // 2
    fooled, participant, image, condition, real = [], [], [], [], []
    for c, rate in enumerate(plan.rates):
        # One stream per kind of draw, each drawn in participant order: the first n
        # participants' draws do not depend on how many follow.
        images_rng, people_rng, assign_rng, answers_rng = _streams(plan.seed, replicate, c)
        # Images: pool AI then pool real, per condition; effects on the logit scale.
        v = plan.image_sd * images_rng.standard_normal(2 * plan.pool)
        u = plan.participant_sd * people_rng.standard_normal(n)
        order = np.arange(n)[:, None] * h + np.arange(h)[None, :]  # n × h, consecutive
        ai = assign_rng.permutation(plan.pool)[order % plan.pool]
        photographs = plan.pool + assign_rng.permutation(plan.pool)[order % plan.pool]
        seen = np.concatenate([ai, photographs], axis=1)  # n × 2h image indices
        eta = special.logit(rate) + u[:, None] + v[seen]
        draws = answers_rng.random((n, 2 * h))
        fooled.append((draws < special.expit(eta)).ravel())
        participant.append(np.repeat(np.arange(n) + c * n, 2 * h))
        image.append(seen.ravel() + c * 2 * plan.pool)
        condition.append(np.full(n * 2 * h, c))
        real.append((seen >= plan.pool).ravel())
    return SimulatedStudy(
        fooled=np.concatenate(fooled).astype(float),
        participant=np.concatenate(participant),
        image=np.concatenate(image),
        condition=np.concatenate(condition),
        real=np.concatenate(real),
        n_participants=n * len(plan.rates),
        n_images=2 * plan.pool * len(plan.rates),
    )


# --------------------------------------------------------------------------------------------
# The fast analysis: the crossed model with its SDs fixed, fitted by penalized IRLS
# --------------------------------------------------------------------------------------------


@dataclass
class FixedFit:
    beta: np.ndarray
    vcov: np.ndarray
    converged: bool


def fit_fixed_sds(
    y: np.ndarray,
    X: np.ndarray,
    participant: np.ndarray,
    image: np.ndarray,
    participant_sd: float,
    image_sd: float,
    n_participants: int,
    n_images: int,
    max_iter: int = 30,
) -> FixedFit:
    """Maximise Σ log p(y | η) − ½‖a‖² − ½‖b‖² over (β, a, b), η = Xβ + σ_p a[participant]
    + σ_i b[image] (lme4's nAGQ = 0 estimate at θ = (σ_p, σ_i)) by Newton steps; the
    participants' block is diagonal and eliminated, the rest is dense. vcov is β's block
    of the inverse Hessian (lme4's conditional estimate)."""
    q = X.shape[1]
    m = q + n_images
    beta = np.zeros(q)
    pooled = np.clip(y.mean(), 1e-3, 1 - 1e-3)
    beta[0] = special.logit(pooled)
    a = np.zeros(n_participants)
    b = np.zeros(n_images)
    sp, si = participant_sd, image_sd
    converged = False
    for _ in range(max_iter):
        eta = X @ beta + sp * a[participant] + si * b[image]
        mu = special.expit(eta)
        w = mu * (1 - mu)
        r = y - mu
        # Gradient
        g_beta = X.T @ r
        g_a = sp * np.bincount(participant, r, n_participants) - a
        g_b = si * np.bincount(image, r, n_images) - b
        # Hessian blocks (of the negative log posterior)
        d_a = sp * sp * np.bincount(participant, w, n_participants) + 1.0
        H = np.zeros((m, m))
        H[:q, :q] = (X * w[:, None]).T @ X
        cross = np.zeros((q, n_images))
        for j in range(q):
            cross[j] = si * np.bincount(image, w * X[:, j], n_images)
        H[:q, q:] = cross
        H[q:, :q] = cross.T
        H[q + np.arange(n_images), q + np.arange(n_images)] = (
            si * si * np.bincount(image, w, n_images) + 1.0
        )
        # Coupling of participants with (β, images): n_participants × m
        C = np.zeros((n_participants, m))
        for j in range(q):
            C[:, j] = sp * np.bincount(participant, w * X[:, j], n_participants)
        C[:, q:] = (sp * si) * np.bincount(
            participant * n_images + image, w, n_participants * n_images
        ).reshape(n_participants, n_images)
        S = H - (C / d_a[:, None]).T @ C
        g = np.concatenate([g_beta, g_b])
        rhs = g - C.T @ (g_a / d_a)
        try:
            factor = linalg.cho_factor(S, lower=True, check_finite=False)
        except linalg.LinAlgError:
            break
        step = linalg.cho_solve(factor, rhs, check_finite=False)
        step_a = (g_a - C @ step) / d_a
        beta = beta + step[:q]
        b = b + step[q:]
        a = a + step_a
        if max(np.max(np.abs(step)), np.max(np.abs(step_a), initial=0.0)) < STEP_TOL:
            converged = True
            break
    else:
        factor = None
    if factor is None:
        return FixedFit(beta, np.full((q, q), np.nan), False)
    # β's block of S⁻¹ (S is the Hessian with the participants eliminated).
    unit = np.zeros((m, q))
    unit[np.arange(q), np.arange(q)] = 1.0
    vcov = linalg.cho_solve(factor, unit, check_finite=False)[:q]
    return FixedFit(beta, vcov, converged)


# --------------------------------------------------------------------------------------------
# One simulated study's outcome under each analysis
# --------------------------------------------------------------------------------------------


def _z(level: float) -> float:
    return float(stats.norm.ppf(level))


def _wald_outcome(plan: Plan, estimate: float, se: float, usable: bool) -> bool:
    """The goal reached by a model's intercept (or contrast) and its standard error."""
    if not usable or not math.isfinite(se) or se <= 0:
        return False
    if plan.goal == "equivalence":
        z = _z(1 - plan.alpha)
        low, high = special.expit(estimate - z * se), special.expit(estimate + z * se)
        return bool(0.5 - plan.margin < low and high < 0.5 + plan.margin)
    if plan.goal == "difference":
        return bool(2 * stats.norm.sf(abs(estimate) / se) < plan.alpha)
    z = _z(0.5 + WIDTH_CONFIDENCE / 2)
    width = special.expit(estimate + z * se) - special.expit(estimate - z * se)
    return bool(width <= plan.width)


def _binomial_outcome(plan: Plan, study: SimulatedStudy) -> bool:
    fooled = study.fooled
    if plan.goal == "difference":
        k = np.bincount(study.condition, fooled, 2)
        n = np.bincount(study.condition, minlength=2).astype(float)
        pooled = k.sum() / n.sum()
        se = math.sqrt(pooled * (1 - pooled) * (1 / n[0] + 1 / n[1]))
        if se == 0:
            return False
        return bool(2 * stats.norm.sf(abs(k[1] / n[1] - k[0] / n[0]) / se) < plan.alpha)
    k, n = int(fooled.sum()), fooled.size
    if plan.goal == "equivalence":
        return bool(_tost_p(np.array([k]), n, plan.margin)[0] < plan.alpha)
    low, high = wilson_intervals([k], [n], WIDTH_CONFIDENCE)
    return bool(high[0] - low[0] <= plan.width)


def _tost_p(k: np.ndarray, n: int, margin: float) -> np.ndarray:
    """statsmodels' binom_tost p for each count k of n (the larger one-sided p)."""
    p_low = stats.binom.sf(k - 1, n, 0.5 - margin)  # H0: rate ≤ 0.5 − δ
    p_high = stats.binom.cdf(k, n, 0.5 + margin)  # H0: rate ≥ 0.5 + δ
    return np.maximum(p_low, p_high)


_C2 = (16 * math.sqrt(3) / (15 * math.pi)) ** 2
_HERMITE = np.polynomial.hermite_e.hermegauss(40)
_SD_GRID = np.linspace(0.0, 6.0, 601)


def _logit_sd(variance: float, p: float) -> float:
    """The SD σ of u ~ N(0, σ²) for which expit(logit(p) + u) has this variance (Gauss–
    Hermite quadrature on a grid of σ, interpolated)."""
    if variance <= 0:
        return 0.0
    nodes, weights = _HERMITE
    weights = weights / weights.sum()
    values = special.expit(special.logit(p) + _SD_GRID[:, None] * nodes[None, :])
    mean = values @ weights
    curve = (values**2) @ weights - mean**2
    return float(np.interp(variance, curve, _SD_GRID))


def moment_sds(
    y: np.ndarray, participant: np.ndarray, image: np.ndarray, n_participants: int, n_images: int
) -> tuple[float, float]:
    """The participants' and images' SDs on the logit scale by the method of moments: on
    the 0/1 scale Var(participant mean) = σ²_P + (T − σ²_P)/k with T = p̄(1 − p̄) and k
    judgements per participant (images likewise, k their harmonic mean of judgements);
    each variance is carried to the logit scale through the logistic-normal distribution,
    then undone of the other factor's attenuation (averaging over images shrinks a
    participant's logit by √(1 + c²σ_I²), c = 16√3/(15π); Zeger, Liang & Albert 1988);
    a negative variance is 0 (a singular fit, as the GLMM would report)."""
    p = y.mean()
    total = p * (1 - p)
    if total == 0:
        return 0.0, 0.0
    sds = []
    for codes, levels in ((participant, n_participants), (image, n_images)):
        counts = np.bincount(codes, minlength=levels).astype(float)
        seen = counts > 0
        counts = counts[seen]
        means = np.bincount(codes, y, levels)[seen] / counts
        k = counts.size / np.sum(1 / counts)
        if counts.size < 2 or k <= 1:
            sds.append(0.0)
            continue
        variance = (means.var(ddof=1) - total / k) / (1 - 1 / k)
        sds.append(_logit_sd(variance, p))
    raw_p, raw_i = sds
    sd_p, sd_i = raw_p, raw_i
    for _ in range(5):  # a fixed point: each attenuated by the other
        sd_p = raw_p * math.sqrt(1 + _C2 * sd_i**2)
        sd_i = raw_i * math.sqrt(1 + _C2 * sd_p**2)
    return sd_p, sd_i


def _fast_fit(plan: Plan, study: SimulatedStudy, c: int) -> tuple[float, float, bool]:
    """Condition c's intercept and standard error, its SDs estimated by moments from the
    study ("fast") or fixed at the planned values ("fixed")."""
    rows = study.condition == c
    participant = study.participant[rows]
    image = study.image[rows]
    p0, i0 = participant.min(), image.min()  # codes of a condition are contiguous
    y = study.fooled[rows]
    n_p, n_i = int(participant.max() - p0 + 1), int(image.max() - i0 + 1)
    if plan.analysis == "fast":
        sp, si = moment_sds(y, participant - p0, image - i0, n_p, n_i)
    else:
        sp, si = plan.participant_sd, plan.image_sd
    fit = fit_fixed_sds(
        y, np.ones((int(rows.sum()), 1)), participant - p0, image - i0, sp, si, n_p, n_i
    )
    return float(fit.beta[0]), float(np.sqrt(fit.vcov[0, 0])), fit.converged


def _fast_outcome(plan: Plan, study: SimulatedStudy) -> bool:
    if plan.goal != "difference":
        return _wald_outcome(plan, *_fast_fit(plan, study, 0))
    # Between subjects the conditions share no participant and no image: with the SDs
    # fixed, the joint model's contrast is exactly the difference of the two conditions'
    # intercepts, its variance the sum of theirs.
    (a, se_a, ok_a), (b, se_b, ok_b) = _fast_fit(plan, study, 0), _fast_fit(plan, study, 1)
    return _wald_outcome(plan, b - a, math.hypot(se_a, se_b), ok_a and ok_b)


def _rows(study: SimulatedStudy, names: list[str]):
    from survey.inference import Row

    return [
        Row(
            f"p{p}",
            f"i{i}",
            names[c],
            "real" if real else "ai",
            ("ai" if real else "real") if fooled else ("real" if real else "ai"),
        )
        for p, i, c, real, fooled in zip(
            study.participant.tolist(),
            study.image.tolist(),
            study.condition.tolist(),
            study.real.tolist(),
            study.fooled.tolist(),
            strict=True,
        )
    ]


def _glmm_outcome(plan: Plan, study: SimulatedStudy) -> bool:
    """The platform's own analysis (survey.inference) of the simulated judgements."""
    from survey.equivalence import binomial_tost, model_tost
    from survey.inference import fooling_model, joint_model, model_problem

    names = ["A", "B"][: len(plan.rates)]
    rows = _rows(study, names)
    if plan.goal == "difference":
        theta = [plan.participant_sd, plan.image_sd]
        joint, contrasts = joint_model(rows, names, theta_start=theta)
        if not contrasts or not joint.converged:
            return False
        return bool(contrasts[0].p < plan.alpha)
    model, _ = fooling_model(rows, WIDTH_CONFIDENCE)
    problem = model_problem(model)
    if plan.goal == "equivalence":
        if problem is not None:  # the platform's verdict then rests on the binomial TOST
            return binomial_tost(
                int(study.fooled.sum()), study.fooled.size, plan.margin, plan.alpha
            ).equivalent
        return model_tost(model.intercept, model.intercept_se, plan.margin, plan.alpha).equivalent
    if problem is not None:
        return False
    low, high = model.fooling_rate_ci
    return bool(high - low <= plan.width)


_OUTCOMES = {
    "fast": _fast_outcome,
    "fixed": _fast_outcome,
    "glmm": _glmm_outcome,
    "binomial": _binomial_outcome,
}


def outcomes(plan: Plan, n: int, simulations: int | None = None) -> np.ndarray:
    """Whether each simulated study of n participants per condition reached the goal."""
    outcome = _OUTCOMES[plan.analysis]
    count = plan.simulations if simulations is None else simulations
    # The matrices are small: BLAS threads only contend (a hundred times slower).
    with threadpool_limits(limits=1, user_api="blas"):
        return np.array([outcome(plan, simulate_study(plan, n, r)) for r in range(count)])


# --------------------------------------------------------------------------------------------
# Closed forms (both SDs 0) and the normal approximation that places the curve
# --------------------------------------------------------------------------------------------


def exact_binomial_tost_power(n_judgements: int, rate: float, margin: float, alpha: float) -> float:
    """P(the exact binomial TOST of X ~ Bin(n, rate) is significant at α): the sum of the
    binomial probabilities over the rejection region."""
    k = np.arange(n_judgements + 1)
    reject = _tost_p(k, n_judgements, margin) < alpha
    return float(stats.binom.pmf(k[reject], n_judgements, rate).sum())


def exact_wilson_width_assurance(n_judgements: int, rate: float, width: float) -> float:
    """P(Wilson's 95 % interval of X ~ Bin(n, rate) is at most ``width`` wide), summed
    exactly over X."""
    k = np.arange(n_judgements + 1)
    low, high = wilson_intervals(k, np.full(k.shape, n_judgements), WIDTH_CONFIDENCE)
    narrow = high - low <= width
    return float(stats.binom.pmf(k[narrow], n_judgements, rate).sum())


def normal_width_participants(rate: float, width: float, images_per_participant: int) -> int:
    """The normal closed form with both SDs 0: n judgements with 2 z √(p(1 − p)/n) ≤ w,
    as participants per condition (rounded up)."""
    z = _z(0.5 + WIDTH_CONFIDENCE / 2)
    judgements = (2 * z) ** 2 * rate * (1 - rate) / width**2
    return math.ceil(judgements / images_per_participant)


def _intercept_variance(plan: Plan, rate: float, n: float) -> float:
    """Approximate Var(β̂) of one condition's intercept with n participants: judgements,
    participants and the images seen (each pool image is seen once n·k ≥ 2·pool)."""
    k = plan.images_per_participant
    binomial = 1 / (n * k * rate * (1 - rate))
    return binomial + plan.participant_sd**2 / n + plan.image_sd**2 / min(2 * plan.pool, n * k)


def _needed_se(plan: Plan) -> float | None:
    """The standard error that gives the target power, by the normal approximation."""
    z_power = _z(plan.power)
    if plan.goal == "equivalence":
        room = special.logit(0.5 + plan.margin) - abs(special.logit(plan.rate))
        return room / (_z(1 - plan.alpha) + z_power) if room > 0 else None
    if plan.goal == "difference":
        effect = abs(special.logit(plan.rates[1]) - special.logit(plan.rates[0]))
        return effect / (_z(1 - plan.alpha / 2) + z_power)
    return plan.width / (2 * _z(0.5 + WIDTH_CONFIDENCE / 2) * plan.rate * (1 - plan.rate))


def _variance(plan: Plan, n: float) -> float:
    return (
        sum(_intercept_variance(plan, r, n) for r in plan.rates)
        if plan.goal == "difference"
        else _intercept_variance(plan, plan.rate, n)
    )


def approximate_participants(plan: Plan) -> int | None:
    """Participants per condition by the normal approximation (None: no number suffices,
    or above MAX_PARTICIPANTS)."""
    se = _needed_se(plan)
    if se is None or _variance(plan, MAX_PARTICIPANTS) > se**2:
        return None
    low, high = 1, MAX_PARTICIPANTS
    while high - low > 1:
        mid = (low + high) // 2
        if _variance(plan, mid) <= se**2:
            high = mid
        else:
            low = mid
    return max(high, 2)


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurvePoint:
    participants: int
    judgements_per_condition: int
    power: float
    mc_se: float
    successes: int
    simulations: int


@dataclass
class PlanResult:
    plan: Plan
    goal_text: str
    curve: list[CurvePoint]
    participants: int | None  # the smallest on the curve with power ≥ the target
    interpolated: int | None  # where the curve crosses the target, interpolated
    approximate: int | None  # the normal approximation
    answer: str
    notes: list[str] = field(default_factory=list)
    sds_source: str = SDS_SOURCE


def _goal_text(plan: Plan) -> str:
    if plan.goal == "equivalence":
        return (
            f"show the fooling rate equivalent to chance within ±{plan.margin:g} "
            f"(mixed-model TOST, α = {plan.alpha:g})"
        )
    if plan.goal == "difference":
        return (
            f"detect a difference of {plan.delta:+g} between two conditions' fooling rates "
            f"({plan.rates[0]:g} against {plan.rates[1]:g}; two-sided, α = {plan.alpha:g})"
        )
    return f"get a 95 % interval of the fooling rate no wider than {plan.width:g}"


def _grid(plan: Plan, guess: int | None) -> tuple[int, ...]:
    if plan.participants is not None:
        return plan.participants
    centre = guess or 100
    factors = (0.4, 0.6, 0.8, 1.0, 1.25, 1.6, 2.0)
    return tuple(sorted({min(MAX_PARTICIPANTS, max(2, round(centre * f))) for f in factors}))


def power_at(plan: Plan, n: int) -> CurvePoint:
    hits = outcomes(plan, n)
    p = float(hits.mean())
    return CurvePoint(
        participants=n,
        judgements_per_condition=n * plan.images_per_participant,
        power=p,
        mc_se=math.sqrt(p * (1 - p) / hits.size),
        successes=int(hits.sum()),
        simulations=int(hits.size),
    )


def plan(plan: Plan) -> PlanResult:
    """The power curve and the answer. Raises PlanError on a bad input."""
    plan = plan.checked()
    notes = []
    guess = approximate_participants(plan)
    if plan.goal == "equivalence" and abs(plan.rate - 0.5) >= plan.margin - 1e-12:
        notes.append(
            f"The expected rate {plan.rate:g} is not inside 0.5 ± {plan.margin:g}: equivalence "
            "cannot be expected however many participants take part (power stays at or "
            "below α)."
        )
    elif guess is None:
        notes.append(
            "By the normal approximation no number of participants up to "
            f"{MAX_PARTICIPANTS:,} reaches the target: the image pool's variation "
            f"(image SD {plan.image_sd:g}, {plan.pool} images of each kind) sets a floor "
            "under the standard error. A larger pool of images helps; more participants do not."
        )
    curve = [power_at(plan, n) for n in _grid(plan, guess)]
    # The approximation only places the curve: extend it (up to three points) where the
    # target is not reached yet, unless the points were given or the goal is out of reach.
    reachable = not (plan.goal == "equivalence" and notes)
    for _ in range(3 if plan.participants is None and reachable else 0):
        if curve[-1].power >= plan.power or curve[-1].participants >= MAX_PARTICIPANTS:
            break
        curve.append(power_at(plan, min(MAX_PARTICIPANTS, round(curve[-1].participants * 1.6))))
    reached = [c for c in curve if c.power >= plan.power]
    first = reached[0].participants if reached else None
    interpolated = None
    if reached:
        i = curve.index(reached[0])
        if i == 0:
            interpolated = first
        else:
            a, b = curve[i - 1], curve[i]
            t = (plan.power - a.power) / (b.power - a.power) if b.power > a.power else 1.0
            interpolated = math.ceil(a.participants + t * (b.participants - a.participants))
    last = curve[-1]
    if first is not None:
        point = reached[0]
        answer = (
            f"{first} participants per condition ({first * plan.images_per_participant:,} "
            f"judgements each) give power {point.power:.2f} ± {point.mc_se:.2f} (Monte Carlo "
            f"SE) to {_goal_text(plan)}; the curve crosses {plan.power:g} at about "
            f"{interpolated}."
        )
    else:
        answer = (
            f"None of the participant numbers tried (up to {last.participants}) reaches power "
            f"{plan.power:g} to {_goal_text(plan)}: at {last.participants} the power is "
            f"{last.power:.2f} ± {last.mc_se:.2f}."
        )
    if plan.analysis in ("fast", "fixed"):
        how = "estimated by moments" if plan.analysis == "fast" else "fixed at the planned values"
        notes.append(
            f"Analysis: the crossed logistic model with its two SDs {how} in each simulated "
            "study (fast); the platform's own Laplace fit of every study is "
            "manage.py plan_study --analysis glmm."
        )
    elif plan.analysis == "binomial":
        notes.append(
            "Analysis: the pooled tests (exact binomial TOST, Wilson interval, two-proportion "
            "z-test), which treat judgements as independent."
        )
    notes.append(
        f"Each point is the share of {plan.simulations} simulated studies (seed {plan.seed}); "
        "± is its Monte Carlo standard error."
    )
    return PlanResult(
        plan=plan,
        goal_text=_goal_text(plan),
        curve=curve,
        participants=first,
        interpolated=interpolated,
        approximate=guess,
        answer=answer,
        notes=notes,
    )


def format_text(result: PlanResult) -> str:
    p = result.plan
    lines = [
        f"Goal: {result.goal_text}, power {p.power:g}.",
        f"Design: between subjects, {p.images_per_participant} images per participant "
        f"(half real, half AI), pools of {p.pool} AI images and {p.pool} real photographs per "
        f"condition; model-based fooling rate {' and '.join(f'{r:g}' for r in p.rates)}, "
        f"participant SD {p.participant_sd:g}, image SD {p.image_sd:g} (logit).",
        f"SDs: {result.sds_source}.",
        "",
        result.answer,
        "",
        "participants  judgements  power   MC SE",
    ]
    for c in result.curve:
        lines.append(
            f"{c.participants:>12}  {c.judgements_per_condition:>10}  {c.power:.3f}  {c.mc_se:.3f}"
        )
    if result.approximate is not None:
        lines += ["", f"Normal approximation: {result.approximate} participants per condition."]
    lines += [""] + [f"Note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"
