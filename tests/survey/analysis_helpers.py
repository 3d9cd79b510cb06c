"""Studies with answers given in a known pattern, for the analysis and export tests.

The expected counts are computed here from what was answered (a plain loop over the trials
the test itself created), never by the code under test."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from django.utils import timezone

from survey.analysis.counts import tallies_store
from survey.models import Participant, Study, Trial
from survey.services.assignment import participant_start
from survey.services.trials import trial_answer
from survey.services.withdrawal import participant_withdraw
from survey.statistics import Judgement
from tests.survey.study_helpers import open_study, tiny_dataset, uploaded_run

#: answer(participant index, trial) -> "real" or "ai"
Rule = Callable[[int, Trial], str]


def make_study(
    tmp_path: Path, *, design: str = Study.Design.BETWEEN, owner=None, **fields
) -> Study:
    """Two conditions ("warm" and "cool & co", from two uploaded runs), 4 images per
    participant, one practice trial and one attention check (6 test scenes)."""
    dataset = tiny_dataset("syn", per_category=10, size=32, owner=owner)
    runs = [
        uploaded_run(dataset, tmp_path, name="warm", owner=owner),
        uploaded_run(dataset, tmp_path, name="cool", style="cool", owner=owner),
    ]
    fields = {"images_per_participant": 4, "practice_trials": 1, "attention_checks": 1, **fields}
    return open_study(runs, owner=owner, labels=["warm", "cool & co_1"], design=design, **fields)


def pattern(i: int, trial: Trial) -> str:
    """The main answers' pattern: it depends on the participant and the position, so the
    cells differ between participants and conditions."""
    return "ai" if (i + trial.position) % 3 == 0 else "real"


def half_fooled() -> Rule:
    """A rule by which every participant is fooled on every other main trial (so on half):
    a pooled rate of 0.5 exactly, images and participants alike."""
    seen: Counter = Counter()

    def rule(i: int, trial: Trial) -> str:
        seen[i] += 1
        truth = "real" if trial.stimulus.is_real else "ai"
        fooled = (i + seen[i]) % 2 == 0
        return {"real": "ai", "ai": "real"}[truth] if fooled else truth

    return rule


def take_part(
    study: Study,
    i: int,
    *,
    rule: Rule = pattern,
    attention: str = "ai",
    practice: str = "real",
    stop_after: int | None = None,
    seed: int | None = None,
    instructed_failures: int = 0,
) -> Participant:
    """Participant number ``i`` starts and answers in order (main trials by ``rule``,
    attention checks and practice trials as given; instructed-response checks as asked,
    but the first ``instructed_failures`` of them otherwise), all trials or ``stop_after``
    of them."""
    participant = participant_start(study=study, rng=random.Random(seed if seed is not None else i))
    trials = list(participant.trials.select_related("stimulus").order_by("position"))
    defy = instructed_failures
    for trial in trials[:stop_after]:
        answer = {"attention": attention, "practice": practice}.get(trial.kind) or rule(i, trial)
        if trial.kind == "instructed":
            asked = trial.instructed_answer
            answer = asked if defy <= 0 else {"real": "ai", "ai": "real"}[asked]
            defy -= 1
        trial_answer(
            participant=participant,
            position=trial.position,
            answer=answer,
            rt_ms=400 + 37 * i + 11 * trial.position,
        )
    participant.refresh_from_db()
    return participant


def withdraw(study: Study, participant: Participant) -> None:
    participant_withdraw(study=study, public_id=participant.public_id)


def judgements(participants) -> list[Judgement]:
    """Every answered trial of ``participants`` as statistics.Judgement rows (condition: the
    stimulus's condition id; None for shared real photographs)."""
    rows = []
    for trial in (
        Trial.objects.filter(participant__in=participants, answer__isnull=False)
        .order_by("participant_id", "position")
        .select_related("stimulus")
    ):
        rows.append(
            Judgement(
                participant=trial.participant_id,
                image=trial.stimulus_id,
                condition=trial.stimulus.condition_id,
                truth="real" if trial.stimulus.is_real else "ai",
                answer=trial.answer,
                rt_ms=trial.rt_ms,
                position=trial.position,
                practice=trial.kind == "practice",
                attention=trial.kind in ("attention", "instructed"),
            )
        )
    return rows


def expected_cells(participants) -> dict[int | None, tuple[int, int, int, int]]:
    """condition -> (real_real, real_ai, ai_real, ai_ai) of the answered main trials."""
    counts: dict[int | None, Counter] = {}
    for row in judgements(participants):
        if row.practice or row.attention:
            continue
        counts.setdefault(row.condition, Counter())[row.cell] += 1
    cells = ("real_real", "real_ai", "ai_real", "ai_ai")
    return {c: tuple(counter[x] for x in cells) for c, counter in counts.items()}


def complete_quickly(participant: Participant, answer: str = "real") -> None:
    """Answer every trial of ``participant`` at once (for tests that need many): main and
    practice trials ``answer``, attention checks passed."""
    now = timezone.now()
    participant.trials.exclude(kind="attention").update(answer=answer, rt_ms=900, answered_at=now)
    participant.trials.filter(kind="attention").update(answer="ai", rt_ms=700, answered_at=now)
    Participant.objects.filter(pk=participant.pk).update(completed_at=now)
    tallies_store(participant_ids=[participant.pk])  # as the last answer does
