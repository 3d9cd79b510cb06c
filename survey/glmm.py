"""Binary generalized linear mixed models by the Laplace approximation, as lme4's ``glmer``
computes them (nAGQ = 1; Bates, Mächler, Bolker & Walker 2015). NumPy/SciPy, no Django.

This is the platform's one engine for mixed models; R's lme4 is the reference it is tested
against (tests/survey/test_glmm.py), never a runtime dependency.

The model
---------
η = Xβ + Zb, b = Λ(θ)u, u ~ N(0, I); y ~ Bernoulli(g⁻¹(η)) with the logit or probit link.
Each random term is a grouping factor with one or two columns (an intercept, or an
intercept and a slope); its relative covariance factor T is lower triangular and Λ is
``I ⊗ T`` per term. θ holds T's elements column by column ("lower triangle"), the diagonal
ones bounded below by 0, exactly as lme4 orders and bounds them.

The Laplace deviance of (θ, β) (lme4's ``devfun`` for nAGQ = 1) is

    Σ deviance residuals(y, μ(u*)) + ‖u*‖² + log det(L Lᵀ),  L Lᵀ = ΛᵀZᵀWZΛ + I,

with u* the conditional mode found by penalized iteratively reweighted least squares
(PIRLS) and W the GLM working weights (μ′(η)² / V(μ): for the probit link these are the
expected, not the observed, information, as in lme4). The estimate minimises it over (θ, β)
jointly. The covariance of β̂ is lme4's default for glmer (``vcov(use.hessian = TRUE)``):
the β block of 2 H⁻¹, H the finite-difference Hessian of the deviance over (θ, β); where H
is not positive definite it falls back, as lme4 does, to the conditional estimate
(Xᵀ W X − Xᵀ W Z Λ (L Lᵀ)⁻¹ Λᵀ Zᵀ W X)⁻¹ and says so. PIRLS here runs to the exact mode
(gradient norm below 1e-10); lme4's stops at a relative change of 1e-7 in the penalized
deviance, so its finite-difference Hessian is slightly off the exact Laplace deviance's and
its standard errors differ from these by about 1–2 % (the estimates by far less).

A fit is *singular* when a diagonal element of θ is below 1e-4 (lme4's ``isSingular``):
a random-effect variance estimated as (almost) zero, or a correlation of ±1. It has
*failed to converge* when lme4's gradient check would fail (the largest of
min(|g|, |chol(H)⁻¹g|) above 0.002) or the optimiser stopped without converging. Both
are said in words in :attr:`GLMMFit.warnings`, never only as a flag.

Solving LLᵀ: with two crossed factors the first (the one with more coefficients) is block
diagonal, 1×1 or 2×2 blocks, and is eliminated; the dense Schur complement of the other is
factorised by Cholesky. BLAS runs on one thread (threadpoolctl): the matrices are small.

The optimiser is COBYQA (SciPy; the successor of the BOBYQA lme4 uses) over (θ, β) from
lme4's start (θ = 1 on the diagonal, β of the GLM), polished by Newton steps on the
finite-difference Hessian; a zero diagonal element of a 2 × 2 factor is tried once more
from away from the bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg, optimize, special
from threadpoolctl import threadpool_limits

__all__ = ["GLMMFit", "RandomTerm", "TermFit", "fit_glmm"]

SINGULAR_TOL = 1e-4  # lme4's isSingular tol
GRADIENT_TOL = 2e-3  # lme4's check.conv.grad tol
HESSIAN_STEP = 1e-4  # lme4's deriv12 delta
LINKS = ("logit", "probit")


@dataclass(frozen=True)
class RandomTerm:
    """A grouping factor and its columns: ``codes[i]`` is observation i's level (0..L−1),
    ``columns`` is n × k (k = 1: an intercept; k = 2: an intercept and a slope)."""

    name: str
    codes: np.ndarray
    levels: Sequence[object]
    columns: np.ndarray
    column_names: Sequence[str] = ("(Intercept)",)

    @property
    def k(self) -> int:
        return self.columns.shape[1]


@dataclass
class TermFit:
    """One random term's estimates: SDs (per column), the correlation (two columns), and the
    conditional modes of the random effects with their conditional SDs (n_levels × k)."""

    name: str
    column_names: list[str]
    sd: list[float]
    correlation: float | None
    levels: list[object]
    modes: np.ndarray
    mode_sd: np.ndarray


@dataclass
class GLMMFit:
    link: str
    beta_names: list[str]
    beta: np.ndarray
    vcov: np.ndarray
    theta: np.ndarray
    terms: list[TermFit]
    deviance: float  # the Laplace deviance (−2 log-likelihood) at the estimate
    n_obs: int
    converged: bool
    singular: bool
    vcov_method: str  # "hessian" (lme4's default) or "conditional" (the fallback)
    warnings: list[str] = field(default_factory=list)
    evaluations: int = 0

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov))

    def coefficient(self, name: str) -> tuple[float, float]:
        i = self.beta_names.index(name)
        return float(self.beta[i]), float(self.se[i])


# --------------------------------------------------------------------------------------------
# Links: log-likelihood pieces, written to stay finite far into the tails
# --------------------------------------------------------------------------------------------


def _family(link: str, eta: np.ndarray, y: np.ndarray):
    """Per observation: deviance residuals, the score dℓ/dη, the GLM working weight
    μ′²/V(μ) (lme4's, used in the Laplace determinant) and the observed information
    −d²ℓ/dη² (used for Newton steps towards the mode; the same for the logit link)."""
    if link == "logit":
        log_mu = -np.logaddexp(0.0, -eta)
        log_1mu = -np.logaddexp(0.0, eta)
        mu = special.expit(eta)
        score = y - mu
        weight = mu * (1.0 - mu)
        observed = weight
    else:
        log_mu = special.log_ndtr(eta)
        log_1mu = special.log_ndtr(-eta)
        log_pdf = -0.5 * eta * eta - 0.5 * math.log(2 * math.pi)
        ratio_1 = np.exp(log_pdf - log_mu)  # φ/Φ
        ratio_0 = np.exp(log_pdf - log_1mu)  # φ/(1 − Φ)
        score = np.where(y > 0, ratio_1, -ratio_0)
        weight = np.exp(2 * log_pdf - log_mu - log_1mu)
        observed = np.where(y > 0, ratio_1 * (ratio_1 + eta), ratio_0 * (ratio_0 - eta))
    dev = -2.0 * np.where(y > 0, log_mu, log_1mu)
    return dev, score, np.maximum(weight, 1e-300), np.maximum(observed, 1e-300)


# --------------------------------------------------------------------------------------------
# The model's structure
# --------------------------------------------------------------------------------------------


def _theta_layout(k: int) -> tuple[list[tuple[int, int]], list[bool]]:
    """T's lower-triangle positions column by column, and which are diagonal."""
    positions = [(i, j) for j in range(k) for i in range(j, k)]
    return positions, [i == j for i, j in positions]


class _Model:
    """The data laid out for the penalized system; ``deviance(x)`` is lme4's devfun."""

    def __init__(self, y, X, terms: list[RandomTerm], link: str):
        self.y = y
        self.X = X
        self.n, self.p = X.shape
        self.link = link
        # Eliminate the term with more coefficients (block diagonal); Schur on the other.
        order = sorted(range(len(terms)), key=lambda t: -len(terms[t].levels) * terms[t].k)
        self.order = order
        self.terms = [terms[t] for t in order]
        self.levels = [len(t.levels) for t in self.terms]
        self.sizes = [len(t.levels) * t.k for t in self.terms]
        self.offsets = np.cumsum([0, *self.sizes])
        self.q = int(self.offsets[-1])
        start = 0
        caller_slices = {}
        lower = []
        for t in range(len(terms)):
            _, diagonal = _theta_layout(terms[t].k)
            caller_slices[t] = slice(start, start + len(diagonal))
            start += len(diagonal)
            lower += [0.0 if d else -np.inf for d in diagonal]
        self.n_theta = start
        self.theta_slices = [caller_slices[t] for t in order]  # θ in the caller's order
        self.lower = np.array(lower)
        self.codes = [np.asarray(t.codes, dtype=np.intp) for t in self.terms]
        if len(self.terms) == 2:
            self._pairs()
        self.u = np.zeros(self.q)
        self.u_theta: np.ndarray | None = None  # the θ self.u was the mode for
        self.evaluations = 0

    def _pairs(self) -> None:
        """The (level₁, level₂) pairs that occur: the cross block's nonzero blocks."""
        L2 = self.levels[1]
        cell = self.codes[0] * L2 + self.codes[1]
        cells, self.pair = np.unique(cell, return_inverse=True)
        self.n_pairs = len(cells)
        self.pair_l1, self.pair_l2 = cells // L2, cells % L2

    def factor_blocks(self, theta: np.ndarray) -> list[np.ndarray]:
        blocks = []
        for term, sl in zip(self.terms, self.theta_slices, strict=False):
            T = np.zeros((term.k, term.k))
            for (i, j), value in zip(_theta_layout(term.k)[0], theta[sl], strict=False):
                T[i, j] = value
            blocks.append(T)
        return blocks

    def design(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per term, the rows of ZΛ: observation i's k values (n × k)."""
        return [
            term.columns @ T for term, T in zip(self.terms, self.factor_blocks(theta), strict=False)
        ]

    def eta_random(self, a: list[np.ndarray], u: np.ndarray) -> np.ndarray:
        eta = np.zeros(self.n)
        for t, (at, codes) in enumerate(zip(a, self.codes, strict=False)):
            ut = u[self.offsets[t] : self.offsets[t + 1]].reshape(-1, at.shape[1])
            eta += np.einsum("ij,ij->i", at, ut[codes])
        return eta

    def zt_times(self, a: list[np.ndarray], v: np.ndarray) -> np.ndarray:
        """(ZΛ)ᵀ v."""
        out = np.empty(self.q)
        for t, (at, codes) in enumerate(zip(a, self.codes, strict=False)):
            L, k = self.levels[t], at.shape[1]
            block = np.column_stack(
                [np.bincount(codes, weights=v * at[:, j], minlength=L) for j in range(k)]
            )
            out[self.offsets[t] : self.offsets[t + 1]] = block.ravel()
        return out

    def _blocks(self, t, a, w):
        """The diagonal blocks of ΛᵀZᵀWZΛ + I for term t: (L, k, k)."""
        at, codes, L = a[t], self.codes[t], self.levels[t]
        k = at.shape[1]
        blocks = np.empty((L, k, k))
        for i in range(k):
            for j in range(i, k):
                blocks[:, i, j] = blocks[:, j, i] = np.bincount(
                    codes, weights=w * at[:, i] * at[:, j], minlength=L
                )
        blocks[:, np.arange(k), np.arange(k)] += 1.0
        return blocks

    # -- the penalized system LLᵀ = ΛᵀZᵀWZΛ + I, by elimination of the first term -----------

    def system(self, a, w):
        A = self._blocks(0, a, w)
        A_inv = np.linalg.inv(A)
        logdet = float(np.linalg.slogdet(A)[1].sum())
        if len(self.terms) == 1:
            return {"A_inv": A_inv, "logdet": logdet, "AiB": None, "chol": None}
        L2 = self.levels[1]
        k1, k2 = a[0].shape[1], a[1].shape[1]
        # The cross block B from its nonzero k1 × k2 blocks, one per pair that occurs.
        B = np.empty((self.n_pairs, k1, k2))
        for i in range(k1):
            for j in range(k2):
                B[:, i, j] = np.bincount(
                    self.pair, weights=w * a[0][:, i] * a[1][:, j], minlength=self.n_pairs
                )
        B = self.dense_cross(B)
        AiB = self._apply_blocks(A_inv, B)
        S = -(B.T @ AiB)
        D = self._blocks(1, a, w)
        for j in range(k2):
            for m in range(k2):
                S[j::k2, m::k2][np.arange(L2), np.arange(L2)] += D[:, j, m]
        chol = linalg.cho_factor(S, lower=True, check_finite=False)
        logdet += 2.0 * float(np.log(np.diag(chol[0])).sum())
        return {"A_inv": A_inv, "logdet": logdet, "AiB": AiB, "chol": chol}

    @staticmethod
    def _apply_blocks(blocks: np.ndarray, x: np.ndarray) -> np.ndarray:
        L, k, _ = blocks.shape
        if x.ndim == 1:
            return np.einsum("lij,lj->li", blocks, x.reshape(L, k)).ravel()
        return np.einsum("lij,ljm->lim", blocks, x.reshape(L, k, -1)).reshape(L * k, -1)

    def dense_cross(self, blocks) -> np.ndarray:
        """The dense cross block from its pairs' k1 × k2 blocks."""
        L1, L2 = self.levels
        k1, k2 = blocks.shape[1:]
        dense = np.zeros((L1, k1, L2, k2))
        dense[self.pair_l1, :, self.pair_l2, :] = blocks
        return dense.reshape(L1 * k1, L2 * k2)

    def solve(self, system, r: np.ndarray) -> np.ndarray:
        A_inv = system["A_inv"]
        if system["AiB"] is None:
            return self._apply_blocks(A_inv, r)
        q1 = int(self.sizes[0])
        r1, r2 = r[:q1], r[q1:]
        AiB = system["AiB"]
        x2 = linalg.cho_solve(system["chol"], r2 - AiB.T @ r1, check_finite=False)
        x1 = self._apply_blocks(A_inv, r1) - AiB @ x2
        return np.concatenate([x1, x2])

    # -- PIRLS and the Laplace deviance ---------------------------------------------------------

    def pirls(self, theta, beta, u0=None, tol=1e-10, max_iter=60):
        """The conditional mode u* by Newton steps, until the gradient's norm is below
        ``tol`` (the determinant depends on u to first order, so u must be precise, not
        only the penalized deviance: the Hessian's finite differences divide by 1e-8)."""
        a = self.design(theta)
        offset = self.X @ beta
        u = self._warm_start(theta) if u0 is None else u0.copy()

        def penalized(u):
            dev, score, w, observed = _family(self.link, offset + self.eta_random(a, u), self.y)
            return float(dev.sum() + u @ u), dev, score, w, observed

        pdev, dev, score, w, observed = penalized(u)
        converged = False
        for _ in range(max_iter):
            # LLᵀ ⪰ I, so the Newton step is no longer than the gradient: a gradient below
            # tol means the mode is found, without a factorisation to say so.
            gradient = self.zt_times(a, score) - u
            if float(np.sqrt(gradient @ gradient)) < tol:
                converged = True
                break
            # Newton steps (quadratic convergence for the probit link too); the Laplace
            # determinant then uses lme4's working weights at the mode.
            step = self.solve(self.system(a, observed), gradient)
            factor = 1.0
            for _ in range(30):
                candidate = u + factor * step
                new = penalized(candidate)
                if new[0] <= pdev + 1e-12 * abs(pdev):
                    break
                factor /= 2
            else:
                break
            u = candidate
            pdev, dev, score, w, observed = new
        system = self.system(a, w)
        return u, float(dev.sum() + u @ u + system["logdet"]), converged, a, w, system

    def _warm_start(self, theta: np.ndarray) -> np.ndarray:
        """The last mode, rescaled to keep its random effects b = Λu where Λ is invertible."""
        u = self.u.copy()
        if self.u_theta is None:
            return u
        old, new = self.factor_blocks(self.u_theta), self.factor_blocks(theta)
        for t, (T_old, T_new) in enumerate(zip(old, new, strict=False)):
            if np.min(np.abs(np.diag(T_new))) < 1e-6:
                continue
            k = T_new.shape[0]
            block = u[self.offsets[t] : self.offsets[t + 1]].reshape(-1, k)
            b = block @ T_old.T
            u[self.offsets[t] : self.offsets[t + 1]] = np.linalg.solve(T_new, b.T).T.ravel()
        return u

    def deviance(self, x: np.ndarray) -> float:
        theta, beta = x[: self.n_theta], x[self.n_theta :]
        self.evaluations += 1
        try:
            u, value, _, _, _, _ = self.pirls(theta, beta)
        except (np.linalg.LinAlgError, ValueError):
            return 1e300
        if np.all(np.isfinite(u)):
            self.u, self.u_theta = u, theta.copy()
        return value if math.isfinite(value) else 1e300


# --------------------------------------------------------------------------------------------
# Derivatives by finite differences (lme4's deriv12, central and symmetric)
# --------------------------------------------------------------------------------------------


def _derivatives(f, x, h=HESSIAN_STEP):
    """(f(x), gradient, Hessian) by finite differences with step h: central for the
    gradient and the diagonal, f(x + hᵢ + hⱼ) − f(x + hᵢ) − f(x + hⱼ) + f(x) for the rest
    (a quarter of the evaluations of lme4's four-point rule, the same to within its noise)."""
    d = len(x)
    f0 = f(x)
    plus = np.empty(d)
    minus = np.empty(d)
    for j in range(d):
        e = np.zeros(d)
        e[j] = h
        plus[j], minus[j] = f(x + e), f(x - e)
    g = (plus - minus) / (2 * h)
    H = np.empty((d, d))
    for j in range(d):
        H[j, j] = (plus[j] - 2 * f0 + minus[j]) / (h * h)
        for i in range(j):
            e = np.zeros(d)
            e[i] = e[j] = h
            H[i, j] = H[j, i] = (f(x + e) - plus[i] - plus[j] + f0) / (h * h)
    return f0, g, H


# --------------------------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------------------------


def _glm_start(y, X, link):
    """β of the GLM without random effects (a few Fisher-scoring steps), the start."""
    beta = np.zeros(X.shape[1])
    for _ in range(25):
        eta = X @ beta
        _, score, _, w = _family(link, eta, y)
        step = np.linalg.lstsq((X.T * w) @ X, X.T @ score, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def _check(y, X, terms, link):
    if link not in LINKS:
        raise ValueError(f"link must be one of {', '.join(LINKS)}, got {link!r}")
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    if y.ndim != 1 or X.ndim != 2 or X.shape[0] != len(y):
        raise ValueError("y must be a vector and X a matrix with one row per observation")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must hold 0 and 1 only")
    if y.min() == y.max():
        raise ValueError("the response is constant: every observation is the same")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError("the fixed-effect columns are linearly dependent")
    if not 1 <= len(terms) <= 2:
        raise ValueError("one or two random terms are supported")
    for term in terms:
        if term.columns.shape[0] != len(y) or not 1 <= term.k <= 2:
            raise ValueError(f"{term.name}: one or two columns, one row per observation")
        if len(term.levels) < 2:
            raise ValueError(f"{term.name}: a random effect needs at least two levels")
    return y, X


def fit_glmm(
    y: Sequence[float] | np.ndarray,
    X: np.ndarray,
    beta_names: Sequence[str],
    terms: Sequence[RandomTerm],
    *,
    link: str = "logit",
    theta_start: Sequence[float] | None = None,
) -> GLMMFit:
    """Fit the model by the Laplace approximation (lme4's glmer, nAGQ = 1).

    ``terms`` are given in the formula's order (lme4 orders θ the same way). θ starts at
    lme4's default (1 on the diagonal, 0 off it) unless ``theta_start`` gives a closer
    guess (the estimate is the same; it takes fewer evaluations)."""
    # The matrices are small: BLAS threads only contend (ten times slower on a busy machine).
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(y, X, beta_names, terms, link, theta_start)


def _fit(y, X, beta_names, terms, link, theta_start=None) -> GLMMFit:
    terms = list(terms)
    y, X = _check(y, X, terms, link)
    model = _Model(y, X, terms, link)
    warnings: list[str] = []

    theta0 = []
    for term in terms:
        _, diagonal = _theta_layout(term.k)
        theta0 += [1.0 if d else 0.0 for d in diagonal]
    if theta_start is not None:
        if len(theta_start) != len(theta0):
            raise ValueError(f"theta_start needs {len(theta0)} values, got {len(theta_start)}")
        theta0 = np.maximum(
            np.asarray(theta_start, dtype=float), np.where(model.lower == 0, 0.05, -np.inf)
        )
    x0 = np.concatenate([theta0, _glm_start(y, X, link)])
    f = model.deviance
    # lme4 uses BOBYQA; COBYQA is its successor (Powell's derivative-free, bounded,
    # quadratic-model trust region) and needs few deviance evaluations.
    bounds = optimize.Bounds(np.concatenate([model.lower, np.full(X.shape[1], -np.inf)]), np.inf)
    options = {"initial_tr_radius": 0.2, "final_tr_radius": 1e-5, "maxfev": 3000}
    result = optimize.minimize(f, x0, method="COBYQA", bounds=bounds, options=options)
    x, value = result.x, result.fun
    optimiser_ok = bool(result.success)
    # A zero diagonal element of a 2 × 2 factor may be a saddle the optimiser stopped on
    # (it leaves the correlation's direction flat): start once more with those elements
    # away from zero and keep the better estimate. (A single SD at zero is even in θ: a
    # true boundary estimate.)
    in_pair = np.concatenate([np.full(len(_theta_layout(t.k)[1]), t.k == 2) for t in terms])
    edge = (model.lower == 0) & (x[: model.n_theta] < SINGULAR_TOL) & in_pair
    if edge.any():
        start = x.copy()
        start[: model.n_theta][edge] = 0.2
        again = optimize.minimize(f, start, method="COBYQA", bounds=bounds, options=options)
        if again.fun < value - 1e-6:
            x, value, optimiser_ok = again.x, again.fun, bool(again.success)

    # Newton steps on the finite-difference Hessian polish the estimate where they still
    # promise a gain; the derivatives are those lme4 computes at its estimate.
    lower = np.concatenate([model.lower, np.full(X.shape[1], -np.inf)])
    f0, g, H = _derivatives(f, x)
    for _ in range(3):
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        if not step @ g > 1e-7:
            break
        candidate = np.maximum(x - step, lower)
        value = f(candidate)
        if not value < f0 - 1e-9:
            break
        x = candidate
        f0, g, H = _derivatives(f, x)

    n_theta = model.n_theta
    theta, beta = x[:n_theta], x[n_theta:]
    u, dev, pirls_ok, a, w, system = model.pirls(theta, beta)
    singular = bool(np.any(theta[model.lower == 0] < SINGULAR_TOL))

    converged = optimiser_ok and pirls_ok
    if not pirls_ok:
        warnings.append(
            "the conditional modes of the random effects did not converge (PIRLS); "
            "the estimates are unreliable"
        )
    if not optimiser_ok:
        warnings.append(f"the optimiser stopped before converging ({result.message})")
    if singular:
        warnings.append(
            "singular fit: a random-effect variance was estimated as (almost) zero or a "
            "correlation as ±1, so the model is at the edge of its parameter space; the "
            "random-effect SDs are not reliable and the fixed effects are as in a simpler model"
        )
    else:
        try:
            scaled = linalg.solve_triangular(np.linalg.cholesky(H), g, lower=True)
            max_grad = float(np.max(np.minimum(np.abs(scaled), np.abs(g))))
            if max_grad > GRADIENT_TOL:
                converged = False
                warnings.append(
                    f"the model failed to converge: the largest scaled gradient is "
                    f"{max_grad:.3g} (lme4's tolerance is {GRADIENT_TOL:g})"
                )
        except np.linalg.LinAlgError:
            converged = False
            warnings.append(
                "the model failed to converge: the Hessian of the deviance is not positive "
                "definite, so the estimate is not a proper minimum"
            )

    vcov, method = _vcov(H, n_theta, model, a, w, system, warnings)
    return GLMMFit(
        link=link,
        beta_names=list(beta_names),
        beta=beta,
        vcov=vcov,
        theta=theta,
        terms=_term_fits(model, theta, u, system, len(terms)),
        deviance=dev,
        n_obs=model.n,
        converged=converged,
        singular=singular,
        vcov_method=method,
        warnings=warnings,
        evaluations=model.evaluations,
    )


def _vcov(H, n_theta, model, a, w, system, warnings):
    try:
        V = 2.0 * np.linalg.inv(H)[n_theta:, n_theta:]
        V = (V + V.T) / 2
        if np.all(np.isfinite(V)) and np.linalg.eigvalsh(V).min() > 0:
            return V, "hessian"
    except np.linalg.LinAlgError:
        pass
    # lme4's fallback: the fixed effects' covariance given θ and the modes.
    X = model.X
    WX = X * w[:, None]
    cross = np.column_stack([model.zt_times(a, WX[:, j]) for j in range(X.shape[1])])
    solved = np.column_stack([model.solve(system, cross[:, j]) for j in range(X.shape[1])])
    V = np.linalg.inv(X.T @ WX - cross.T @ solved)
    warnings.append(
        "the covariance of the fixed effects from the finite-difference Hessian is not "
        "positive definite; the standard errors are the conditional ones (given the "
        "random-effect parameters), as lme4 falls back to"
    )
    return (V + V.T) / 2, "conditional"


def _inverse_blocks(model, system, t: int) -> np.ndarray:
    """The diagonal blocks of (LLᵀ)⁻¹ for term t: (L, k, k)."""
    A_inv = system["A_inv"]
    if system["AiB"] is None:
        return A_inv
    L1, L2 = model.levels
    k1, k2 = model.terms[0].k, model.terms[1].k
    S_inv = linalg.cho_solve(system["chol"], np.eye(L2 * k2), check_finite=False)
    if t == 1:
        return np.stack([S_inv[i * k2 : (i + 1) * k2, i * k2 : (i + 1) * k2] for i in range(L2)])
    # (LLᵀ)⁻¹₁₁ = A⁻¹ + A⁻¹B S⁻¹ BᵀA⁻¹, only its diagonal blocks.
    AiB = system["AiB"].reshape(L1, k1, L2 * k2)
    return A_inv + np.einsum("lim,mn,ljn->lij", AiB, S_inv, AiB)


def _term_fits(model, theta, u, system, n_terms):
    """SDs, correlations and the conditional modes b = Λu with their conditional SDs (the
    square root of the diagonal of Λ (LLᵀ)⁻¹ Λᵀ, lme4's condVar)."""
    fits = {}
    blocks = model.factor_blocks(theta)
    for t, (term, T) in enumerate(zip(model.terms, blocks, strict=False)):
        L, k = model.levels[t], term.k
        cov = T @ T.T
        sd = np.sqrt(np.diag(cov))
        corr = None
        if k == 2:
            corr = float(cov[0, 1] / (sd[0] * sd[1])) if sd.min() > 0 else float("nan")
        modes = u[model.offsets[t] : model.offsets[t + 1]].reshape(L, k) @ T.T
        inv = _inverse_blocks(model, system, t)
        var = np.einsum("ij,ljk,ik->li", T, inv, T)
        fits[model.order[t]] = TermFit(
            name=term.name,
            column_names=list(term.column_names),
            sd=[float(s) for s in sd],
            correlation=corr,
            levels=list(term.levels),
            modes=modes,
            mode_sd=np.sqrt(np.maximum(var, 0.0)),
        )
    return [fits[t] for t in range(n_terms)]
