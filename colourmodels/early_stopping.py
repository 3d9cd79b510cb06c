"""Prechelt's PQ early-stopping criterion (method.md section 4).

For epoch e (1-based, counted by the calls to :meth:`EarlyStopping.update`), with validation
loss E_va and training loss E_tr:

* E_opt(e) = min_{t <= e} E_va(t)
* GL(e)    = 100 · (E_va(e) / E_opt(e) − 1)                               (generalisation loss)
* P_k(e)   = 1000 · (Σ_{e'=e−k+1..e} E_tr(e') / (k · min_{strip} E_tr) − 1)   (training progress)
* PQ(e)    = GL(e) / P_k(e); stop at the first e >= k with PQ(e) > μ.

The paper prints P_k without the "− 1"; then P_k >= 1000 and the criterion never fires, so
the "− 1" is used here. P_k is undefined before k epochs (no full strip): it and PQ are
recorded as ``None`` and the criterion cannot fire. Division by zero: P_k = 0 (a perfectly flat
strip) with GL > 0 gives PQ = +inf (fires: the validation loss got worse while training made
no progress at all); GL = 0 gives PQ = 0 whatever P_k is. Losses must be finite and
non-negative (both pix2pix losses are). Which losses are fed (the generator's total loss, or
the GAN plain loss, the variant the paper recommends trying) is the trainer's job; ``monitor``
is stored for it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["EarlyStopping", "EarlyStoppingConfig", "PAPER_SETTINGS", "MONITORS"]

MONITORS = ("total", "gan")


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """Strip length ``k``, threshold ``mu`` and which loss to monitor ("total" or "gan")."""

    k: int
    mu: float
    monitor: str = "total"

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be a positive integer, got {self.k!r}")
        if not (isinstance(self.mu, int | float) and math.isfinite(self.mu) and self.mu >= 0):
            raise ValueError(f"mu must be a finite non-negative number, got {self.mu!r}")
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {MONITORS}, got {self.monitor!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EarlyStoppingConfig:
        return cls(k=int(d["k"]), mu=float(d["mu"]), monitor=str(d.get("monitor", "total")))


#: The (k, μ) settings of the paper: the baseline and the six per-category generators.
PAPER_SETTINGS: dict[str, EarlyStoppingConfig] = {
    "baseline": EarlyStoppingConfig(10, 0.75),
    "scenery": EarlyStoppingConfig(10, 0.9),
    "people": EarlyStoppingConfig(10, 0.9),
    "city": EarlyStoppingConfig(10, 1.1),
    "animals": EarlyStoppingConfig(20, 1.15),
    "nature": EarlyStoppingConfig(20, 1.15),
    "others": EarlyStoppingConfig(20, 1.15),
}


def _check_loss(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and non-negative, got {value}")
    return value


def _ratio_minus_one(num: float, den: float) -> float:
    """num/den − 1 for non-negative num >= den, with 0/0 → 0 and x/0 → +inf."""
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den - 1.0


class EarlyStopping:
    """Stateful PQ criterion. ``update(epoch, train_loss, val_loss)`` returns True to stop.

    Attributes: ``best_epoch`` / ``best_val`` (the epoch with E_opt; the first one on ties),
    ``improved`` (whether the last update set a new E_opt), ``stopped_epoch``, and ``history``,
    a list of ``(GL, P_k, PQ)`` per update (P_k and PQ ``None`` before k epochs).
    """

    def __init__(self, k: int, mu: float, monitor: str = "total") -> None:
        self.config = EarlyStoppingConfig(k, mu, monitor)
        self.train_losses: list[float] = []
        self.val_losses: list[float] = []
        self.epochs: list[int] = []
        self.history: list[tuple[float, float | None, float | None]] = []
        self.best_epoch: int | None = None
        self.best_val: float = math.inf
        self.improved = False
        self.stopped_epoch: int | None = None

    @classmethod
    def from_config(cls, config: EarlyStoppingConfig) -> EarlyStopping:
        return cls(config.k, config.mu, config.monitor)

    @property
    def k(self) -> int:
        return self.config.k

    @property
    def mu(self) -> float:
        return self.config.mu

    @property
    def monitor(self) -> str:
        return self.config.monitor

    def update(self, epoch: int, train_loss: float, val_loss: float) -> bool:
        """Record one epoch's monitored losses; True means "stop now" (PQ > μ, epoch >= k)."""
        tr = _check_loss("train_loss", train_loss)
        va = _check_loss("val_loss", val_loss)
        self.epochs.append(int(epoch))
        self.train_losses.append(tr)
        self.val_losses.append(va)

        self.improved = va < self.best_val
        if self.improved:
            self.best_val = va
            self.best_epoch = int(epoch)

        gl = 100.0 * _ratio_minus_one(va, self.best_val)
        pk: float | None = None
        pq: float | None = None
        stop = False
        if len(self.train_losses) >= self.k:
            strip = self.train_losses[-self.k :]
            pk = 1000.0 * _ratio_minus_one(sum(strip), self.k * min(strip))
            if gl == 0.0:
                pq = 0.0
            elif pk == 0.0:
                pq = math.inf
            else:
                pq = gl / pk
            stop = pq > self.mu
        self.history.append((gl, pk, pq))
        if stop and self.stopped_epoch is None:
            self.stopped_epoch = int(epoch)
        return stop

    @property
    def last(self) -> tuple[float, float | None, float | None] | None:
        """(GL, P_k, PQ) of the last update, or None before the first."""
        return self.history[-1] if self.history else None

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "epochs": list(self.epochs),
            "train_losses": list(self.train_losses),
            "val_losses": list(self.val_losses),
            "history": [list(h) for h in self.history],
            "best_epoch": self.best_epoch,
            "best_val": self.best_val,
            "improved": self.improved,
            "stopped_epoch": self.stopped_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = EarlyStoppingConfig.from_dict(state["config"])
        if saved != self.config:
            raise ValueError(
                f"early-stopping state was saved with {saved}, this instance has {self.config}"
            )
        self.epochs = [int(e) for e in state["epochs"]]
        self.train_losses = [float(x) for x in state["train_losses"]]
        self.val_losses = [float(x) for x in state["val_losses"]]
        self.history = [tuple(h) for h in state["history"]]  # type: ignore[misc]
        self.best_epoch = state["best_epoch"]
        self.best_val = float(state["best_val"])
        self.improved = bool(state["improved"])
        self.stopped_epoch = state["stopped_epoch"]
