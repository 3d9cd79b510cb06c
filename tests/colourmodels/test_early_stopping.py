"""Prechelt's PQ criterion on hand-computed sequences."""

from __future__ import annotations

import math

import pytest

from colourmodels.early_stopping import PAPER_SETTINGS, EarlyStopping, EarlyStoppingConfig

# k = 3. Hand computation (E_opt is the running minimum of the validation loss):
#  e  E_tr  E_va  E_opt  GL = 100(E_va/E_opt - 1)  P_3 = 1000(sum(strip)/(3 min(strip)) - 1)
#  1  10.0  5.0   5.0    0                          -  (no full strip)
#  2   8.0  4.0   4.0    0                          -
#  3   7.0  4.4   4.0    10                         1000(25/21 - 1)     = 4000/21  = 190.476
#  4   6.9  4.2   4.0    5                          1000(21.9/20.7 - 1) = 1200/20.7 = 57.971
#  5   6.9  4.8   4.0    20                         1000(20.8/20.7 - 1) = 100/20.7  = 4.831
# PQ = GL/P_3: e3 0.0525, e4 0.08625, e5 4.14 -> with mu = 0.5 the criterion fires at e5.
TRAIN = [10.0, 8.0, 7.0, 6.9, 6.9]
VAL = [5.0, 4.0, 4.4, 4.2, 4.8]
GL = [0.0, 0.0, 10.0, 5.0, 20.0]
PK = [None, None, 4000 / 21, 1200 / 20.7, 100 / 20.7]


def _run(es: EarlyStopping, train=TRAIN, val=VAL) -> list[bool]:
    return [es.update(e, t, v) for e, (t, v) in enumerate(zip(train, val), start=1)]


def test_hand_computed_sequence():
    es = EarlyStopping(k=3, mu=0.5)
    stops = _run(es)
    assert stops == [False, False, False, False, True]
    assert es.stopped_epoch == 5
    for (gl, pk, pq), gl_exp, pk_exp in zip(es.history, GL, PK):
        assert gl == pytest.approx(gl_exp, abs=1e-9)
        if pk_exp is None:
            assert pk is None and pq is None
        else:
            assert pk == pytest.approx(pk_exp, rel=1e-12)
            assert pq == pytest.approx(gl_exp / pk_exp, rel=1e-12)
    assert es.history[4][2] == pytest.approx(20 / (100 / 20.7))  # 4.14
    assert es.best_epoch == 2 and es.best_val == 4.0


def test_minus_one_is_in_the_formula():
    # Without the "- 1" P_3(5) would be 1000 * 20.8/20.7 = 1004.8 and PQ = 0.0199 < 0.5:
    # the criterion would not fire at epoch 5 (nor ever: P_k >= 1000 always).
    es = EarlyStopping(k=3, mu=0.5)
    _run(es)
    assert es.history[4][1] < 10
    assert es.stopped_epoch == 5
    # And with mu = 4 (between 0.0199 and 4.14) it still fires; mu = 4.2 it does not.
    assert _run(EarlyStopping(k=3, mu=4.0))[-1] is True
    assert _run(EarlyStopping(k=3, mu=4.2))[-1] is False


def test_never_fires_before_k_epochs():
    es = EarlyStopping(k=3, mu=0.0)
    # Validation loss explodes at epoch 2 (GL = 9900) but the strip is not full yet.
    assert es.update(1, 1.0, 1.0) is False
    assert es.update(2, 0.5, 100.0) is False
    assert es.history[1] == (pytest.approx(9900.0), None, None)
    assert es.update(3, 0.4, 100.0) is True  # first epoch where it may fire
    es1 = EarlyStopping(k=1, mu=0.0)
    # k = 1: P_1 = 1000(E/E - 1) = 0 always; GL > 0 -> PQ = +inf.
    assert es1.update(1, 2.0, 3.0) is False  # GL = 0 at the first epoch
    assert es1.update(2, 2.0, 3.5) is True
    assert es1.history[1][1] == 0.0 and es1.history[1][2] == math.inf


