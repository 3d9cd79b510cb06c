"""The analysis from the database (survey.analysis): tables counted by the database equal
the answers given, one exclusion rule everywhere, per-participant statistics equal the pure
module's, per-image rates, within-subjects tables, and a bounded number of queries."""

from __future__ import annotations

import importlib
import math
import random

import numpy as np
import pytest
from django.apps import apps as django_apps

from survey.analysis.counts import (
    condition_cells,
    participant_tallies,
    study_counts,
    tallies_store,
)
from survey.analysis.distributions import accuracy_distribution, quantile, regroup, rt_distribution
from survey.analysis.exclusion import (
    FAILED_ATTENTION,
    UNFINISHED,
    WITHDRAWN,
    included_participants,
    measured_trials,
    participant_counts,
    participant_exclusions,
)
from survey.analysis.results import image_rows, study_analysis
from survey.models import Participant, ParticipantTally, Study
from survey.services.assignment import participant_start
from survey.statistics import (
    ContingencyTable,
    Judgement,
    analyse_table,
    bootstrap_counts,
    bootstrap_over_participants,
    sdt_by_participant,
    sdt_summary_from_counts,
    summarise_sdt,
    table_from_judgements,
    wilson_interval,
    wilson_intervals,
)
from tests.survey.analysis_helpers import (
    complete_quickly,
    expected_cells,
    judgements,
    make_study,
    take_part,
    withdraw,
)

CELLS = ("real_real", "real_ai", "ai_real", "ai_ai")


# ---------------------------------------------------------------- pure helpers (no database)


def test_count_based_statistics_equal_the_judgement_based_ones():
    rng = random.Random(3)
    rows = []
    for p in range(40):
        for i in range(6):
            rows.append(Judgement(p, f"r{i}", "c", "real", rng.choice(["real", "real", "ai"])))
            rows.append(Judgement(p, f"a{i}", "c", "ai", rng.choice(["real", "ai"])))
    per, _ = sdt_by_participant(rows)
    expected = summarise_sdt(per)
    counts = np.array(
        [
            [s.n_noise - s.false_alarms, s.false_alarms, s.n_signal - s.hits, s.hits]
            for s in per.values()
        ]
    )
    distinct, weights = np.unique(counts, axis=0, return_counts=True)
    summary, skipped = sdt_summary_from_counts(distinct, weights)
    assert skipped == 0 and summary.n_participants == 40
    assert summary.mean_d_prime == pytest.approx(expected.mean_d_prime, abs=1e-12)
    assert summary.d_prime_interval.as_list() == pytest.approx(
        expected.d_prime_interval.as_list(), abs=1e-12
    )
    assert summary.mean_criterion == pytest.approx(expected.mean_criterion, abs=1e-12)
    assert summary.d_prime_t_test_p == pytest.approx(expected.d_prime_t_test_p, abs=1e-12)

    # The bootstrap draws how often each distinct table is picked (multinomial): the same
    # distribution as resampling participants, so the intervals agree closely.
    by_rows = bootstrap_over_participants(rows, n_boot=4000, seed=1)
    by_counts = bootstrap_counts(distinct, weights, n_boot=4000, seed=1)
    assert by_counts.fooling_rate.estimate == pytest.approx(by_rows.fooling_rate.estimate)
    assert by_counts.n_participants == 40
    for a, b in zip(
        by_counts.fooling_rate.interval.as_list(), by_rows.fooling_rate.interval.as_list()
    ):
        assert a == pytest.approx(b, abs=0.01)
    assert by_counts == bootstrap_counts(distinct, weights, n_boot=4000, seed=1)

    lows, highs = wilson_intervals([0, 3, 10, 0], [10, 10, 10, 0])
    for k, low, high in zip((0, 3, 10), lows, highs):
        assert [low, high] == pytest.approx(wilson_interval(k, 10).as_list(), abs=1e-12)
    assert math.isnan(lows[3]) and math.isnan(highs[3])


def test_sdt_from_counts_skips_participants_without_both_kinds():
    summary, skipped = sdt_summary_from_counts([[2, 1, 0, 0], [2, 1, 1, 2]], [3, 2])
    assert skipped == 3 and summary.n_participants == 2


