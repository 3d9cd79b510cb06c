"""What a participant is shown, decided when they start (method.md §7).

**Assignment** (:func:`participant_start`), in one transaction holding the study's row lock
(``SELECT … FOR UPDATE``), so concurrent starts are serialised and never read the same
exposure counts: the places of participants silent past the time limit are released
first (:mod:`survey.services.places`); between subjects, the condition with the fewest
places held (ties at random), none once every condition holds its target; then ``k`` AI
and ``k`` real stimuli (``k`` = half the images per participant), never the same scene
twice, the least exposed first (ties at random), chosen jointly as a minimum-cost
assignment (:func:`_assign`), which keeps the exposures of each condition's AI stimuli and
of the real stimuli within ±1 (a greedy choice, AI first then real from the scenes left,
does not). Exposures are incremented and the trials created: the practice trials first
(every practice scene, half real, half AI), then the main trials in a random order with
the attention checks and the instructed-response checks at random places among them (never
first). An instructed check shows a real or an AI version of its reserved scene (half and
half, as practice) and asks for an answer drawn at random, whatever the image
(:func:`instructions`). While the study is open as a pilot, participants are flagged
``is_pilot``: they hold pilot places only and leave the stimuli's exposures alone (the
real study's balance starts from zero). A start with a
PROLIFIC_PID already seen returns that participant (resume), never a second one (a
database constraint backs this up). A paired study's trials are pairs
(:func:`pair_plan`): the fake is the trial's stimulus, the real photograph its partner,
the fake's side balanced per participant; a preference study's are two runs'
colourisations of one photograph (survey.preference_protocol.preference_plan).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from django.db import IntegrityError, transaction
from django.utils import timezone
from scipy.optimize import linear_sum_assignment

from studyplatform.words import counted
from survey.models import Condition, Participant, Stimulus, Study, Trial
from survey.services import participant_sql
from survey.services.errors import (
    NotEnoughScenes,
    ParticipationError,
    StudyError,
    StudyFull,
    StudyNotOpen,
)
from survey.services.hype_exposure import exposure_set_first
from survey.services.places import every_place_taken, places_release, places_taken


@dataclass
class _Slots:
    """``count`` places to fill with one stimulus each from ``options`` (scene -> the
    stimulus this kind of place would show for that scene)."""

    count: int
    options: dict[int, Stimulus]


def _assign(groups: list[_Slots], uses: dict[int, int], rng: random.Random) -> list[Stimulus]:
    """Fill every place, at most one place per scene, the least exposed stimuli first.

    A minimum-cost assignment (places × scenes): a stimulus ``e`` exposures above the least
    exposed of its group costs ``(n + 1) ** e`` (``n`` places), so one more exposure of an
    already more exposed stimulus outweighs any choice among less exposed ones. Among equally
    exposed stimuli the scenes used least so far (``uses``: scene -> its stimuli's
    exposures, real and AI together) come first: without that the choice is myopic and
    drifts to ±2 (a simulation of 200 participants over 6 to 50 scenes showed it; with it
    every group stays within ±1). A random term smaller than both breaks ties."""
    places = sum(g.count for g in groups)
    scenes = sorted({scene for g in groups for scene in g.options})
    if len(scenes) < places:
        raise NotEnoughScenes(
            f"{counted(len(scenes), 'scene')} prepared, a participant needs "
            f"{counted(places, 'different scene')}"
        )
    column = {scene: j for j, scene in enumerate(scenes)}
    impossible = 1e30
    cost = np.full((places, len(scenes)), impossible)
    least_used = min((uses.get(scene, 0) for scene in scenes), default=0)
    usage = np.array([min(uses.get(scene, 0) - least_used, 3) for scene in scenes], float)
    usage /= 4.0 * places  # all places together: below one exposure level
    noise = 1.0 / (40.0 * places * places)  # all places together: below one usage step
    rows: list[_Slots] = []
    for group in groups:
        if not group.count:
            continue
        if len(group.options) < group.count:
            raise NotEnoughScenes(
                f"{len(group.options)} stimuli of a kind prepared, a participant needs "
                f"{group.count}"
            )
        base = min(s.exposures for s in group.options.values())
        row = np.full(len(scenes), impossible)
        for scene, stimulus in group.options.items():
            j = column[scene]
            level = min(stimulus.exposures - base, 12)
            row[j] = float(places + 1) ** level + usage[j] + noise * rng.random()
        for _ in range(group.count):
            cost[len(rows)] = row
            rows.append(group)
    picked_rows, picked_columns = linear_sum_assignment(cost)
    if (cost[picked_rows, picked_columns] >= impossible).any():
        raise NotEnoughScenes("not enough different scenes for one participant")
    return [rows[i].options[scenes[j]] for i, j in zip(picked_rows, picked_columns)]


def _scene_uses(stimuli: list[Stimulus]) -> dict[int, int]:
    uses: dict[int, int] = {}
    for s in stimuli:
        uses[s.scene_id] = uses.get(s.scene_id, 0) + s.exposures
    return uses


def _pick_between(study: Study, condition: Condition, k: int, rng: random.Random):
    """``k`` of the condition's AI stimuli and ``k`` of its real ones."""
    stimuli = participant_sql.stimuli(condition=condition.pk, role=Stimulus.Role.MAIN)
    ai = {s.scene_id: s for s in stimuli if not s.is_real}
    real = {s.scene_id: s for s in stimuli if s.is_real}
    scenes = ai.keys() & real.keys()
    if len(scenes) < 2 * k:
        raise NotEnoughScenes(
            f"{counted(len(scenes), 'scene')} prepared for condition {condition.label}, "
            f"a participant needs {2 * k}"
        )
    groups = [
        _Slots(k, {scene: ai[scene] for scene in scenes}),
        _Slots(k, {scene: real[scene] for scene in scenes}),
    ]
    return _assign(groups, _scene_uses(stimuli), rng)