def test_flat_training_strip():
    es = EarlyStopping(k=2, mu=1000.0)
    es.update(1, 1.0, 2.0)
    assert es.update(2, 1.0, 2.0) is False  # GL = 0, P_k = 0: PQ = 0
    assert es.history[1] == (0.0, 0.0, 0.0)
    assert es.update(3, 1.0, 2.2) is True  # GL = 10, P_k = 0: PQ = +inf
    assert es.history[2][2] == math.inf


def test_threshold_is_strict():
    # e2: GL = 100(1.25/1 - 1) = 25, P_2 = 1000((2+1)/(2*1) - 1) = 500, PQ = 0.05 (all exact
    # in binary floating point).
    es = EarlyStopping(k=2, mu=0.05)
    es.update(1, 2.0, 1.0)
    assert es.update(2, 1.0, 1.25) is False
    assert es.history[1] == (25.0, 500.0, 0.05)
    es = EarlyStopping(k=2, mu=0.0499)
    es.update(1, 2.0, 1.0)
    assert es.update(2, 1.0, 1.25) is True


def test_best_epoch_tracking_and_improved_flag():
    es = EarlyStopping(k=10, mu=1.0)
    vals = [3.0, 2.0, 2.5, 2.0, 1.5, 1.7]
    improved = []
    for e, v in enumerate(vals, start=1):
        es.update(e, 1.0 / e, v)
        improved.append(es.improved)
    assert improved == [True, True, False, False, True, False]  # ties keep the earlier epoch
    assert es.best_epoch == 5 and es.best_val == 1.5
    assert es.history[5][0] == pytest.approx(100 * (1.7 / 1.5 - 1))


def test_state_dict_resume_gives_same_decisions():
    full = EarlyStopping(k=3, mu=0.5)
    expected = _run(full)
    part = EarlyStopping(k=3, mu=0.5)
    got = [part.update(e, TRAIN[e - 1], VAL[e - 1]) for e in (1, 2, 3)]
    resumed = EarlyStopping(k=3, mu=0.5, monitor="total")
    resumed.load_state_dict(part.state_dict())
    got += [resumed.update(e, TRAIN[e - 1], VAL[e - 1]) for e in (4, 5)]
    assert got == expected
    assert resumed.history == full.history
    assert resumed.state_dict() == full.state_dict()
    with pytest.raises(ValueError, match="saved with"):
        EarlyStopping(k=4, mu=0.5).load_state_dict(part.state_dict())


def test_monitor_and_validation():
    assert EarlyStopping(10, 0.75, monitor="gan").monitor == "gan"
    with pytest.raises(ValueError):
        EarlyStopping(10, 0.75, monitor="l1")
    with pytest.raises(ValueError):
        EarlyStopping(0, 0.75)
    with pytest.raises(ValueError):
        EarlyStopping(3, -1.0)
    es = EarlyStopping(3, 0.5)
    with pytest.raises(ValueError):
        es.update(1, float("nan"), 1.0)
    with pytest.raises(ValueError):
        es.update(1, 1.0, -1.0)


def test_paper_settings_and_config():
    expected = {
        "baseline": (10, 0.75),
        "scenery": (10, 0.9),
        "people": (10, 0.9),
        "city": (10, 1.1),
        "animals": (20, 1.15),
        "nature": (20, 1.15),
        "others": (20, 1.15),
    }
    assert {k: (c.k, c.mu) for k, c in PAPER_SETTINGS.items()} == expected
    assert all(c.monitor == "total" for c in PAPER_SETTINGS.values())
    cfg = EarlyStoppingConfig(20, 1.15, "gan")
    assert EarlyStoppingConfig.from_dict(cfg.to_dict()) == cfg
    es = EarlyStopping.from_config(cfg)
    assert (es.k, es.mu, es.monitor) == (20, 1.15, "gan")
