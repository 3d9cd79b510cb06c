"""Writes of the perceptual study (method.md §7): stimulus preparation, assignment at start,
answers and withdrawals.

**Stimuli** (:func:`study_prepare_stimuli`, run by :func:`study_open`). For each condition
the scenes are the test images its run colourised. For each scene the AI version is the
colourised image and the real version is the ground truth brought to the colourised image's
size (unchanged when the sizes match; for a square output :func:`resize_square`, shorter
side scaled and the centred square kept, as a trained model saw it; else scaled to cover
and centre-cropped). Both are decoded to 8-bit RGB, copied into a fresh image (so that no
EXIF, ICC profile, text chunk or other metadata survives) and encoded identically
(:data:`STIMULUS_FORMAT`: baseline JPEG, quality 92, 4:4:4, ``optimize=False``), then
stored under ``stimuli/<32 random hex digits>.jpg``. Between subjects each condition has
its own real versions (its 2×2 table is then balanced on its own, and the real versions
have its outputs' size); within subjects one real version per scene and size is shared by
the conditions (``condition`` None).

**Practice and attention checks.** ``practice_trials + attention_checks`` scenes that every
condition colourised are drawn at random and reserved: they are never main trials. Each
practice scene gets a real and an AI version (as above); each attention scene one
colour-inverted photograph (``is_real`` False). Stimulus files are stored as encoded; the
largest length is kept as ``Study.stimulus_bytes`` and every image is *served* padded to it
(zero bytes after the JPEG's end marker), so that response sizes tell nothing.

**Assignment** (:func:`participant_start`), in one transaction holding the study's row lock
(``SELECT … FOR UPDATE``), so concurrent starts are serialised and never read the same
exposure counts: between subjects, the condition with the fewest started, not withdrawn
participants (ties at random); then ``k`` AI and ``k`` real stimuli (``k`` = half the
images per participant), never the same scene twice, the least exposed first (ties at
random), chosen jointly as a minimum-cost assignment (:func:`_assign`), which keeps the
exposures of each condition's AI stimuli and of the real stimuli within ±1 (a greedy
choice, AI first then real from the scenes left, does not). Exposures are incremented and
the trials created: the practice trials first (every practice scene, half real, half AI),
then the main trials in a random order with the attention checks at random places among
them (never first). A start with a PROLIFIC_PID already seen returns that
participant (resume), never a second one (a database constraint backs this up).

**Answers** (:func:`trial_answer`) are stored once, under the participant's row lock: a
repeated or concurrent answer to an answered trial returns the stored one unchanged.
"""

from __future__ import annotations

import io
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from PIL import Image, ImageOps
from scipy.optimize import linear_sum_assignment

from colourmodels.data.images import load_rgb, resize_square
from survey.models import TEXT_FIELDS, Condition, Participant, Stimulus, Study, Trial, Withdrawal
from worker.models import ColourisedImage, DatasetImage, ModelRun

STIMULI_FOLDER = "stimuli"
#: How every stimulus is encoded (both versions of a scene alike).
STIMULUS_FORMAT = {
    "format": "JPEG",
    "quality": 92,
    "subsampling": 0,  # 4:4:4: chroma kept at full resolution, colour is what is judged
    "optimize": False,
    "progressive": False,
}
STIMULUS_EXTENSION = ".jpg"
#: Response times above this are refused as implausible (a tab left open: one hour).
MAX_RT_MS = 3_600_000


class StudyError(Exception):
    """Something about the study prevents the action; the message says what."""


class StudyNotOpen(StudyError):
    pass


class StudyFull(StudyError):
    pass


class NotEnoughScenes(StudyError):
    pass


class ParticipationError(StudyError):
    """The participant cannot (any more) take part: withdrawn, completed, unknown."""


class TrialError(StudyError):
    """An answer that cannot be stored: no such trial, out of order, bad value."""


# --------------------------------------------------------------------------------------
# Studies and stimuli
# --------------------------------------------------------------------------------------


