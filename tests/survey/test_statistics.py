"""survey.statistics: the paper's tables reproduced, agreement with SciPy, worked examples."""

import json
import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy import stats

from survey.statistics import (
    ContingencyTable,
    Judgement,
    accuracy,
    ai_judged_real_rate,
    analyse_judgements,
    analyse_table,
    binomial_test,
    bootstrap_difference,
    bootstrap_over_participants,
    chi_square,
    compare_conditions,
    difference_of_proportions,
    dumps_json,
    exact_interval,
    fisher_exact_p,
    fooling_rate,
    format_latex,
    format_latex_conditions,
    format_p,
    format_text,
    long_format,
    measured,
    newcombe_interval,
    pearson_chi2,
    per_image_rates,
    real_judged_ai_rate,
    sdt_by_participant,
    sdt_from_counts,
    summarise_sdt,
    table_from_judgements,
    tables_by_condition,
    to_jsonable,
    wilson_interval,
    yates_chi2,
)

# method.md §7: (table, cells, Pearson chi-square without continuity correction, fooling rate %)
PAPER_TABLES = [
    (5, (715, 533, 596, 652), 22.7519, 45.23),
    (7, (725, 523, 598, 650), 25.9414, 44.91),
    (8, (694, 554, 579, 669), 21.2024, 45.39),
    (9, (740, 508, 630, 618), 19.5781, 45.59),
]


# ---------------------------------------------------------------------------- the paper


@pytest.mark.parametrize(("number", "cells", "chi2", "fooling"), PAPER_TABLES)
def test_paper_tables_are_reproduced(number, cells, chi2, fooling):
    table = ContingencyTable(*cells)
    result = analyse_table(table)
    assert round(result["chi2_pearson"], 4) == chi2
    assert round(100 * result["fooling_rate"], 2) == fooling
    assert result["n"] == 2496 and table.n_real == table.n_ai == 1248
    assert result["dof"] == 1
    scipy_result = stats.chi2_contingency(table.as_array(), correction=False)
    assert result["chi2_pearson"] == pytest.approx(scipy_result.statistic, rel=1e-12)
    assert result["p_pearson"] == pytest.approx(scipy_result.pvalue, rel=1e-9)
    assert result["p_pearson"] < 1e-5  # every model is told apart from real photographs
    assert result["chi2_yates"] < result["chi2_pearson"]


def test_paper_table_5_rates_and_intervals():
    table = ContingencyTable(715, 533, 596, 652)
    assert fooling_rate(table) == (533 + 596) / 2496
    assert ai_judged_real_rate(table) == 596 / 1248
    assert real_judged_ai_rate(table) == 533 / 1248
    assert accuracy(table) == pytest.approx(1 - fooling_rate(table))
    result = analyse_table(table)
    low, high = result["intervals"]["fooling_rate"]["wilson"]
    assert low < result["fooling_rate"] < high < 0.5  # below chance, and confidently so
    assert result["binomial_tests"]["fooling_rate"]["p_value"] < 1e-5
    # P(judged Real | AI) = 47.76 % is not distinguishable from 50 %.
    assert result["binomial_tests"]["ai_judged_real_rate"]["p_value"] > 0.05


# ---------------------------------------------------------------------------- the table


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ((-1, 2, 3, 4), "real_real: a count must be a non-negative integer"),
        ((1, 2.0, 3, 4), "real_ai: a count must be a non-negative integer"),
        ((1, 2, "3", 4), "ai_real: a count must be a non-negative integer"),
        ((1, 2, 3, True), "ai_ai: a count must be a non-negative integer"),
        ((0, 0, 3, 4), "actual-Real row is empty"),
        ((1, 2, 0, 0), "actual-AI row is empty"),
    ],
)
def test_bad_tables_are_refused(cells, message):
    with pytest.raises(ValueError, match=message):
        ContingencyTable(*cells)


def test_table_accessors_and_numpy_integers():
    table = ContingencyTable(*np.array([1, 2, 3, 4], dtype=np.int64))
    assert type(table.real_real) is int
    assert table.cells == {"real_real": 1, "real_ai": 2, "ai_real": 3, "ai_ai": 4}
    assert (table.n, table.n_real, table.n_ai) == (10, 3, 7)
    assert (table.judged_real, table.judged_ai, table.errors) == (4, 6, 5)
    assert ContingencyTable.from_matrix([[1, 2], [3, 4]]) == table
    with pytest.raises(ValueError, match="2×2"):
        ContingencyTable.from_matrix([[1, 2, 3], [3, 4, 5]])
    with pytest.raises(AttributeError):
        table.real_real = 5  # frozen


