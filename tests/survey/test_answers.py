"""Answers: stored once (a double submit stores one), in order, the last one completes the
participation; withdrawal removes the data, gives the exposures back and is logged."""

from __future__ import annotations

import random

import pytest
from django.contrib.auth import get_user_model

from survey.models import Participant, Stimulus, Trial, Withdrawal
from survey.selectors import participant_next_trial, participant_progress, study_condition_counts
from survey.services.assignment import participant_start
from survey.services.errors import ParticipationError, TrialError
from survey.services.trials import trial_answer, trial_mark_shown
from survey.services.withdrawal import (
    participant_to_withdraw,
    participant_withdraw,
    withdrawal_lookup,
)
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(tmp_path):
    dataset = tiny_dataset("syn", per_category=10, size=32)  # 6 scenes
    return open_study([uploaded_run(dataset, tmp_path, name="warm")], images_per_participant=4)


@pytest.fixture
def participant(study):
    return participant_start(study=study, prolific_pid="pid-1", rng=random.Random(0))


def test_answers_in_order_complete_the_participation(participant):
    for position in range(1, 5):
        assert participant_next_trial(participant=participant).position == position
        trial_mark_shown(participant=participant, position=position)
        result = trial_answer(participant=participant, position=position, answer="ai", rt_ms=700)
        trial = result.trial
        assert (trial.answer, trial.rt_ms) == ("ai", 700) and trial.answered_at
        assert result.stored and result.finished == (position == 4)
        if position < 4:  # the next trial, already marked shown for the browser
            assert result.next_trial.position == position + 1
            assert Trial.objects.get(pk=result.next_trial.pk).shown_at is not None
        else:
            assert result.next_trial is None
        assert participant.completed_at is None  # the caller's object is left alone
        participant.refresh_from_db()
        assert (participant.completed_at is not None) == (position == 4)
    assert participant_next_trial(participant=participant) is None
    assert participant_progress(participant=participant) == (4, 4)
    assert all(t.shown_at <= t.answered_at for t in participant.trials.all())


def test_a_repeated_answer_stores_one_and_returns_the_first(participant):
    first = trial_answer(participant=participant, position=1, answer="real", rt_ms=512).trial
    repeated = trial_answer(participant=participant, position=1, answer="ai", rt_ms=9)
    assert not repeated.stored and repeated.next_trial is None and not repeated.finished
    again = repeated.trial
    assert (again.pk, again.answer, again.rt_ms) == (first.pk, "real", 512)
    assert again.answered_at == first.answered_at
    assert Trial.objects.filter(answer__isnull=False).count() == 1


def test_a_retried_last_answer_after_completion_is_harmless(participant):
    for position in range(1, 5):
        trial_answer(participant=participant, position=position, answer="real", rt_ms=300)
    retried = trial_answer(participant=participant, position=4, answer="ai", rt_ms=1)
    assert retried.trial.answer == "real"
    assert retried.finished and not retried.stored
    with pytest.raises(TrialError, match="no trial 5"):
        trial_answer(participant=participant, position=5, answer="ai", rt_ms=1)


def test_answers_out_of_order_or_invalid_are_refused(participant):
    with pytest.raises(TrialError, match="before an earlier trial"):
        trial_answer(participant=participant, position=2, answer="ai", rt_ms=100)
    with pytest.raises(TrialError, match="answer must be"):
        trial_answer(participant=participant, position=1, answer="maybe", rt_ms=100)
    with pytest.raises(TrialError, match="response time"):
        trial_answer(participant=participant, position=1, answer="ai", rt_ms=-1)
    with pytest.raises(TrialError, match="no trial 0"):
        trial_answer(participant=participant, position=0, answer="ai", rt_ms=1)
    assert not Trial.objects.filter(answer__isnull=False).exists()


def test_withdrawal_by_prolific_pid_removes_the_data_and_is_logged(study, participant):
    other = participant_start(study=study, rng=random.Random(1))
    trial_answer(participant=participant, position=1, answer="ai", rt_ms=100)
    before = dict(Stimulus.objects.values_list("pk", "exposures"))
    shown = set(participant.trials.values_list("stimulus_id", flat=True))
    researcher = get_user_model().objects.create_user("researcher")

    log = participant_withdraw(study=study, prolific_pid="pid-1", by=researcher, reason="asked")

    assert (log.participant_public_id, log.prolific_pid) == (participant.public_id, "pid-1")
    assert (log.trials_removed, log.withdrawn_by, log.reason) == (4, researcher, "asked")
    assert Withdrawal.objects.count() == 1
    participant.refresh_from_db()
    assert participant.withdrawn_at is not None and participant.user_agent == ""
    assert not participant.trials.exists()
    assert other.trials.count() == 4
    after = dict(Stimulus.objects.values_list("pk", "exposures"))
    assert after == {pk: n - (pk in shown) for pk, n in before.items()}
    counts = {c.label: (c.started, c.withdrawn) for c in study_condition_counts(study=study)}
    assert counts == {"warm": (1, 1)}
    with pytest.raises(ParticipationError, match="withdrawn"):
        trial_answer(participant=participant, position=2, answer="ai", rt_ms=1)
    with pytest.raises(ParticipationError, match="already withdrawn"):
        participant_withdraw(study=study, public_id=participant.public_id)