def study_create(
    *,
    name: str,
    runs: Sequence[ModelRun],
    labels: Sequence[str] | None = None,
    design: str = Study.Design.BETWEEN,
    images_per_participant: int = 24,
    target_participants_per_condition: int = 104,
    user=None,
    **fields,
) -> Study:
    """A draft study with one condition per run (labelled by ``labels`` or the runs'
    names). Other ``fields`` (texts, exposure time, redirect URL...) go to the study."""
    if not runs:
        raise StudyError("a study needs at least one run")
    if labels is not None and len(labels) != len(runs):
        raise StudyError("one label per run")
    if images_per_participant < 2 or images_per_participant % 2:
        raise StudyError("images per participant must be even (half real, half AI) and ≥ 2")
    with transaction.atomic():
        study = Study.objects.create(
            name=name,
            design=design,
            images_per_participant=images_per_participant,
            target_participants_per_condition=target_participants_per_condition,
            created_by=user,
            **fields,
        )
        for i, run in enumerate(runs):
            Condition.objects.create(
                study=study, run=run, label=labels[i] if labels else run.name[:100]
            )
    return study


def study_update(
    *, study: Study, fields: dict, runs: Sequence[ModelRun] | None = None, labels=None
) -> Study:
    """Change a study. A draft may change anything (its conditions are rebuilt from
    ``runs`` and stimuli prepared earlier are dropped, to be prepared again at opening); an
    opened study only the fields that do not change what participants are shown."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        draft = study.status == Study.Status.DRAFT
        for name, value in fields.items():
            if not draft and name not in TEXT_FIELDS:
                raise StudyError(f"{name} cannot change once the study has opened")
            setattr(study, name, value)
        study.full_clean(exclude=["created_by"])
        study.save()
        if draft:
            old = list(study.stimuli.values_list("file", flat=True))
            study.stimuli.all().delete()
            transaction.on_commit(lambda: [default_storage.delete(n) for n in old])
            if runs is not None:
                if not runs:
                    raise StudyError("a study needs at least one run")
                study.conditions.all().delete()
                for i, run in enumerate(runs):
                    Condition.objects.create(
                        study=study, run=run, label=labels[i] if labels else run.name[:100]
                    )
    return study


def stimulus_encode(image: Image.Image) -> bytes:
    """``image`` as a stimulus file: RGB, no metadata, :data:`STIMULUS_FORMAT`."""
    clean = Image.frombytes("RGB", image.size, image.convert("RGB").tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, **STIMULUS_FORMAT)
    return buffer.getvalue()


def fit_to(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` brought to ``size`` (width, height) as the colourised version was."""
    if image.size == size:
        return image
    if size[0] == size[1]:
        return resize_square(image, size[0])
    return ImageOps.fit(image, size, method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))


def _open_rgb(name: str) -> Image.Image:
    with default_storage.open(name, "rb") as f:
        return load_rgb(f, name="stored image")


def _store(data: bytes, written: list[str]) -> str:
    name = f"{STIMULI_FOLDER}/{secrets.token_hex(16)}{STIMULUS_EXTENSION}"
    stored = default_storage.save(name, ContentFile(data))
    written.append(stored)
    return stored


def _condition_outputs(condition: Condition) -> list[ColourisedImage]:
    return list(
        ColourisedImage.objects.filter(
            run=condition.run, source__split=DatasetImage.Split.TEST
        ).select_related("source")
    )


def _reserve_scenes(
    study: Study, outputs: dict[int, dict[int, ColourisedImage]], rng: random.Random
) -> tuple[list[int], list[int]]:
    """(practice scenes, attention scenes): scenes every condition colourised, drawn at
    random and taken out of the main pool."""
    wanted = study.reserved_scenes
    if not wanted:
        return [], []
    common = sorted(set.intersection(*(set(by_scene) for by_scene in outputs.values())))
    if len(common) < wanted:
        raise NotEnoughScenes(
            f"{study.practice_trials} practice trials and {study.attention_checks} attention "
            f"checks need {wanted} scenes that every run colourised; there are {len(common)}"
        )
    reserved = rng.sample(common, wanted)
    return reserved[: study.practice_trials], reserved[study.practice_trials :]