# ---------------------------------------------------------------------------- chi-square, Fisher


def test_agreement_with_scipy_on_random_tables():
    rng = np.random.default_rng(20240613)
    checked = undefined = 0
    for i in range(400):
        high = [3, 12, 60, 1500][i % 4]  # small tables (zeros, Yates clamping) up to paper size
        cells = rng.integers(0, high + 1, size=4)
        if cells[0] + cells[1] == 0 or cells[2] + cells[3] == 0:
            continue
        table = ContingencyTable(*cells)
        array = table.as_array()
        fisher = stats.fisher_exact(array, alternative="two-sided").pvalue
        assert fisher_exact_p(table) == pytest.approx(fisher, rel=1e-9, abs=1e-15)
        for correction in (False, True):
            ours = chi_square(table, correction=correction)
            try:
                theirs = stats.chi2_contingency(array, correction=correction)
            except ValueError:  # a zero expected count: SciPy refuses, we answer NaN
                assert math.isnan(ours.statistic) and math.isnan(ours.p_value)
                assert "column is empty" in ours.reason
                undefined += 1
                continue
            assert ours.reason is None and ours.dof == theirs.dof == 1
            assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-9, abs=1e-12)
            assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-15)
            checked += 1
    assert checked > 600 and undefined > 0


def test_empty_column_gives_nan_with_a_reason_never_an_error():
    table = ContingencyTable(5, 0, 3, 0)  # everybody answered "Real"
    for result in (pearson_chi2(table), yates_chi2(table)):
        assert math.isnan(result.statistic) and math.isnan(result.p_value)
        assert not result.defined
        assert "judged-AI column is empty" in result.reason
    assert "judged-Real column is empty" in pearson_chi2(ContingencyTable(0, 4, 0, 6)).reason
    assert fisher_exact_p(table) == 1.0
    result = analyse_table(table)
    assert math.isnan(result["chi2_pearson"]) and result["chi2_reason"]
    dumped = json.loads(dumps_json(result))
    assert dumped["chi2_pearson"] is None and dumped["p_yates"] is None
    assert "n/a" in format_text(result) and "---" in format_latex(result)


def test_chi_square_special_cases():
    perfect = ContingencyTable(12, 0, 0, 12)  # perfectly told apart: chi-square = n
    assert pearson_chi2(perfect).statistic == 24
    independent = ContingencyTable(10, 20, 5, 10)  # ad = bc
    assert pearson_chi2(independent).statistic == 0 and pearson_chi2(independent).p_value == 1
    assert yates_chi2(independent).statistic == 0
    tiny = ContingencyTable(3, 4, 4, 4)  # |O - E| < 0.5 in every cell: Yates clamps to 0
    assert yates_chi2(tiny).statistic == 0 == stats.chi2_contingency(tiny.as_array()).statistic


# ---------------------------------------------------------------------------- intervals, tests


def test_wilson_interval_by_hand():
    # 3 of 10, z = 1.959964: z^2 = 3.841459, denominator 1 + z^2/n = 1.384146,
    # centre (0.3 + z^2/20) / 1.384146 = 0.355507,
    # half-width z / 1.384146 * sqrt(0.3 * 0.7 / 10 + z^2 / 400) = 0.247715.
    interval = wilson_interval(3, 10)
    assert interval.low == pytest.approx(0.355507 - 0.247715, abs=1e-6)
    assert interval.high == pytest.approx(0.355507 + 0.247715, abs=1e-6)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.1078, 0.6032)
    assert interval.method == "wilson" and interval.level == 0.95


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", method 3.
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_published_examples(k, n, low, high):
    interval = wilson_interval(k, n)
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)