def _pick_within(study: Study, k: int, rng: random.Random) -> list[Stimulus]:
    """``k`` AI stimuli spread over the conditions as evenly as possible (the remainder to
    conditions at random), and ``k`` real ones, never a scene twice."""
    conditions = list(study.conditions.all())
    ai: dict[int, dict[int, Stimulus]] = {c.pk: {} for c in conditions}
    main = Stimulus.objects.filter(study=study, role=Stimulus.Role.MAIN)
    for s in main.filter(is_real=False):
        ai[s.condition_id][s.scene_id] = s
    real: dict[int, Stimulus] = {}
    for s in main.filter(is_real=True).order_by("exposures", "?"):
        real.setdefault(s.scene_id, s)  # the least exposed size of each scene
    quotas = {c.pk: k // len(conditions) for c in conditions}
    for c in rng.sample(conditions, k % len(conditions)):
        quotas[c.pk] += 1
    groups = [_Slots(quotas[c.pk], ai[c.pk]) for c in conditions]
    uses = _scene_uses(list(main))
    return _assign([*groups, _Slots(k, real)], uses, rng)


def _pick_practice(
    study: Study,
    condition: Condition | None,
    rng: random.Random,
    role=Stimulus.Role.PRACTICE,
    others: list[Stimulus] | None = None,
):
    """The practice stimuli (or those of ``role``: the instructed checks): every scene of
    the role once, half real and half AI (an odd one out at random), the AI versions from
    the participant's condition (within subjects, a condition at random per scene).
    ``others``: the study's stimuli that are not main ones, if already read."""
    n = study.instructed_checks if role == Stimulus.Role.INSTRUCTED else study.practice_trials
    if not n:
        return []
    if others is None:
        stimuli = list(Stimulus.objects.filter(study=study, role=role))
    else:
        stimuli = [s for s in others if s.role == role]
    scenes = sorted({s.scene_id for s in stimuli})
    reals = [True] * (n // 2) + [False] * (n // 2) + ([rng.random() < 0.5] if n % 2 else [])
    rng.shuffle(reals)
    picked = []
    for scene, real in zip(scenes, reals):
        options = [
            s
            for s in stimuli
            if s.scene_id == scene
            and s.is_real == real
            and (condition is None or s.condition_id in (None, condition.pk))
        ]
        picked.append(rng.choice(options))
    return picked


def _trial_order(
    practice: list[Stimulus], main: list[Stimulus], attention: list[Stimulus], rng
) -> list[Stimulus]:
    """Practice first, then the main trials in a random order with the checks (attention
    and instructed) at random places among them (never first, where a participant is
    still settling)."""
    order = list(main)
    rng.shuffle(order)
    for check in attention:
        order.insert(rng.randint(min(1, len(order)), len(order)), check)
    practice = list(practice)
    rng.shuffle(practice)
    return practice + order


def other_stimuli(study: Study) -> list[Stimulus]:
    """The study's practice, attention and instructed stimuli: what :func:`trial_plan`
    reads besides the main stimuli. Their exposures decide nothing, so a start reads them
    before it takes the study's lock."""
    return participant_sql.stimuli(study=study.pk, role=Stimulus.Role.MAIN, other=True)


def trial_plan(
    *,
    study: Study,
    condition: Condition | None,
    rng: random.Random,
    others: list[Stimulus] | None = None,
) -> list[Stimulus]:
    """The stimuli, in order, of a participant of ``condition`` (None within subjects)
    starting now: the least exposed main stimuli, the practice first, the attention checks
    among the main trials. ``others``: :func:`other_stimuli`, if already read. It only
    reads: :func:`participant_start` records it, a preview shows it."""
    k = study.per_kind
    if condition is not None:
        main = _pick_between(study, condition, k, rng)
    else:
        main = _pick_within(study, k, rng)
    practice = _pick_practice(study, condition, rng, others=others)
    if others is None:
        checks = list(Stimulus.objects.filter(study=study, role=Stimulus.Role.ATTENTION))
    else:
        checks = [s for s in others if s.role == Stimulus.Role.ATTENTION]
    checks += _pick_practice(study, condition, rng, role=Stimulus.Role.INSTRUCTED, others=others)
    return _trial_order(practice, main, checks, rng)


@dataclass(frozen=True)
class Pair:
    """A paired trial (survey.protocols): the fake, the real photograph of the same scene
    and size, and the side the fake is shown on."""

    fake: Stimulus
    real: Stimulus
    fake_side: str

    @property
    def role(self) -> str:
        return self.fake.role


def _sides(n: int, rng: random.Random) -> list[str]:
    """``n`` sides for the fake, half left and half right (an odd one out at random), in
    a random order."""
    left, right = Trial.Side.LEFT, Trial.Side.RIGHT
    sides = [left] * (n // 2) + [right] * (n // 2) + ([rng.choice((left, right))] if n % 2 else [])
    rng.shuffle(sides)
    return sides


def _partners(stimuli: list[Stimulus]) -> dict[tuple, Stimulus]:
    """(condition id, scene id, width, height) -> the real photograph of that scene."""
    return {(s.condition_id, s.scene_id, s.width, s.height): s for s in stimuli if s.is_real}


def _partner(reals: dict[tuple, Stimulus], fake: Stimulus, shared: bool) -> Stimulus:
    key = (None if shared else fake.condition_id, fake.scene_id, fake.width, fake.height)
    real = reals.get(key) or reals.get((None, *key[1:]))
    if real is None:
        raise NotEnoughScenes(f"no real photograph prepared beside the fake image {fake.pk}")
    return real


def pair_plan(*, study: Study, condition: Condition | None, rng: random.Random) -> list[Pair]:
    """The pairs, in order, of a participant of a paired study: ``images_per_participant``
    colourisations (the least exposed, as :func:`trial_plan` chooses them; within subjects
    spread over the conditions), each beside the real photograph of its scene; the practice
    pairs first (every practice scene once); the vigilance pairs (the attention scenes:
    the photograph beside its random colours) and the instructed-response check pairs (a
    reserved scene's pair, "please answer Left" or Right) at random places among the test
    pairs, never first. In each group the fake is on the left in half the pairs and on the
    right in the other half (an odd one out at random), in a random order. It only reads."""
    n = study.images_per_participant
    main = Stimulus.objects.filter(study=study, role=Stimulus.Role.MAIN)
    shared = condition is None
    if condition is not None:
        stimuli = list(main.filter(condition=condition))
        reals = _partners(stimuli)
        fakes = {s.scene_id: s for s in stimuli if not s.is_real}
        fakes = {k: s for k, s in fakes.items() if (condition.pk, k, s.width, s.height) in reals}
        picked = _assign([_Slots(n, fakes)], _scene_uses(stimuli), rng)
    else:
        stimuli = list(main)
        reals = _partners(stimuli)
        conditions = list(study.conditions.all())
        ai: dict[int, dict[int, Stimulus]] = {c.pk: {} for c in conditions}
        for s in stimuli:
            if not s.is_real:
                ai[s.condition_id][s.scene_id] = s
        quotas = {c.pk: n // len(conditions) for c in conditions}
        for c in rng.sample(conditions, n % len(conditions)):
            quotas[c.pk] += 1
        groups = [_Slots(quotas[c.pk], ai[c.pk]) for c in conditions]
        picked = _assign(groups, _scene_uses(stimuli), rng)
    pairs = [
        Pair(fake, _partner(reals, fake, shared), side)
        for fake, side in zip(picked, _sides(len(picked), rng), strict=True)
    ]
    practice = _reserved_pairs(study, condition, Stimulus.Role.PRACTICE, rng)
    vigilance_stimuli = list(Stimulus.objects.filter(study=study, role=Stimulus.Role.ATTENTION))
    vigilance_reals = _partners(vigilance_stimuli)
    vigilance_fakes = sorted(
        (s for s in vigilance_stimuli if not s.is_real), key=lambda s: s.scene_id
    )
    vigilance = [
        Pair(fake, _partner(vigilance_reals, fake, True), side)
        for fake, side in zip(vigilance_fakes, _sides(len(vigilance_fakes), rng), strict=True)
    ]
    instructed = _reserved_pairs(study, condition, Stimulus.Role.INSTRUCTED, rng)
    return _trial_order(practice, pairs, vigilance + instructed, rng)


def _reserved_pairs(
    study: Study, condition: Condition | None, role: str, rng: random.Random
) -> list[Pair]:
    """A paired study's pairs of the scenes reserved for ``role`` (practice, or
    instructed-response checks): each such scene once, its colourisation by the
    participant's condition (within subjects by one at random) beside its real
    photograph, the fake on the left in half of them (an odd one out at random)."""
    stimuli = list(Stimulus.objects.filter(study=study, role=role))
    reals = _partners(stimuli)
    fakes: dict[int, list[Stimulus]] = {}
    for s in stimuli:
        if not s.is_real and (condition is None or s.condition_id == condition.pk):
            fakes.setdefault(s.scene_id, []).append(s)
    picked = [rng.choice(fakes[scene]) for scene in sorted(fakes)]
    return [
        Pair(fake, _partner(reals, fake, condition is None), side)
        for fake, side in zip(picked, _sides(len(picked), rng), strict=True)
    ]


#: What a trial that is not an instructed check asks for: nothing.
NOT_INSTRUCTED = {"instructed_answer": None, "instructed_rating": None}


def instructions(order: list, rng: random.Random, *, rating: bool = False) -> list[dict]:
    """Per trial of ``order`` (stimuli, or pairs: their fake's role counts), what an
    instructed check asks for, as the trial's fields: ``instructed_answer`` Real or AI
    (in a pair the side of that answer), drawn at random and never from the image, so that
    it tells nothing of any image's truth; in a rating study (``rating``) "acr" with
    ``instructed_rating`` a score from 1 to 5 drawn at random. :data:`NOT_INSTRUCTED` for
    the other trials."""
    asked = []
    for s in order:
        if s.role != Stimulus.Role.INSTRUCTED:
            asked.append(NOT_INSTRUCTED)
        elif rating:
            asked.append(
                {"instructed_answer": Trial.Answer.RATED, "instructed_rating": rng.randint(1, 5)}
            )
        else:
            answer = rng.choice((Trial.Answer.REAL, Trial.Answer.AI))
            asked.append({"instructed_answer": answer, "instructed_rating": None})
    return asked


def _resumed(study: Study, prolific_pid: str) -> Participant | None:
    """The participant this PROLIFIC_PID already is (resume), or None; a withdrawn one is
    refused."""
    existing = participant_sql.participant_by_pid(study.pk, prolific_pid)
    if existing is not None and existing.withdrawn_at is not None:
        raise ParticipationError("this participation was withdrawn")
    return existing


def participant_start(
    *,
    study: Study,
    prolific_pid: str | None = None,
    prolific_study_id: str | None = None,
    prolific_session_id: str | None = None,
    user_agent: str = "",
    rng: random.Random | None = None,
) -> Participant:
    """Start (or, for a PROLIFIC_PID already seen, resume) a participation: see the module
    docstring. Raises :class:`StudyNotOpen`, :class:`StudyFull`, :class:`NotEnoughScenes`
    or :class:`ParticipationError` (a withdrawn PROLIFIC_PID).

    The study's lock serialises the starts, so only what decides the assignment runs under
    it: the study's row as locked (status, design, target), the places held, the main
    stimuli's exposures, and the writes. Read before it: a resume (which takes no lock),
    the conditions and the stimuli that are not main ones (fixed once a study opens), and
    whether any place can be released at ``now``: none can later at the same ``now`` (a
    participant's last activity only moves forward), so the locked release is skipped when
    the answer is no, and the places are counted at that ``now``. A start racing another of
    the same PROLIFIC_PID meets the database's constraint: its transaction rolls back and
    it returns the other's participant."""
    rng = rng or random.SystemRandom()
    prolific_pid = (prolific_pid or "").strip() or None
    if prolific_pid is not None:
        existing = _resumed(study, prolific_pid)
        if existing is not None:
            return existing
    now = timezone.now()
    releasable = participant_sql.any_silent(study.pk, now - study.time_limit)
    conditions = list(study.conditions.all())
    others = None if study.paired or study.preference else other_stimuli(study)
    try:
        return _start_locked(
            study=study,
            now=now,
            releasable=releasable,
            conditions=conditions,
            others=others,
            rng=rng,
            fields={
                "prolific_pid": prolific_pid,
                "prolific_study_id": (prolific_study_id or "").strip()[:64] or None,
                "prolific_session_id": (prolific_session_id or "").strip()[:64] or None,
                "user_agent": (user_agent or "")[:500],
            },
        )
    except IntegrityError:
        existing = _resumed(study, prolific_pid) if prolific_pid is not None else None
        if existing is None:
            raise
        return existing


def _start_locked(*, study, now, releasable, conditions, others, rng, fields) -> Participant:
    with transaction.atomic():
        study = participant_sql.study_locked(study.pk)
        if not study.accepting:
            raise StudyNotOpen("this study is not open")
        pilot = study.status == Study.Status.PILOT
        if releasable:
            places_release(study=study, now=now)
        taken = places_taken(study, now, pilot=pilot)
        between = study.design == Study.Design.BETWEEN
        if between and not conditions:
            raise StudyError("the study has no conditions")
        if every_place_taken(study, taken, [c.pk for c in conditions]):
            raise StudyFull("this study has all the participants it needs")
        condition = None
        if between:
            fewest = min(taken.get(c.pk, 0) for c in conditions)
            condition = rng.choice([c for c in conditions if taken.get(c.pk, 0) == fewest])
        if study.preference:
            from survey.preference_protocol import preference_plan  # imports this module

            pairs = preference_plan(study=study, rng=rng)
            order = [p.fake for p in pairs]
        elif study.paired:
            pairs = pair_plan(study=study, condition=condition, rng=rng)
            order = [p.fake for p in pairs]
        else:
            pairs = None
            order = trial_plan(study=study, condition=condition, rng=rng, others=others)
        asked = instructions(order, rng, rating=study.protocol == Study.Protocol.RATING)
        participant = Participant.objects.create(
            is_pilot=pilot, study=study, condition=condition, **fields
        )
        if not pilot:
            shown = [s.pk for s in order] + [p.real.pk for p in pairs or []]
            participant_sql.add(Stimulus, "exposures", shown, 1)
        participant_sql.insert_many(
            Trial,
            [
                {
                    "participant": participant.pk,
                    "position": i,
                    "stimulus": s.pk,
                    "kind": s.role,
                    **instruction,
                    "partner": pairs[i - 1].real.pk if pairs else None,
                    "fake_side": pairs[i - 1].fake_side if pairs else None,
                }
                for i, (s, instruction) in enumerate(zip(order, asked), start=1)
            ],
        )
        if study.hype_time:
            exposure_set_first(participant)
    return participant