def test_withdrawal_by_public_id_and_unknown_ids(study):
    participant = participant_start(study=study, user_agent="Firefox")
    participant_withdraw(study=study, public_id=participant.public_id)
    assert Withdrawal.objects.get().prolific_pid == ""
    assert Participant.objects.get().withdrawn_at is not None
    with pytest.raises(ParticipationError, match="has the participant id “nobody”"):
        participant_withdraw(study=study, public_id="nobody")
    with pytest.raises(ParticipationError, match="give one of"):
        participant_withdraw(study=study)


def test_withdrawal_by_the_participant_number_of_the_downloads(study, participant):
    other = participant_start(study=study, rng=random.Random(1))
    found = participant_to_withdraw(study=study, number=str(participant.pk))
    assert (found.pk, found.n_trials, found.n_answered) == (participant.pk, 4, 0)

    log = participant_withdraw(study=study, number=participant.pk)

    assert (log.participant_public_id, log.trials_removed) == (participant.public_id, 4)
    assert not participant.trials.exists() and other.trials.count() == 4
    with pytest.raises(ParticipationError, match="already withdrawn"):
        participant_withdraw(study=study, number=participant.pk)


@pytest.fixture
def another_study(tmp_path):
    dataset = tiny_dataset("syn2", per_category=10, size=32)
    return open_study([uploaded_run(dataset, tmp_path, name="cool")], images_per_participant=4)


def test_the_form_finds_a_participant_by_number_prolific_pid_or_participant_id(study, participant):
    by_number = {"number": participant.pk}
    for who in (str(participant.pk), f" {participant.pk} ", "pid-1", participant.public_id):
        assert withdrawal_lookup(study=study, by="any", who=who) == by_number
    assert withdrawal_lookup(study=study, by="number", who=f"{participant.pk}\n") == by_number
    assert withdrawal_lookup(study=study, by="prolific_pid", who="pid-1") == {
        "prolific_pid": "pid-1"
    }
    assert withdrawal_lookup(study=study, by="public_id", who="x") == {"public_id": "x"}


def test_the_form_refuses_a_number_of_another_study_as_it_refuses_an_unknown_one(
    study, participant, another_study
):
    """Participant numbers are shared by all studies: a number of another study's
    participant is refused in the words of a number no one has, so that the form does not
    confirm activity in studies the researcher may not see."""
    stranger = participant_start(study=another_study, prolific_pid="pid-2")
    nobody = Participant.objects.order_by("-pk").first().pk + 1000

    def refusals(number: int) -> list[str]:
        words = []
        for attempt in (
            lambda: withdrawal_lookup(study=study, by="any", who=str(number)),
            lambda: participant_to_withdraw(study=study, number=number),
            lambda: participant_withdraw(study=study, number=number),
        ):
            with pytest.raises(ParticipationError) as caught:
                attempt()
            words.append(str(caught.value).replace(str(number), "N"))
        return words

    elsewhere, unknown = refusals(stranger.pk), refusals(nobody)
    assert elsewhere == unknown
    assert elsewhere[0].startswith("no participant of this study has number N")
    assert not any("another study" in words for words in elsewhere)
    assert stranger.trials.count() == 4 and not Withdrawal.objects.exists()


def test_the_form_refuses_unknown_malformed_and_ambiguous_input_in_words(study, participant):
    unknown = participant.pk + 1000
    nobody = f"no participant of this study has number {unknown}"
    with pytest.raises(ParticipationError, match=nobody):
        withdrawal_lookup(study=study, by="any", who=str(unknown))
    with pytest.raises(ParticipationError, match=nobody):
        participant_to_withdraw(study=study, number=unknown)
    with pytest.raises(ParticipationError, match="PROLIFIC_PID or participant id “nobody”"):
        withdrawal_lookup(study=study, by="any", who="nobody")
    for text in ("12.0", "#12", "-3", "0", "twelve", "9" * 30):
        with pytest.raises(ParticipationError, match="is not a participant number"):
            withdrawal_lookup(study=study, by="number", who=text)
    with pytest.raises(ParticipationError, match="give the participant number"):
        withdrawal_lookup(study=study, by="any", who="  ")
    # A PROLIFIC_PID that is another participant's number: the form must be told which.
    twin = participant_start(study=study, prolific_pid=str(participant.pk))
    ambiguous = (
        f"“{participant.pk}” is ambiguous: it is participant number {participant.pk} and the "
        f"PROLIFIC_PID of participant number {twin.pk}; choose"
    )
    with pytest.raises(ParticipationError, match=ambiguous):
        withdrawal_lookup(study=study, by="any", who=str(participant.pk))
    assert withdrawal_lookup(study=study, by="prolific_pid", who=str(participant.pk)) == {
        "prolific_pid": str(participant.pk)
    }
