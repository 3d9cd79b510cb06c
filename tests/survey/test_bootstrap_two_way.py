"""survey.statistics.bootstrap_two_way: participants and images resampled together."""

import numpy as np
import pytest

from survey.statistics import bootstrap_counts, bootstrap_two_way, two_way_draws


def _study(n_people=40, n_images=24, image_spread=0.0, person_spread=0.0, seed=0):
    """A crossed design: every participant judges every image (half real, half AI); the
    chance of a wrong answer depends on the image and the person by the given spreads
    (on the logit scale)."""
    rng = np.random.default_rng(seed)
    image_effect = rng.normal(0, image_spread, n_images) if image_spread else np.zeros(n_images)
    person_effect = rng.normal(0, person_spread, n_people) if person_spread else np.zeros(n_people)
    rows = []
    for p in range(n_people):
        for i in range(n_images):
            chance = 1 / (1 + np.exp(-(-0.3 + image_effect[i] + person_effect[p])))
            rows.append((f"p{p}", f"img{i}", i >= n_images // 2, bool(rng.random() < chance)))
    return [list(column) for column in zip(*rows, strict=True)]


def _width(result) -> float:
    interval = result.fooling_rate.interval
    return interval.high - interval.low


def test_the_same_seed_gives_the_same_intervals_and_another_seed_others():
    columns = _study(image_spread=1.0)
    first = bootstrap_two_way(*columns, n_boot=500, seed=3)
    assert first == bootstrap_two_way(*columns, n_boot=500, seed=3)
    assert first != bootstrap_two_way(*columns, n_boot=500, seed=4)
    assert first.n_participants == 40 and first.n_images == 24 and first.n_boot == 500


def test_without_image_differences_it_is_about_the_participant_bootstrap():
    people, images, is_ai, wrong = _study(n_people=60, person_spread=1.0, seed=1)
    two_way = bootstrap_two_way(people, images, is_ai, wrong, n_boot=3000, seed=0)
    cells = {}
    for p, ai, w in zip(people, is_ai, wrong, strict=True):
        row = cells.setdefault(p, [0, 0, 0, 0])
        # cells: real_real, real_ai, ai_real, ai_ai; a wrong answer to a real photograph is
        # "judged AI", to an AI image "judged Real".
        index = (2 if w else 3) if ai else (1 if w else 0)
        row[index] += 1
    by_people = bootstrap_counts(list(cells.values()), n_boot=3000, seed=0)
    assert two_way.fooling_rate.estimate == pytest.approx(by_people.fooling_rate.estimate)
    # The images add only their sampling noise (binomial, small with 60 people each).
    assert _width(two_way) == pytest.approx(_width(by_people), rel=0.35)


def test_strong_image_effects_widen_its_interval_beyond_the_participant_bootstrap():
    people, images, is_ai, wrong = _study(n_people=60, image_spread=1.5, seed=2)
    two_way = bootstrap_two_way(people, images, is_ai, wrong, n_boot=2000, seed=0)
    cells = {}
    for p, ai, w in zip(people, is_ai, wrong, strict=True):
        index = (2 if w else 3) if ai else (1 if w else 0)
        cells.setdefault(p, [0, 0, 0, 0])[index] += 1
    by_people = bootstrap_counts(list(cells.values()), n_boot=2000, seed=0)
    assert _width(two_way) > 2 * _width(by_people)
    # The interval still holds the estimate.
    interval = two_way.fooling_rate.interval
    assert interval.low < two_way.fooling_rate.estimate < interval.high


def _explicit(people, images, is_ai, wrong, n_boot, seed):
    """The scheme written out for one replicate at a time: list every judgement of each
    drawn participant about each drawn image (one copy per pair of draws) and pool them."""
    who = list(dict.fromkeys(people))
    real = list(dict.fromkeys(i for i, a in zip(images, is_ai, strict=True) if not a))
    ai = list(dict.fromkeys(i for i, a in zip(images, is_ai, strict=True) if a))
    answers = {(p, i): (a, w) for p, i, a, w in zip(people, images, is_ai, wrong, strict=True)}
    fooling, ajr = [], []
    for chunk_people, chunk_real, chunk_ai in two_way_draws(
        len(who), len(real), len(ai), n_boot, seed
    ):
        for drawn_people, drawn_real, drawn_ai in zip(
            chunk_people, chunk_real, chunk_ai, strict=True
        ):
            kept = []
            for p in drawn_people:
                for i in [real[k] for k in drawn_real] + [ai[k] for k in drawn_ai]:
                    if (who[p], i) in answers:
                        kept.append(answers[(who[p], i)])
            fooling.append(sum(w for _, w in kept) / len(kept) if kept else np.nan)
            ai_kept = [w for a, w in kept if a]
            ajr.append(sum(ai_kept) / len(ai_kept) if ai_kept else np.nan)
    return np.array(fooling), np.array(ajr)


def test_the_vectorised_code_agrees_with_an_explicit_loop_over_the_same_draws():
    """Compares the code with itself (the same random draws, written out): it checks the
    weighting by multiplicity, not the scheme's statistical worth."""
    rng = np.random.default_rng(7)
    # Not every participant judged every image (a real study's incomplete crossing).
    rows = [
        (f"p{p}", f"i{i}", i >= 4, bool(rng.random() < 0.4))
        for p in range(5)
        for i in range(8)
        if rng.random() < 0.7
    ]
    columns = [list(c) for c in zip(*rows, strict=True)]
    result = bootstrap_two_way(*columns, n_boot=300, seed=11, confidence=0.9)
    fooling, ajr = _explicit(*columns, n_boot=300, seed=11)
    for estimate, values in ((result.fooling_rate, fooling), (result.ai_judged_real_rate, ajr)):
        valid = values[np.isfinite(values)]
        assert estimate.n_valid == len(valid)
        low, high = np.percentile(valid, [5, 95])
        assert estimate.interval.low == pytest.approx(low, abs=1e-12)
        assert estimate.interval.high == pytest.approx(high, abs=1e-12)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (([], [], [], []), "no measured judgements"),
        ((["a"], ["x", "y"], [True], [False]), "same length"),
    ],
    ids=["no judgements", "columns of different lengths"],
)
def test_bad_input_is_refused_in_words(columns, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_two_way(*columns)


def test_one_participant_and_one_image_give_a_zero_width_interval():
    result = bootstrap_two_way(["p"], ["img"], [True], [True], n_boot=50)
    interval = result.fooling_rate.interval
    assert interval.low == interval.high == 1.0
