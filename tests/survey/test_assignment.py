"""Assignment at start: 12 real + 12 AI, never a scene twice, exposures balanced within ±1
over many participants, conditions balanced; resume by PROLIFIC_PID."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from django.db import IntegrityError, transaction

from survey.models import Participant, Stimulus, Study, Trial
from survey.services.assignment import participant_start
from survey.services.errors import NotEnoughScenes, ParticipationError, StudyFull, StudyNotOpen
from survey.services.studies import study_close, study_create
from survey.services.withdrawal import participant_withdraw
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset():
    return tiny_dataset("syn", per_category=50, size=32)  # 30 test scenes


@pytest.fixture
def study(dataset, tmp_path):
    runs = [
        uploaded_run(dataset, tmp_path, name="warm"),
        uploaded_run(dataset, tmp_path, name="cool", style="cool"),
    ]
    return open_study(runs, labels=["A", "B"])


def assert_balanced(study: Study) -> None:
    """Exposures within ±1 per condition and per real/AI; equal to the trials; conditions
    within one participant of each other."""
    trials = Counter(Trial.objects.filter(participant__study=study).values_list("stimulus_id"))
    stimuli = list(Stimulus.objects.filter(study=study))
    for s in stimuli:
        assert s.exposures == trials[(s.pk,)], s
    groups: dict[object, list[int]] = {}
    for s in stimuli:
        groups.setdefault((s.condition_id, s.is_real), []).append(s.exposures)
    for key, exposures in groups.items():
        assert max(exposures) - min(exposures) <= 1, (key, sorted(exposures))
    per_condition = Counter(
        study.participants.filter(withdrawn_at__isnull=True).values_list("condition_id")
    )
    assert max(per_condition.values()) - min(per_condition.values()) <= 1


def assert_allocation(participant: Participant) -> None:
    trials = list(participant.trials.select_related("stimulus").order_by("position"))
    assert [t.position for t in trials] == list(range(1, 25))
    assert sum(t.stimulus.is_real for t in trials) == 12
    assert sum(not t.stimulus.is_real for t in trials) == 12
    assert len({t.stimulus.scene_id for t in trials}) == 24
    ai_conditions = {t.stimulus.condition_id for t in trials if not t.stimulus.is_real}
    assert ai_conditions == {participant.condition_id}


def test_sixty_participants_get_balanced_allocations(study):
    rng = random.Random(1)
    participants = [participant_start(study=study, rng=rng) for _ in range(60)]
    for participant in participants:
        assert_allocation(participant)
    assert_balanced(study)
    assert Counter(p.condition.label for p in participants) == {"A": 30, "B": 30}
    # every stimulus shown: 30 × 12 = 360 AI exposures over 30 scenes in each condition
    assert set(Stimulus.objects.filter(is_real=False).values_list("exposures", flat=True)) == {12}
    # orders differ between participants
    orders = {
        tuple(p.trials.order_by("position").values_list("stimulus__scene_id")) for p in participants
    }
    assert len(orders) == 60


def test_balance_holds_through_withdrawals(study):
    rng = random.Random(2)
    participants = [participant_start(study=study, rng=rng) for _ in range(21)]
    for p in participants[::4]:
        participant_withdraw(study=study, public_id=p.public_id)
    participants += [participant_start(study=study, rng=rng) for _ in range(17)]
    assert_balanced(study)


def test_resume_by_prolific_pid_returns_the_same_participant(study):
    first = participant_start(study=study, prolific_pid="5f1a", prolific_session_id="s1")
    again = participant_start(study=study, prolific_pid="5f1a", prolific_session_id="s2")
    assert again.pk == first.pk
    assert Participant.objects.count() == 1 and Trial.objects.count() == 24
    assert sum(Stimulus.objects.values_list("exposures", flat=True)) == 24
    other = participant_start(study=study, prolific_pid="6b2c")
    assert other.pk != first.pk


def test_one_participation_per_prolific_pid_is_a_database_constraint(study):
    participant_start(study=study, prolific_pid="5f1a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Participant.objects.create(study=study, prolific_pid="5f1a")
    # participants without a PROLIFIC_PID are not constrained
    Participant.objects.create(study=study)
    Participant.objects.create(study=study)


def test_a_withdrawn_prolific_pid_cannot_start_again(study):
    participant_start(study=study, prolific_pid="5f1a")
    participant_withdraw(study=study, prolific_pid="5f1a")
    with pytest.raises(ParticipationError, match="withdrawn"):
        participant_start(study=study, prolific_pid="5f1a")


def test_closed_and_full_studies_refuse_new_participants(dataset, tmp_path):
    run = uploaded_run(dataset, tmp_path, name="warm")
    study = open_study([run], images_per_participant=4, target_participants_per_condition=2)
    resumed = participant_start(study=study, prolific_pid="a")
    participant_start(study=study)
    with pytest.raises(StudyFull):
        participant_start(study=study)
    study_close(study=study)
    with pytest.raises(StudyNotOpen):
        participant_start(study=study, prolific_pid="b")
    assert participant_start(study=study, prolific_pid="a").pk == resumed.pk  # resume


def test_draft_study_refuses_participants(dataset, tmp_path):
    study = study_create(name="d", runs=[uploaded_run(dataset, tmp_path, name="w")])
    with pytest.raises(StudyNotOpen):
        participant_start(study=study)


def test_not_enough_scenes_at_start_is_a_clear_error(study):
    Stimulus.objects.filter(
        study=study,
        is_real=False,
        scene_id__in=Stimulus.objects.filter(study=study).values("scene_id").distinct()[:7],
    ).delete()
    with pytest.raises(NotEnoughScenes, match="needs 24"):
        participant_start(study=study)
    assert not Participant.objects.exists()
    assert sum(Stimulus.objects.values_list("exposures", flat=True)) == 0


def test_within_subjects_spreads_ai_images_over_the_conditions(dataset, tmp_path):
    runs = [
        uploaded_run(dataset, tmp_path, name="warm"),
        uploaded_run(dataset, tmp_path, name="cool", style="cool"),
    ]
    study = open_study(runs, design=Study.Design.WITHIN)
    rng = random.Random(3)
    for _ in range(10):
        participant = participant_start(study=study, rng=rng)
        assert participant.condition is None
        trials = list(participant.trials.select_related("stimulus"))
        assert len(trials) == 24 and len({t.stimulus.scene_id for t in trials}) == 24
        assert sum(t.stimulus.is_real for t in trials) == 12
        per_condition = Counter(t.stimulus.condition_id for t in trials if not t.stimulus.is_real)
        assert sorted(per_condition.values()) == [6, 6]
    for group in [*study.conditions.all(), None]:
        stimuli = Stimulus.objects.filter(study=study, condition=group)
        exposures = list(stimuli.values_list("exposures", flat=True))
        assert max(exposures) - min(exposures) <= 1


@pytest.mark.parametrize("design", [Study.Design.BETWEEN, Study.Design.WITHIN])
def test_practice_and_attention_checks_leave_the_main_design_balanced(dataset, tmp_path, design):
    runs = [
        uploaded_run(dataset, tmp_path, name="warm"),
        uploaded_run(dataset, tmp_path, name="cool", style="cool"),
    ]
    study = open_study(runs, design=design, practice_trials=2, attention_checks=2)
    reserved = set(
        Stimulus.objects.filter(study=study).exclude(role="main").values_list("scene_id", flat=True)
    )
    assert len(reserved) == 4
    assert not reserved & set(
        Stimulus.objects.filter(study=study, role="main").values_list("scene_id", flat=True)
    )
    rng = random.Random(4)
    for _ in range(30):
        participant = participant_start(study=study, rng=rng)
        trials = list(participant.trials.select_related("stimulus").order_by("position"))
        assert [t.kind for t in trials[:2]] == ["practice", "practice"]
        main = [t for t in trials if t.kind == "main"]
        assert len(main) == 24 and sum(t.stimulus.is_real for t in main) == 12
        assert sum(t.kind == "attention" for t in trials) == 2
        assert len({t.stimulus.scene_id for t in trials}) == len(trials) == 28
        assert all(t.kind == t.stimulus.role for t in trials)
        if design == Study.Design.BETWEEN:
            ai = {
                t.stimulus.condition_id
                for t in trials
                if not t.stimulus.is_real and t.kind != "attention"
            }
            assert ai == {participant.condition_id}
    groups: dict[object, list[int]] = {}
    for s in Stimulus.objects.filter(study=study, role="main"):
        groups.setdefault((s.condition_id, s.is_real), []).append(s.exposures)
    for key, exposures in groups.items():
        assert max(exposures) - min(exposures) <= 1, (key, sorted(exposures))