def test_intervals_agree_with_scipy_and_widen_with_confidence():
    rng = np.random.default_rng(7)
    for _ in range(100):
        n = int(rng.integers(1, 3000))
        k = int(rng.integers(0, n + 1))
        for level in (0.9, 0.95, 0.99):
            test = stats.binomtest(k, n)
            wilson = test.proportion_ci(confidence_level=level, method="wilson")
            exact = test.proportion_ci(confidence_level=level, method="exact")
            ours_w, ours_e = wilson_interval(k, n, level), exact_interval(k, n, level)
            assert ours_w.as_list() == pytest.approx([wilson.low, wilson.high], abs=1e-12)
            assert ours_e.as_list() == pytest.approx([exact.low, exact.high], abs=1e-9)
    narrow, wide = wilson_interval(40, 100, 0.9), wilson_interval(40, 100, 0.99)
    assert wide.low < narrow.low < 0.4 < narrow.high < wide.high
    assert exact_interval(0, 10).low == 0.0 and exact_interval(10, 10).high == 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [((11, 10), "successes must lie"), ((0, 0), "n > 0"), ((1.0, 10), "must be an integer")],
)
def test_bad_proportions_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        wilson_interval(*args)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 10, confidence=95)


def test_binomial_test_matches_scipy():
    result = binomial_test(596, 1248)
    assert result.p_value == pytest.approx(stats.binomtest(596, 1248, 0.5).pvalue, rel=1e-12)
    assert (result.successes, result.n, result.null) == (596, 1248, 0.5)


# ---------------------------------------------------------------------------- comparisons


@pytest.mark.parametrize(
    ("counts", "difference", "low", "high"),
    # Newcombe (1998), "Interval estimation for the difference between independent
    # proportions", Table II, method 10 (hybrid score, no continuity correction).
    [
        ((56, 70, 48, 80), 0.2000, 0.0524, 0.3339),
        ((9, 10, 3, 10), 0.6000, 0.1705, 0.8090),
        ((5, 56, 0, 29), 0.0893, -0.0381, 0.1926),
    ],
)
def test_newcombe_interval_published_examples(counts, difference, low, high):
    result = difference_of_proportions(*counts)
    assert round(result.difference, 4) == difference
    assert (round(result.interval.low, 4), round(result.interval.high, 4)) == (low, high)
    assert newcombe_interval(*counts) == result.interval