def test_distributions():
    accuracy = accuracy_distribution([(12, 24, 3), (18, 24, 1), (24, 24, 1)])
    assert accuracy.n == 5 and accuracy.counts[5] == 3 and accuracy.counts[7] == 1
    assert accuracy.counts[9] == 1  # 100 % lands in the last bin
    assert accuracy.median == 0.5
    assert accuracy.mean == pytest.approx((3 * 0.5 + 0.75 + 1.0) / 5)
    rt = rt_distribution({20: 2, 30: 2, 10_000: 1})  # 1000–1050 ms, 1500–1550 ms, ≥ 10 s
    assert rt.n == 5 and rt.open_end and rt.counts[-1] == 1
    assert 1000 <= rt.median <= 1550
    assert rt.quartiles[0] <= rt.median <= rt.quartiles[1]
    assert rt_distribution({}).n == 0
    coarse = regroup(rt, width=500, upto=2000)  # 0–500, …, 1500–2000, then ≥ 2 s
    assert coarse.edges[:5] == [0, 500, 1000, 1500, 2000] and coarse.open_end
    assert coarse.counts == [0, 0, 2, 2, 1]
    assert quantile(coarse, 0.5) == pytest.approx(1625)  # 2.5 of 5: a quarter into 1.5–2 s


# ---------------------------------------------------------------- from the database


@pytest.fixture
def study(db, tmp_path):
    return make_study(tmp_path)


@pytest.mark.django_db
def test_tables_equal_the_answers_given(study):
    people = [take_part(study, i) for i in range(6)]
    expected = expected_cells(people)
    assert condition_cells(study=study) == expected
    analysis = study_analysis(study=study)
    assert study_counts(study=study).tables == expected
    assert [c.label for c in analysis.conditions] == ["warm", "cool & co_1"]
    rows = judgements(people)
    for c in analysis.conditions:
        assert tuple(c.cells[x] for x in CELLS) == expected[c.condition_id]
        table = table_from_judgements(rows, c.condition_id)
        assert c.table == analyse_table(table)
        assert c.table["n"] == 3 * 4  # 3 participants, 4 main trials each
        per, _ = sdt_by_participant(rows, c.condition_id)
        assert c.sdt.n_participants == 3
        assert c.sdt.mean_d_prime == pytest.approx(summarise_sdt(per).mean_d_prime)
        assert c.bootstrap.fooling_rate.estimate == pytest.approx(c.table["fooling_rate"])
        assert c.participants.included == 3 and c.participants.started == 3
        assert c.metrics["l1"] is not None and c.metrics["ssim"] is not None
        assert c.accuracy.n == 3
        assert c.response_times["real"].n == c.response_times["ai"].n == 3
    assert analysis.judgements == 24
    assert analysis.participants.included == 6
    assert len(analysis.comparisons) == 1
    pair = analysis.comparisons[0]
    a, b = (ContingencyTable(**c.cells) for c in analysis.conditions)
    assert pair["fooling_rate"].difference == pytest.approx(a.errors / a.n - b.errors / b.n)


