"""Concurrent starts and answers, each thread on its own database connection, against the
real PostgreSQL (transaction=True: the data is committed, and the row locks are real)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection

from survey.models import Participant, Stimulus, Trial
from survey.services.assignment import participant_start
from survey.services.trials import trial_answer
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db(transaction=True)


def _in_threads(n: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``n`` threads released together; returns results (or errors)."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # reported by the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return results


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=50, size=32)  # 30 scenes
    runs = [
        uploaded_run(dataset, tmp_path, name="warm"),
        uploaded_run(dataset, tmp_path, name="cool", style="cool"),
    ]
    return open_study(runs)


def test_concurrent_starts_get_distinct_balanced_allocations(study):
    results = _in_threads(16, lambda i: participant_start(study=study, user_agent=f"t{i}"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Participant.objects.count() == 16
    assert Counter(Participant.objects.values_list("condition__label", flat=True)) == {
        "warm": 8,
        "cool": 8,
    }
    trials = Counter(Trial.objects.values_list("stimulus_id", flat=True))
    for participant in Participant.objects.all():
        stimuli = list(participant.trials.select_related("stimulus"))
        assert len(stimuli) == 24 and len({t.stimulus.scene_id for t in stimuli}) == 24
        assert sum(t.stimulus.is_real for t in stimuli) == 12
    groups: dict[object, list[int]] = {}
    for s in Stimulus.objects.all():
        assert s.exposures == trials[s.pk]
        groups.setdefault((s.condition_id, s.is_real), []).append(s.exposures)
    for exposures in groups.values():
        assert max(exposures) - min(exposures) <= 1
    # with 30 scenes and 12 per kind, 8 participants of a condition cannot share one list
    lists = {
        frozenset(p.trials.values_list("stimulus_id", flat=True)) for p in Participant.objects.all()
    }
    assert len(lists) == 16


def test_concurrent_starts_with_one_prolific_pid_make_one_participant(study):
    results = _in_threads(8, lambda i: participant_start(study=study, prolific_pid="same"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert {r.pk for r in results} == {Participant.objects.get().pk}
    assert Trial.objects.count() == 24
    assert sum(Stimulus.objects.values_list("exposures", flat=True)) == 24


def test_a_double_submitted_answer_is_stored_once(study):
    participant = participant_start(study=study)
    answers = ["real", "ai"] * 4
    results = _in_threads(
        8,
        lambda i: trial_answer(participant=participant, position=1, answer=answers[i], rt_ms=i),
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    stored = Trial.objects.get(participant=participant, position=1)
    assert {(r.trial.answer, r.trial.rt_ms) for r in results} == {(stored.answer, stored.rt_ms)}
    assert sum(r.stored for r in results) == 1
    assert Trial.objects.filter(answer__isnull=False).count() == 1