def test_z_test_is_the_pearson_chi_square_of_successes_and_failures():
    result = difference_of_proportions(56, 70, 48, 80)
    chi = stats.chi2_contingency([[56, 14], [48, 32]], correction=False)
    assert result.z**2 == pytest.approx(chi.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(chi.pvalue, rel=1e-9)
    degenerate = difference_of_proportions(0, 10, 0, 20)
    assert math.isnan(degenerate.p_value) and "pooled proportion" in degenerate.reason
    assert degenerate.interval.as_list() == pytest.approx([-0.1611, 0.2775], abs=1e-4)


def test_compare_conditions_of_the_paper():
    ensemble_yuv = ContingencyTable(715, 533, 596, 652)
    baseline_yuv = ContingencyTable(740, 508, 630, 618)
    comparison = compare_conditions(ensemble_yuv, baseline_yuv)
    fooling = comparison.fooling_rate
    assert fooling.difference == pytest.approx((1129 - 1138) / 2496)
    assert fooling.interval.contains(fooling.difference) and fooling.interval.contains(0)
    assert fooling.p_value > 0.05  # the models' fooling rates are not told apart
    ajr = comparison.ai_judged_real_rate
    assert (ajr.successes_a, ajr.n_a, ajr.successes_b, ajr.n_b) == (596, 1248, 630, 1248)


# ---------------------------------------------------------------------------- judgements


def _study(seed=0, participants=20, conditions=("ensemble_yuv", "baseline_yuv")):
    """A synthetic study: every participant judges 12 real and 12 AI images per condition
    (AI images judged real 45 % of the time, real ones judged AI 40 %), plus one practice
    and one attention trial per condition."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(participants):
        for condition in conditions:
            for i in range(24):
                truth = "real" if i < 12 else "ai"
                wrong = rng.random() < (0.40 if truth == "real" else 0.45)
                answer = {"real": "ai", "ai": "real"}[truth] if wrong else truth
                rows.append(
                    Judgement(
                        participant=f"p{p}",
                        image=f"{condition}-{truth}-{i % 12}",
                        condition=condition,
                        truth=truth,
                        answer=answer,
                        rt_ms=float(rng.integers(400, 4000)),
                        position=i,
                    )
                )
            rows.append(Judgement(f"p{p}", "practice", condition, "ai", "ai", practice=True))
            rows.append(Judgement(f"p{p}", "check", condition, "real", "ai", attention=True))
    return rows


def test_judgement_validation():
    row = Judgement("p1", "img", "c", "AI", " Real ")
    assert (row.truth, row.answer, row.fooled, row.cell) == ("ai", "real", True, "ai_real")
    with pytest.raises(ValueError, match="truth must be 'real' or 'ai'"):
        Judgement("p1", "img", "c", "fake", "real")
    with pytest.raises(ValueError, match="answer must be"):
        Judgement("p1", "img", "c", "real", None)
    with pytest.raises(ValueError, match="rt_ms"):
        Judgement("p1", "img", "c", "real", "real", rt_ms=-3)


def test_tables_by_condition_exclude_practice_and_attention():
    rows = _study(participants=5)
    assert len(measured(rows)) == 5 * 2 * 24 and len(rows) == 5 * 2 * 26
    tables = tables_by_condition(rows)
    assert list(tables) == ["ensemble_yuv", "baseline_yuv"]
    for condition, table in tables.items():
        assert table.n_real == table.n_ai == 5 * 12
        expected = [0, 0, 0, 0]
        for row in measured(rows):
            if row.condition == condition:
                expected[["real_real", "real_ai", "ai_real", "ai_ai"].index(row.cell)] += 1
        assert list(table.cells.values()) == expected
        assert table_from_judgements(rows, condition) == table
    with pytest.raises(ValueError, match="span 2 conditions"):
        table_from_judgements(rows)
    only_real = [Judgement("p", "i", "bad", "real", "real"), *rows]
    with pytest.raises(ValueError, match="condition 'bad': the actual-AI row is empty"):
        tables_by_condition(only_real)


def test_long_format_keeps_every_row_flagged():
    rows = _study(participants=2)
    records = long_format(rows)
    assert len(records) == len(rows)
    first = records[0]
    assert set(first) >= {"participant", "image", "condition", "truth", "answer", "rt_ms"}
    assert set(first) >= {"position", "practice", "attention", "is_ai", "judged_ai", "correct"}
    assert sum(r["practice"] for r in records) == sum(r["attention"] for r in records) == 4
    assert all(r["correct"] == int(r["truth"] == r["answer"]) for r in records)


# ---------------------------------------------------------------------------- d' and c


def test_d_prime_by_hand():
    # 10 of 12 AI images judged AI, 3 of 12 real photographs judged AI.
    # H = 10.5 / 13 = 0.807692, F = 3.5 / 13 = 0.269231; z(H) = 0.869424, z(F) = -0.615141.
    sdt = sdt_from_counts(hits=10, n_signal=12, false_alarms=3, n_noise=12)
    assert sdt.hit_rate == pytest.approx(10.5 / 13) and sdt.false_alarm_rate == 3.5 / 13
    z = NormalDist().inv_cdf
    assert sdt.d_prime == pytest.approx(z(10.5 / 13) - z(3.5 / 13), abs=1e-12)
    assert sdt.d_prime == pytest.approx(0.869424 + 0.615141, abs=1e-6)
    assert sdt.criterion == pytest.approx(-(0.869424 - 0.615141) / 2, abs=1e-6)
    assert (round(sdt.d_prime, 4), round(sdt.criterion, 4)) == (1.4846, -0.1271)


def test_d_prime_is_finite_at_the_extremes_and_zero_at_chance():
    perfect = sdt_from_counts(12, 12, 0, 12)
    assert math.isfinite(perfect.d_prime) and perfect.d_prime > 3 and perfect.criterion == 0
    assert sdt_from_counts(6, 12, 6, 12).d_prime == 0
    says_real = sdt_from_counts(2, 12, 1, 12)  # rarely answers "AI": conservative, c > 0
    assert says_real.criterion > 0


def test_sdt_by_participant_and_summary():
    rows = _study(participants=15)
    per, skipped = sdt_by_participant(rows, "ensemble_yuv")
    assert len(per) == 15 and skipped == []
    p0 = [r for r in measured(rows) if r.participant == "p0" and r.condition == "ensemble_yuv"]
    hits = sum(r.truth == "ai" and r.answer == "ai" for r in p0)
    false_alarms = sum(r.truth == "real" and r.answer == "ai" for r in p0)
    assert per["p0"] == sdt_from_counts(hits, 12, false_alarms, 12)
    summary = summarise_sdt(per)
    d = np.array([s.d_prime for s in per.values()])
    half = stats.t.ppf(0.975, 14) * d.std(ddof=1) / math.sqrt(15)
    assert summary.mean_d_prime == pytest.approx(d.mean())
    assert summary.d_prime_interval.as_list() == pytest.approx([d.mean() - half, d.mean() + half])
    assert summary.d_prime_t_test_p == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    assert summary.n_participants == 15


def test_sdt_skips_participants_without_both_kinds_of_image():
    rows = [Judgement("a", "i1", "c", "real", "real"), Judgement("a", "i2", "c", "ai", "ai")]
    rows.append(Judgement("b", "i1", "c", "real", "ai"))  # never saw an AI image
    per, skipped = sdt_by_participant(rows)
    assert list(per) == ["a"] and skipped == ["b"]
    summary = summarise_sdt(per, skipped=skipped)
    assert math.isnan(summary.d_prime_interval.low)
    assert "at least 2" in summary.d_prime_interval.reason
    assert summary.skipped == ["b"]


# ---------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_determined_by_the_seed():
    rows = _study(participants=30)
    first = bootstrap_over_participants(rows, "ensemble_yuv", n_boot=500, seed=11)
    again = bootstrap_over_participants(rows, "ensemble_yuv", n_boot=500, seed=11)
    other = bootstrap_over_participants(rows, "ensemble_yuv", n_boot=500, seed=12)
    assert first == again and first != other
    table = table_from_judgements(rows, "ensemble_yuv")
    assert first.fooling_rate.estimate == fooling_rate(table)
    assert first.ai_judged_real_rate.estimate == ai_judged_real_rate(table)
    assert first.fooling_rate.interval.contains(fooling_rate(table))
    assert (first.n_boot, first.seed, first.n_participants) == (500, 11, 30)
    assert first.fooling_rate.n_valid == 500


def test_bootstrap_matches_a_plain_resampling_loop():
    rows = _study(participants=12)
    result = bootstrap_over_participants(rows, "baseline_yuv", n_boot=300, seed=5)
    selected = [r for r in measured(rows) if r.condition == "baseline_yuv"]
    participants = list(dict.fromkeys(r.participant for r in selected))
    picks = np.random.default_rng(5).integers(0, len(participants), size=(300, len(participants)))
    rates = []
    for replicate in picks:
        chosen = [participants[i] for i in replicate]
        wrong = sum(sum(r.fooled for r in selected if r.participant == p) for p in chosen)
        total = sum(sum(1 for r in selected if r.participant == p) for p in chosen)
        rates.append(wrong / total)
    expected = np.percentile(rates, [2.5, 97.5])
    assert result.fooling_rate.interval.as_list() == pytest.approx(list(expected), abs=1e-12)


def test_bootstrap_difference_and_wider_intervals_at_higher_confidence():
    rows = _study(participants=25)
    diff = bootstrap_difference(rows, "ensemble_yuv", "baseline_yuv", n_boot=400, seed=3)
    tables = tables_by_condition(rows)
    expected = fooling_rate(tables["ensemble_yuv"]) - fooling_rate(tables["baseline_yuv"])
    assert diff["fooling_rate"].estimate == pytest.approx(expected)
    assert diff["fooling_rate"].interval.low < diff["fooling_rate"].interval.high
    assert diff == bootstrap_difference(rows, "ensemble_yuv", "baseline_yuv", n_boot=400, seed=3)
    narrow = bootstrap_over_participants(rows, "ensemble_yuv", n_boot=400, confidence=0.8)
    wide = bootstrap_over_participants(rows, "ensemble_yuv", n_boot=400, confidence=0.99)
    assert wide.fooling_rate.interval.low < narrow.fooling_rate.interval.low
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_over_participants(rows, "ensemble_yuv", n_boot=0)
    with pytest.raises(ValueError, match="no measured judgements"):
        bootstrap_difference(rows, "ensemble_yuv", "missing")


# ---------------------------------------------------------------------------- per image


def test_per_image_rates():
    rows = [
        Judgement("a", "x", "c", "ai", "real"),
        Judgement("b", "x", "c", "ai", "ai"),
        Judgement("c", "x", "c", "ai", "real"),
        Judgement("a", "y", "c", "real", "real"),
        Judgement("b", "y", "c", "real", "real", practice=True),
    ]
    rates = per_image_rates(rows)
    assert list(rates) == ["x", "y"]
    assert (rates["x"].n, rates["x"].fooled, rates["x"].truth) == (3, 2, "ai")
    assert rates["x"].rate == pytest.approx(2 / 3)
    assert rates["x"].interval == wilson_interval(2, 3)
    assert (rates["y"].n, rates["y"].rate) == (1, 0.0)  # the practice trial is not counted
    with pytest.raises(ValueError, match="both as real and as AI"):
        per_image_rates([*rows, Judgement("d", "x", "c", "real", "real")])


# ---------------------------------------------------------------------------- output


def test_analyse_table_keys_and_json():
    result = analyse_table(ContingencyTable(725, 523, 598, 650))
    required = {"n", "chi2_pearson", "p_pearson", "chi2_yates", "p_yates", "fisher_p"}
    required |= {"fooling_rate", "ai_judged_real_rate", "intervals", "cells"}
    assert required <= set(result)
    assert result["cells"] == {"real_real": 725, "real_ai": 523, "ai_real": 598, "ai_ai": 650}
    loaded = json.loads(dumps_json(result))
    assert loaded["chi2_pearson"] == pytest.approx(25.9414, abs=5e-5)
    assert loaded["intervals"]["ai_judged_real_rate"]["exact"][0] < 598 / 1248
    assert to_jsonable({"x": float("inf"), "y": np.float64(1.5), "z": (1, np.int64(2))}) == {
        "x": None,
        "y": 1.5,
        "z": [1, 2],
    }


def test_text_and_latex_layouts():
    result = analyse_table(ContingencyTable(740, 508, 630, 618))
    text = format_text(result)
    assert "19.5781" in text and "45.59 %" in text and "no continuity correction" in text
    assert "P(judged Real | AI)" in text and "50.48 %" in text
    latex = format_latex(result, caption="Baseline YUV", label="tab:baseline-yuv")
    for needle in ("\\toprule", "\\midrule", "\\bottomrule", "\\caption{Baseline YUV}"):
        assert needle in latex
    assert "Actual Real & 740 & 508 & 1248 \\\\" in latex
    assert "Actual AI & 630 & 618 & 1248 \\\\" in latex
    assert "Judged Real & Judged AI & Total" in latex
    assert "no continuity correction" in latex and "19.5781" in latex
    assert "45.59\\,\\%" in latex and "$9.66 \\times 10^{-6}$" in latex


def test_multi_condition_latex():
    results = {
        f"{name}_{space}": analyse_table(ContingencyTable(*cells))
        for (_, cells, _, _), (name, space) in zip(
            PAPER_TABLES,
            [("ensemble", "YUV"), ("ensemble", "LAB"), ("baseline", "LAB"), ("baseline", "YUV")],
        )
    }
    latex = format_latex_conditions(results, caption="All models")
    assert latex.count("\\\\") == 2 + 4
    assert "ensemble\\_YUV & 715 & 533 & 596 & 652 & 22.7519 &" in latex
    assert "baseline\\_LAB & 694 & 554 & 579 & 669 & 21.2024 &" in latex
    assert "\\cmidrule" in latex and "\\toprule" in latex and "45.23\\,\\%" in latex


def test_format_p():
    assert format_p(0.1195) == "0.1195"
    assert format_p(1.843e-6) == "1.84e-6"
    assert format_p(1.843e-6, latex=True) == "$1.84 \\times 10^{-6}$"
    assert format_p(float("nan")) == "n/a" and format_p(None, latex=True) == "---"


def test_analyse_judgements_end_to_end():
    rows = _study(participants=10, conditions=("a", "b", "c"))
    result = analyse_judgements(rows, n_boot=200, seed=1)
    assert list(result["conditions"]) == ["a", "b", "c"]
    assert [(c["a"], c["b"]) for c in result["comparisons"]] == [("a", "b"), ("a", "c"), ("b", "c")]
    first = result["conditions"]["a"]
    assert first["table"]["n"] == 240 and first["sdt"].n_participants == 10
    assert len(first["per_image"]) == 24
    loaded = json.loads(dumps_json(result))
    assert loaded["conditions"]["a"]["bootstrap"]["fooling_rate"]["interval"]["method"] == (
        "percentile"
    )