def attention_image(photo: Image.Image) -> Image.Image:
    """An obviously fake image: the photograph with its colours inverted."""
    return ImageOps.invert(photo.convert("RGB"))


def study_prepare_stimuli(*, study: Study, rng: random.Random | None = None) -> int:
    """Encode and store the stimuli of every condition (see the module docstring); returns
    how many were created. Refused once the study has participants; earlier stimuli (a
    previous preparation of this draft) are replaced. Sets ``study.stimulus_bytes`` to the
    largest file's length: every stimulus is served padded to it."""
    rng = rng or random.SystemRandom()
    conditions = list(study.conditions.select_related("run"))
    if not conditions:
        raise StudyError("the study has no conditions")
    if study.participants.exists():
        raise StudyError("the study already has participants; its stimuli are fixed")
    needed = study.images_per_participant
    for condition in conditions:
        if condition.run.status != ModelRun.Status.DONE:
            raise StudyError(f"run {condition.run} is not finished ({condition.run.status})")
    outputs = {c.pk: {o.source_id: o for o in _condition_outputs(c)} for c in conditions}
    practice, attention = _reserve_scenes(study, outputs, rng)
    reserved = {*practice, *attention}
    roles = {scene: Stimulus.Role.PRACTICE for scene in practice}
    written: list[str] = []
    largest = 0

    def create(**fields) -> None:
        nonlocal largest
        image = fields.pop("image")
        data = stimulus_encode(image)
        largest = max(largest, len(data))
        Stimulus.objects.create(
            study=study,
            file=_store(data, written),
            width=image.size[0],
            height=image.size[1],
            **fields,
        )

    try:
        with transaction.atomic():
            old = list(study.stimuli.values_list("file", flat=True))
            study.stimuli.all().delete()
            transaction.on_commit(lambda: [default_storage.delete(n) for n in old])
            shared = study.design == Study.Design.WITHIN
            real_done: set[tuple[int | None, int, int, int]] = set()
            main_scenes: set[int] = set()
            for condition in conditions:
                by_scene = outputs[condition.pk]
                main = [scene for scene in by_scene if scene not in reserved]
                if not shared and len(main) < needed:
                    raise NotEnoughScenes(
                        f"condition {condition.label}: its run colourised {len(by_scene)} "
                        f"test images ({len(reserved)} reserved for practice and attention "
                        f"checks); a participant needs {needed} different scenes"
                    )
                main_scenes.update(main)
                for scene, output in sorted(by_scene.items()):
                    if scene in attention:
                        continue
                    role = roles.get(scene, Stimulus.Role.MAIN)
                    ai_image = _open_rgb(output.file)
                    key = (None if shared else condition.pk, scene, *ai_image.size)
                    if key not in real_done:
                        real_done.add(key)
                        create(
                            image=fit_to(_open_rgb(output.source.file), ai_image.size),
                            condition=None if shared else condition,
                            scene=output.source,
                            is_real=True,
                            role=role,
                        )
                    create(
                        image=ai_image,
                        condition=condition,
                        scene=output.source,
                        is_real=False,
                        role=role,
                    )
            if shared and len(main_scenes) < needed:
                raise NotEnoughScenes(
                    f"the runs colourised {len(main_scenes) + len(reserved)} different test "
                    f"images ({len(reserved)} reserved for practice and attention checks); a "
                    f"participant needs {needed} different scenes"
                )
            for scene in attention:
                output = outputs[conditions[0].pk][scene]
                size = _open_rgb(output.file).size
                create(
                    image=attention_image(fit_to(_open_rgb(output.source.file), size)),
                    condition=None,
                    scene=output.source,
                    is_real=False,
                    role=Stimulus.Role.ATTENTION,
                )
            study.stimulus_bytes = largest
            study.preparation_error = ""
            study.save(update_fields=["stimulus_bytes", "preparation_error"])
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise
    return study.stimuli.count()