@pytest.mark.django_db
def test_response_times_are_each_participants_geometric_mean(study):
    people = [take_part(study, i) for i in range(2)]
    analysis = study_analysis(study=study)
    expected = []
    for p in people:
        rts = [t.rt_ms for t in p.trials.filter(kind="main", stimulus__is_real=True)]
        expected.append(math.exp(sum(math.log(r) for r in rts) / len(rts)))
    real = analysis.response_times["real"]
    assert real.n == 2
    # The bins are 50 ms wide: each participant sits in the bin of their geometric mean.
    filled = [i for i, n in enumerate(real.counts) if n]
    assert filled == sorted({int(e // 50) for e in expected})


@pytest.mark.django_db
def test_one_exclusion_rule_everywhere(study):
    kept = [take_part(study, i) for i in range(4)]
    failed = take_part(study, 4, attention="real")  # called the inverted photograph real
    unfinished = take_part(study, 5, stop_after=4)  # practice + 3 more, then stopped
    gone = take_part(study, 6)
    withdraw(study, gone)
    silent = participant_start(study=study, rng=random.Random(7))  # started, no answer

    assert unfinished.completed_at is None and failed.completed_at is not None
    assert set(included_participants(study=study)) == set(kept)
    reasons = participant_exclusions(study=study)
    assert reasons == {
        failed.pk: FAILED_ATTENTION,
        unfinished.pk: UNFINISHED,
        gone.pk: WITHDRAWN,
        silent.pk: UNFINISHED,
    }
    counted = measured_trials(study=study)
    assert counted.count() == 4 * 4
    assert set(counted.values_list("kind", flat=True)) == {"main"}
    assert condition_cells(study=study) == expected_cells(kept)
    analysis = study_analysis(study=study)
    assert analysis.judgements == 16
    totals = analysis.participants
    assert (totals.started, totals.included, totals.failed_attention) == (8, 4, 1)
    assert (totals.unfinished, totals.withdrawn, totals.completed) == (2, 1, 5)
    assert analysis.exclusion_rule[0].startswith("Practice trials are never counted")
    assert any("attention check" in line.lower() for line in analysis.exclusion_rule)

    # On request the unfinished participants' answered main trials count too (the
    # practice trial they answered does not); the failed and withdrawn stay out.
    answered_main = unfinished.trials.filter(kind="main", answer__isnull=False).count()
    assert answered_main >= 1
    widened = study_analysis(study=study, include_unfinished=True)
    assert widened.judgements == 16 + answered_main
    assert set(included_participants(study=study, include_unfinished=True)) == {
        *kept,
        unfinished,
        silent,
    }
    assert participant_exclusions(study=study, include_unfinished=True) == {
        failed.pk: FAILED_ATTENTION,
        gone.pk: WITHDRAWN,
    }
    assert widened.participants.unfinished_included == 2
    assert "included on request" in widened.exclusion_rule[2]
    assert condition_cells(study=study, include_unfinished=True) == expected_cells(
        [*kept, unfinished]
    )


@pytest.mark.django_db
def test_practice_answers_never_change_the_tables(study):
    plain = [take_part(study, i, practice="real") for i in range(2)]
    before = condition_cells(study=study)
    for p in plain:  # rewrite the practice answers: the tables must not move
        p.trials.filter(kind="practice").update(answer="ai")
    assert condition_cells(study=study) == before
    assert study_counts(study=study).tables == before


@pytest.mark.django_db
def test_participant_counts_by_condition(study):
    for i in range(4):
        take_part(study, i)
    take_part(study, 4, attention="real")
    counts = participant_counts(study=study)
    assert sum(c.started for c in counts.values()) == 5
    assert sum(c.failed_attention for c in counts.values()) == 1
    assert set(counts) == set(study.conditions.values_list("pk", flat=True))


@pytest.mark.django_db
def test_per_image_rates(study):
    people = [take_part(study, i) for i in range(8)]
    rows = image_rows(study=study)
    expected: dict[int, list[int]] = {}
    for row in judgements(people):
        if row.practice or row.attention:
            continue
        entry = expected.setdefault(row.image, [0, 0])
        entry[0] += 1
        entry[1] += int(row.fooled)
    seen = 0
    for condition in study.conditions.all():
        images = rows[condition.pk]
        assert {r.is_real for r in images} == {True, False}
        rates = [r.rate for r in images if r.rate is not None]
        assert rates == sorted(rates, reverse=True)
        for r in images:
            n, fooled = expected.get(r.stimulus_id, [0, 0])
            assert (r.n, r.fooled) == (n, fooled)
            if n:
                seen += 1
                assert r.rate == fooled / n
                assert r.interval == pytest.approx(wilson_interval(fooled, n).as_list())
                assert r.rt_ms is not None and r.rt_ms > 0
            else:
                assert r.rate is None and r.interval is None
            if not r.is_real:
                assert set(r.metrics) == {"l1", "ssim"} and r.metrics["ssim"] is not None
    assert seen == len(expected)


@pytest.mark.django_db
def test_within_subjects_tables_share_the_real_row(tmp_path):
    study = make_study(tmp_path, design=Study.Design.WITHIN)
    people = [take_part(study, i) for i in range(4)]
    expected = expected_cells(people)
    shared = expected[None]  # the real photographs' row (stimuli without a condition)
    assert shared[2:] == (0, 0)
    analysis = study_analysis(study=study)
    assert analysis.shared_real == dict(zip(CELLS, shared))
    assert analysis.judgements == 4 * 4  # the shared real row counted once
    rows = judgements(people)
    for c in analysis.conditions:
        assert (c.cells["real_real"], c.cells["real_ai"]) == shared[:2]
        assert (c.cells["ai_real"], c.cells["ai_ai"]) == expected[c.condition_id][2:]
        assert c.participants is None and c.accuracy is None
        # Each participant saw both conditions (2 AI images each, one per condition): their
        # real judgements count with each condition's AI ones for d′.
        assert c.sdt.n_participants == 4
        mine = [
            r
            for r in rows
            if not (r.practice or r.attention) and r.condition in (None, c.condition_id)
        ]
        mine = [Judgement(**{**r.__dict__, "condition": "x"}) for r in mine]
        per, _ = sdt_by_participant(mine)
        assert c.sdt.mean_d_prime == pytest.approx(summarise_sdt(per).mean_d_prime)
    assert analysis.accuracy.n == 4
    assert sum(len(v) for v in image_rows(study=study).values()) > 0


def _stored_tallies() -> set[tuple]:
    return set(
        ParticipantTally.objects.values_list(
            "participant_id", "condition_id", *CELLS, "log_rt_real", "log_rt_ai"
        )
    )


@pytest.mark.django_db
def test_tallies_are_stored_at_the_last_answer_and_dropped_on_withdrawal(study):
    people = [take_part(study, i) for i in range(4)]
    unfinished = take_part(study, 4, stop_after=3)
    assert ParticipantTally.objects.count() == 4  # one row each (between subjects)
    assert not ParticipantTally.objects.filter(participant=unfinished).exists()
    assert tallies_store(participant_ids=[p.pk for p in people]) == 0  # stored once
    stored = {
        (t.participant_id, t.condition_id): (t.real_real, t.real_ai, t.ai_real, t.ai_ai)
        for t in ParticipantTally.objects.all()
    }
    live = {
        (row["participant_id"], row["condition"]): tuple(row[c] for c in CELLS)
        for row in participant_tallies(study=study)
        if row["participant_id"] != unfinished.pk
    }
    assert stored == live
    first = study_analysis(study=study)
    later = take_part(study, 5)  # finishes after the first analysis: tallied as it finishes
    assert ParticipantTally.objects.filter(participant=later).count() == 1
    second = study_analysis(study=study)
    assert second.judgements == first.judgements + 4
    withdraw(study, people[0])
    assert not ParticipantTally.objects.filter(participant=people[0]).exists()
    assert study_analysis(study=study).judgements == first.judgements
    assert condition_cells(study=study) == study_counts(study=study).tables


@pytest.mark.django_db
def test_one_participants_tallies_are_those_counted_for_many(study):
    """A last answer stores its participant's tallies with a statement compiled once per
    process (survey.analysis.counts._one_tallies_insert): the rows the ORM's gives."""
    people = [take_part(study, i) for i in range(3)]
    expected = _stored_tallies()
    assert {row[0] for row in expected} == {p.pk for p in people}
    ParticipantTally.objects.all().delete()
    assert tallies_store(participant_ids=[people[0].pk]) == 1
    assert tallies_store(participant_ids=(people[1].pk,)) == 1  # the same statement
    ids = Participant.objects.filter(pk=people[2].pk).values("pk")
    assert tallies_store(participant_ids=ids) == 1
    assert tallies_store(participant_ids=[people[0].pk]) == 0  # stored once
    assert _stored_tallies() == expected


@pytest.mark.django_db
@pytest.mark.parametrize("design", [Study.Design.BETWEEN, Study.Design.WITHIN])
def test_the_migration_stores_the_tallies_of_those_finished_before(tmp_path, design):
    """Participants who finished while the analysis still stored the tallies have none:
    survey/migrations/0004 stores them, the same as the last answer does, once."""
    study = make_study(tmp_path, design=design)
    finished = {take_part(study, i).pk for i in range(3)}
    take_part(study, 3, stop_after=2)  # unfinished: no tally
    withdraw(study, take_part(study, 4))  # withdrawn: none either
    expected = _stored_tallies()
    assert {row[0] for row in expected} == finished
    ParticipantTally.objects.all().delete()  # a database from before
    migration = importlib.import_module("survey.migrations.0004_store_missing_tallies")
    migration.store_missing_tallies(django_apps, None)
    assert _stored_tallies() == expected
    migration.store_missing_tallies(django_apps, None)
    assert _stored_tallies() == expected


@pytest.mark.django_db
def test_an_empty_study_is_analysed(study):
    analysis = study_analysis(study=study)
    assert analysis.judgements == 0
    for c in analysis.conditions:
        assert c.table is None and c.sdt is None and c.bootstrap is None
    assert analysis.accuracy.n == 0 and analysis.response_times["ai"].n == 0


@pytest.mark.django_db
def test_the_analysis_takes_a_fixed_number_of_queries(study, django_assert_max_num_queries):
    def grow(to: int) -> None:
        while Participant.objects.filter(study=study).count() < to:
            complete_quickly(participant_start(study=study, rng=random.Random()))

    for size in (2, 20):
        grow(size)
        # Conditions, participants, and in one transaction (BEGIN, SET, COMMIT): the
        # counts (from the tallies stored as each participant finished).
        with django_assert_max_num_queries(8):
            analysis = study_analysis(study=study)
        assert analysis.participants.included == size
        with django_assert_max_num_queries(4):
            image_rows(study=study)