def study_open(*, study: Study) -> Study:
    """Prepare the stimuli (first opening only) and open the study to participants."""
    if study.status == Study.Status.OPEN:
        return study
    if not study.stimuli.exists():
        study_prepare_stimuli(study=study)
    study.status = Study.Status.OPEN
    study.opened_at = study.opened_at or timezone.now()
    study.save(update_fields=["status", "opened_at"])
    return study


def study_request_open(*, study: Study, open_after: bool = True) -> Study:
    """Open ``study``: at once if its stimuli exist, else mark it preparing and leave the
    preparation to a worker (``cpu.prepare_study``, which opens it when done). With
    ``open_after`` False the stimuli are prepared (for a preview) and the study stays a
    draft."""
    from survey.tasks import prepare_study

    if study.status == Study.Status.OPEN:
        return study
    if study.stimuli.exists() and open_after:
        return study_open(study=study)
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if locked.status == Study.Status.PREPARING:
            return locked
        if locked.status != Study.Status.DRAFT and not open_after:
            raise StudyError("only a draft's stimuli can be prepared again")
        locked.status = Study.Status.PREPARING
        locked.preparation_error = ""
        locked.save(update_fields=["status", "preparation_error"])
        transaction.on_commit(lambda: prepare_study.delay(locked.pk, open_after))
    return locked


def study_prepare_and_open(*, study_id: int, open_after: bool = True) -> None:
    """The worker's side of :func:`study_request_open`. A failure puts the study back to
    draft with the reason in ``preparation_error``."""
    study = Study.objects.get(pk=study_id)
    if study.status != Study.Status.PREPARING:
        return  # closed or reverted meanwhile, or a duplicate delivery
    try:
        if open_after:
            study_open(study=study)
        else:
            study_prepare_stimuli(study=study)
            Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
    except StudyError as exc:
        Study.objects.filter(pk=study.pk).update(
            status=Study.Status.DRAFT, preparation_error=str(exc)
        )
    except Exception as exc:
        Study.objects.filter(pk=study.pk).update(
            status=Study.Status.DRAFT,
            preparation_error=f"preparing the stimuli failed: {type(exc).__name__}: {exc}",
        )
        raise


def study_close(*, study: Study) -> Study:
    study.status = Study.Status.CLOSED
    study.closed_at = timezone.now()
    study.save(update_fields=["status", "closed_at"])
    return study


# --------------------------------------------------------------------------------------
# Assignment
# --------------------------------------------------------------------------------------


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
            f"{len(scenes)} scenes prepared, a participant needs {places} different scenes"
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
    stimuli = list(Stimulus.objects.filter(condition=condition, role=Stimulus.Role.MAIN))
    ai = {s.scene_id: s for s in stimuli if not s.is_real}
    real = {s.scene_id: s for s in stimuli if s.is_real}
    scenes = ai.keys() & real.keys()
    if len(scenes) < 2 * k:
        raise NotEnoughScenes(
            f"{len(scenes)} scenes prepared for condition {condition.label}, "
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


def _pick_practice(study: Study, condition: Condition | None, rng: random.Random):
    """The practice stimuli: every practice scene once, half real and half AI (an odd one
    out at random), the AI versions from the participant's condition (within subjects, a
    condition at random per scene)."""
    n = study.practice_trials
    if not n:
        return []
    stimuli = list(Stimulus.objects.filter(study=study, role=Stimulus.Role.PRACTICE))
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
    """Practice first, then the main trials in a random order with the attention checks
    at random places among them (never first, where a participant is still settling)."""
    order = list(main)
    rng.shuffle(order)
    for check in attention:
        order.insert(rng.randint(min(1, len(order)), len(order)), check)
    practice = list(practice)
    rng.shuffle(practice)
    return practice + order


def trial_plan(*, study: Study, condition: Condition | None, rng: random.Random) -> list[Stimulus]:
    """The stimuli, in order, of a participant of ``condition`` (None within subjects)
    starting now: the least exposed main stimuli, the practice first, the attention checks
    among the main trials. It only reads: :func:`participant_start` records it, a preview
    shows it."""
    k = study.per_kind
    if condition is not None:
        main = _pick_between(study, condition, k, rng)
    else:
        main = _pick_within(study, k, rng)
    practice = _pick_practice(study, condition, rng)
    attention = list(Stimulus.objects.filter(study=study, role=Stimulus.Role.ATTENTION))
    return _trial_order(practice, main, attention, rng)


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
    or :class:`ParticipationError` (a withdrawn PROLIFIC_PID)."""
    rng = rng or random.SystemRandom()
    prolific_pid = (prolific_pid or "").strip() or None
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if prolific_pid is not None:
            existing = Participant.objects.filter(study=study, prolific_pid=prolific_pid).first()
            if existing is not None:
                if existing.withdrawn_at is not None:
                    raise ParticipationError("this participation was withdrawn")
                return existing
        if study.status != Study.Status.OPEN:
            raise StudyNotOpen("this study is not open")
        target = study.target_participants_per_condition
        if study.design == Study.Design.BETWEEN:
            counts = list(
                study.conditions.annotate(
                    n=Count("participants", filter=Q(participants__withdrawn_at__isnull=True))
                )
            )
            if not counts:
                raise StudyError("the study has no conditions")
            fewest = min(c.n for c in counts)
            if fewest >= target:
                raise StudyFull("this study has all the participants it needs")
            condition = rng.choice([c for c in counts if c.n == fewest])
        else:
            active = study.participants.filter(withdrawn_at__isnull=True).count()
            if active >= target:
                raise StudyFull("this study has all the participants it needs")
            condition = None
        order = trial_plan(study=study, condition=condition, rng=rng)
        participant = Participant.objects.create(
            study=study,
            condition=condition,
            prolific_pid=prolific_pid,
            prolific_study_id=(prolific_study_id or "").strip()[:64] or None,
            prolific_session_id=(prolific_session_id or "").strip()[:64] or None,
            user_agent=(user_agent or "")[:500],
        )
        Stimulus.objects.filter(pk__in=[s.pk for s in order]).update(exposures=F("exposures") + 1)
        Trial.objects.bulk_create(
            Trial(participant=participant, position=i, stimulus=s, kind=s.role)
            for i, s in enumerate(order, start=1)
        )
    return participant


# --------------------------------------------------------------------------------------
# Trials
# --------------------------------------------------------------------------------------


def _locked_participant(participant: Participant) -> Participant:
    locked = Participant.objects.select_for_update().get(pk=participant.pk)
    if locked.withdrawn_at is not None:
        raise ParticipationError("this participation was withdrawn")
    return locked


def trial_mark_shown(*, participant: Participant, position: int) -> Trial:
    """Record when the trial's image was first displayed (later calls keep the first)."""
    trial = Trial.objects.filter(participant=participant, position=position).first()
    if trial is None:
        raise TrialError(f"there is no trial {position}")
    if trial.shown_at is None:
        now = timezone.now()
        if Trial.objects.filter(pk=trial.pk, shown_at__isnull=True).update(shown_at=now):
            trial.shown_at = now
        else:
            trial.refresh_from_db(fields=["shown_at"])
    return trial


def trial_answer(*, participant: Participant, position: int, answer: str, rt_ms: int) -> Trial:
    """Store the answer to trial ``position`` once. A repeated (or concurrent) answer to an
    answered trial returns the stored trial unchanged. The last answer completes the
    participation. A newly stored answer's trial carries ``following``: the next trial
    (None after the last), marked shown in the same transaction, so that the caller needs
    no further query to send it. Raises :class:`TrialError` for an unknown trial, an answer
    out of order or a bad value, :class:`ParticipationError` for a withdrawn participant."""
    if answer not in Trial.Answer.values:
        raise TrialError(f"the answer must be one of {', '.join(Trial.Answer.values)}")
    if isinstance(rt_ms, bool) or not isinstance(rt_ms, int) or not 0 <= rt_ms <= MAX_RT_MS:
        raise TrialError(f"the response time must be a whole number of ms in [0, {MAX_RT_MS}]")
    with transaction.atomic():
        locked = _locked_participant(participant)
        # One read: the trial at ``position`` and the first unanswered ones (which decide
        # whether this answer is in order and whether it completes the participation).
        rows = list(
            Trial.objects.filter(participant=locked)
            .filter(Q(answer__isnull=True) | Q(position=position))
            .select_related("stimulus")
            .order_by("position")[:2]
        )
        trial = next((t for t in rows if t.position == position), None)
        first_open = next((t for t in rows if t.answer is None), None)
        if trial is None:
            if first_open is not None and first_open.position < position:
                raise TrialError(f"trial {position} answered before an earlier trial")
            raise TrialError(f"there is no trial {position}")
        if trial.answer is not None:
            return trial
        if locked.completed_at is not None:
            raise TrialError("this participation is already complete")
        if first_open.position < position:
            raise TrialError(f"trial {position} answered before an earlier trial")
        now = timezone.now()
        trial.answer = answer
        trial.rt_ms = rt_ms
        trial.answered_at = now
        trial.save(update_fields=["answer", "rt_ms", "answered_at"])
        following = next((t for t in rows if t.answer is None and t.position != position), None)
        fields = {"last_active_at": now}
        if following is None:
            fields["completed_at"] = now
            participant.completed_at = now
        else:  # the next trial is on its way to the browser: its display time starts now
            Trial.objects.filter(pk=following.pk, shown_at__isnull=True).update(shown_at=now)
        Participant.objects.filter(pk=locked.pk).update(**fields)
    trial.following = following
    return trial


# --------------------------------------------------------------------------------------
# Withdrawal
# --------------------------------------------------------------------------------------


def participant_withdraw(
    *,
    study: Study,
    public_id: str | None = None,
    prolific_pid: str | None = None,
    by=None,
    reason: str = "",
) -> Withdrawal:
    """Withdraw one participant's data on request (by public id or PROLIFIC_PID): their
    trials are deleted, their stimuli's exposures given back, the browser's user agent and
    Prolific study/session ids erased, and the withdrawal logged. The participant row stays,
    marked withdrawn, so that the same PROLIFIC_PID cannot take the study again."""
    if (public_id is None) == (prolific_pid is None):
        raise ParticipationError("give either the participant id or the PROLIFIC_PID")
    with transaction.atomic():
        Study.objects.select_for_update().get(pk=study.pk)  # no start reads exposures meanwhile
        lookup = (
            {"public_id": public_id} if public_id is not None else {"prolific_pid": prolific_pid}
        )
        participant = Participant.objects.select_for_update().filter(study=study, **lookup).first()
        if participant is None:
            raise ParticipationError("no such participant in this study")
        if participant.withdrawn_at is not None:
            raise ParticipationError("this participant was already withdrawn")
        shown = list(participant.trials.values_list("stimulus_id", flat=True))  # each once
        Stimulus.objects.filter(pk__in=shown).update(exposures=F("exposures") - 1)
        removed, _ = participant.trials.all().delete()
        participant.withdrawn_at = timezone.now()
        participant.user_agent = ""
        participant.prolific_study_id = None
        participant.prolific_session_id = None
        participant.save(
            update_fields=[
                "withdrawn_at",
                "user_agent",
                "prolific_study_id",
                "prolific_session_id",
            ]
        )
        return Withdrawal.objects.create(
            study=study,
            participant_public_id=participant.public_id,
            prolific_pid=participant.prolific_pid or "",
            trials_removed=removed,
            reason=reason,
            withdrawn_by=by,
        )
