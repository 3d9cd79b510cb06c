"""Stimuli of a study (method.md §7): their preparation, and opening a study once they
exist.

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

**Practice and checks.** ``practice_trials + attention_checks + instructed_checks`` scenes
that every condition colourised are drawn at random and reserved: they are never main
trials. Each practice and each instructed-check scene gets a real and an AI version (as
above: an instructed check shows an ordinary image); each attention scene one
colour-inverted photograph (``is_real`` False); in a paired study (survey.protocols) an
attention scene is a vigilance pair instead: the photograph (``is_real`` True) and the
photograph with random colours (:func:`vigilance_image`), both without condition. A
paired study's pairs are the real and AI versions of one scene, prepared as above (the
same size, the same encoding). A preference study (survey.preference_protocol) has no
real versions: only the runs' outputs of the photographs every run colourised, each
photograph's brought to one size (:func:`~survey.preference_protocol.preference_sizes`,
the smallest of them, by :func:`fit_to`). Stimulus files are stored as encoded (JPEG);
a participant is served their pixels uncompressed (survey.participation.served_image), padded
to the study's longest, kept as ``Study.stimulus_bytes``, so that response sizes tell
nothing (a compressed file's length would follow its content).
"""

from __future__ import annotations

import functools
import io
import random
import secrets
import time
import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageOps

from colourmodels.data.images import load_rgb, resize_square
from studyplatform.words import counted
from survey.models import Condition, Stimulus, Study
from survey.preference_protocol import preference_settings_problems, preference_sizes
from survey.services.errors import NotEnoughScenes, StudyError
from survey.services.preregistration import preregistration_freeze
from survey.services.studies import study_open
from worker.models import ColourisedImage, DatasetImage, ModelRun
from worker.services.claims import ClaimFields, ClaimLost, RowClaim, claim, discard_files
from worker.services.recovery import work_send

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
#: The study's fields that hold a worker's claim on its preparation.
PREPARATION_CLAIM = ClaimFields(
    token="preparation_token",
    attempts="preparation_attempts",
    worker="preparation_worker",
    heartbeat="preparation_heartbeat_at",
)
#: A preparing worker writes its heartbeat at most this often (seconds).
_BEAT_SECONDS = 2.0


def _bare_rgb(image: Image.Image) -> Image.Image:
    """``image``'s RGB pixels alone: no metadata (EXIF, ICC profile, comments) goes on."""
    return Image.frombytes("RGB", image.size, image.convert("RGB").tobytes())


def stimulus_encode(image: Image.Image) -> bytes:
    """``image`` as a stimulus file: RGB, no metadata, :data:`STIMULUS_FORMAT`."""
    buffer = io.BytesIO()
    _bare_rgb(image).save(buffer, **STIMULUS_FORMAT)
    return buffer.getvalue()


def pixels_png(image: Image.Image) -> bytes:
    """``image``'s RGB pixels as a PNG stored without compression (no metadata), as a
    participant is served a stimulus (survey.participation.served_image): its length
    depends on its width and height alone. A compressed file's length follows its content,
    and a real photograph's JPEG is larger than its colourisation's (the colourisations are
    smoother: in every scene of the demo), so a participant comparing a pair's two lengths
    in the browser's developer tools would know which is real, padding or not (the padded
    JPEG's end marker shows where its data end)."""
    buffer = io.BytesIO()
    _bare_rgb(image).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


@functools.lru_cache(maxsize=256)
def served_length(width: int, height: int) -> int:
    """The length of :func:`pixels_png` for any image of this size."""
    return len(pixels_png(Image.new("RGB", (width, height))))


#: The longest side of a stimulus, in pixels: a participant is sent its pixels uncompressed
#: (survey.participation.served_image), 786 kB at 512 × 512; a larger image (an uploaded
#: run's outputs at a photograph's own size) is brought down to it, its photograph alike.
STIMULUS_MAX_SIDE = 512


def at_most(image: Image.Image, side: int) -> Image.Image:
    """``image`` scaled down (Lanczos, its aspect kept) so that its longer side is at most
    ``side``; as it is when it fits. Images of one size come out of one size."""
    width, height = image.size
    if max(width, height) <= side:
        return image
    scale = side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


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


def _attempt_prefix(token: uuid.UUID) -> str:
    """The first 16 of a stimulus file's 32 hex digits: those of the attempt that wrote it
    (random too; participants never see the files' names)."""
    return token.hex[:16]


def _store(data: bytes, written: list[str], prefix: str = "") -> str:
    random_part = secrets.token_hex(16 - len(prefix) // 2)
    name = f"{STIMULI_FOLDER}/{prefix}{random_part}{STIMULUS_EXTENSION}"
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
) -> tuple[list[int], list[int], list[int]]:
    """(practice scenes, attention scenes, instructed-check scenes): scenes every condition
    colourised, drawn at random and taken out of the main pool."""
    wanted = study.reserved_scenes
    if not wanted:
        return [], [], []
    common = sorted(set.intersection(*(set(by_scene) for by_scene in outputs.values())))
    if len(common) < wanted:
        raise NotEnoughScenes(
            f"{_extras(study.practice_trials, study.attention_checks, study.instructed_checks)}"
            f" need {counted(wanted, 'scene')} that every run colourised; there are {len(common)}"
        )
    reserved = rng.sample(common, wanted)
    practice, checks = study.practice_trials, study.practice_trials + study.attention_checks
    return reserved[:practice], reserved[practice:checks], reserved[checks:]


def _extras(practice_trials: int, attention_checks: int, instructed_checks: int) -> str:
    parts = [
        counted(practice_trials, "practice trial", "practice trials"),
        counted(attention_checks, "attention check", "attention checks"),
    ]
    if instructed_checks:
        parts.append(counted(instructed_checks, "instructed check", "instructed checks"))
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def scene_shortfall(
    *,
    design: str,
    scenes_by_run: dict[str, set[int]],
    images_per_participant: int,
    practice_trials: int,
    attention_checks: int,
    instructed_checks: int = 0,
    paired: bool = False,
) -> str | None:
    """Why :func:`study_prepare_stimuli` would refuse these settings for runs that colourised
    ``scenes_by_run`` (a run's name: its test scenes), in words with the numbers; None if it
    would not. The same rules: reserved scenes come from those every run colourised; between
    subjects each run needs enough of its own scenes besides them, within subjects the runs
    together."""
    if not scenes_by_run:
        return None
    reserved = practice_trials + attention_checks + instructed_checks
    extras = _extras(practice_trials, attention_checks, instructed_checks)
    these = "this run" if len(scenes_by_run) == 1 else "these runs"
    common = set.intersection(*scenes_by_run.values())
    if len(common) < reserved:
        return (
            f"{these} colourised {counted(len(common), 'test image', 'test images')} in common; "
            f"{extras} need {reserved}"
        )
    half = images_per_participant // 2
    needed = images_per_participant + reserved
    if paired:  # a pair shows one scene's real and AI versions
        per_participant = (
            f"{counted(images_per_participant, 'pair', 'pairs')} per participant (each the "
            "real and the AI version of one scene)"
        )
    else:
        per_participant = (
            f"{images_per_participant} images per participant ({half} real + {half} AI of "
            "different scenes)"
        )
    need = f"{per_participant} plus {extras} need {needed}"
    if design == Study.Design.WITHIN:
        union = set.union(*scenes_by_run.values())
        if len(union) < needed:
            images = counted(len(union), "different test image", "different test images")
            return f"{these} colourised {images}; {need}"
        return None
    for name, scenes in scenes_by_run.items():
        if len(scenes) < needed:
            images = counted(len(scenes), "test image", "test images")
            return f"run {name} colourised {images}; {need}"
    return None


def attention_image(photo: Image.Image) -> Image.Image:
    """An obviously fake image: the photograph with its colours inverted."""
    return ImageOps.invert(photo.convert("RGB"))


def vigilance_image(photo: Image.Image, rng: random.Random) -> Image.Image:
    """A paired study's obvious fake: the photograph with random colours, its hue turned
    by an angle drawn uniformly between 90° and 270° (HSV; saturation and brightness kept,
    so the picture is the same and only its colours are wrong)."""
    shift = round(rng.uniform(90, 270) / 360 * 256) % 256
    h, s, v = photo.convert("RGB").convert("HSV").split()
    h = h.point(lambda x: (x + shift) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def study_prepare_stimuli(
    *, study: Study, rng: random.Random | None = None, attempt: RowClaim | None = None
) -> int:
    """Encode and store the stimuli of every condition (see the module docstring); returns
    how many were created. Refused once the study has participants; earlier stimuli (a
    previous preparation of this draft) are replaced. Sets ``study.stimulus_bytes`` to the
    longest served image's length: every stimulus is served padded to it.

    The files are written first, then the rows in one transaction. A worker's ``attempt``
    (its claim on the study) names the files (so that what a killed attempt left can be
    found: :func:`stimuli_discard_attempt`), is kept alive by heartbeats between files, and
    must still hold when the rows are written (else :class:`ClaimLost`, and no row)."""
    rng = rng or random.SystemRandom()
    conditions = list(study.conditions.select_related("run"))
    if not conditions:
        raise StudyError("the study has no conditions")
    if study.participants.exists():
        raise StudyError("the study already has participants; its stimuli are fixed")
    preference = study.preference
    if preference:
        problems = preference_settings_problems(
            runs=len(conditions),
            design=study.design,
            practice_trials=study.practice_trials,
            attention_checks=study.attention_checks,
        )
        if problems:
            raise StudyError(" ".join(problems.values()))
    if study.protocol == Study.Protocol.RATING and study.attention_checks:
        # survey.rating_protocol: a rating has no right answer; instructed checks only
        raise StudyError("a rating study has no colour-inverted attention checks")
    needed = study.images_per_participant
    for condition in conditions:
        if condition.run.status != ModelRun.Status.DONE:
            raise StudyError(f"run {condition.run} is not finished ({condition.run.status})")
    outputs = {c.pk: {o.source_id: o for o in _condition_outputs(c)} for c in conditions}
    practice, attention, instructed = _reserve_scenes(study, outputs, rng)
    if preference:  # the photographs every run colourised, each at one size
        common = set.intersection(*(set(by_scene) for by_scene in outputs.values()))
        sizes = preference_sizes(
            {
                scene: [_open_rgb(outputs[c.pk][scene].file).size for c in conditions]
                for scene in common
            }
        )
    reserved = {*practice, *attention, *instructed}
    roles = {scene: Stimulus.Role.PRACTICE for scene in practice}
    roles.update({scene: Stimulus.Role.INSTRUCTED for scene in instructed})
    prefix = _attempt_prefix(attempt.token) if attempt else ""
    written: list[str] = []
    rows: list[Stimulus] = []
    largest = 0
    last_beat = time.monotonic()

    def create(**fields) -> None:
        nonlocal largest, last_beat
        image = at_most(fields.pop("image"), STIMULUS_MAX_SIDE)
        data = stimulus_encode(image)
        largest = max(largest, served_length(*image.size))
        rows.append(
            Stimulus(
                study=study,
                file=_store(data, written, prefix),
                width=image.size[0],
                height=image.size[1],
                **fields,
            )
        )
        if attempt and time.monotonic() - last_beat > _BEAT_SECONDS:
            attempt.beat()
            last_beat = time.monotonic()

    try:
        shared = study.design == Study.Design.WITHIN
        real_done: set[tuple[int | None, int, int, int]] = set()
        main_scenes: set[int] = set()
        for condition in conditions:
            by_scene = outputs[condition.pk]
            main = [
                scene
                for scene in by_scene
                if scene not in reserved and (not preference or scene in common)
            ]
            if not shared and len(main) < needed:
                raise NotEnoughScenes(
                    f"condition {condition.label}: its run colourised {len(by_scene)} "
                    f"test images ({len(reserved)} reserved for practice and checks); "
                    f"a participant needs {needed} different scenes"
                )
            main_scenes.update(main)
            for scene, output in sorted(by_scene.items()):
                if scene in attention or (preference and scene not in common):
                    continue
                role = roles.get(scene, Stimulus.Role.MAIN)
                ai_image = _open_rgb(output.file)
                if preference:
                    ai_image = fit_to(ai_image, sizes[scene])
                key = (None if shared else condition.pk, scene, *ai_image.size)
                if not preference and key not in real_done:
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
                f"images ({len(reserved)} reserved for practice and checks); a "
                f"participant needs {needed} different scenes"
            )
        for scene in attention:
            output = outputs[conditions[0].pk][scene]
            size = _open_rgb(output.file).size
            photo = fit_to(_open_rgb(output.source.file), size)
            if study.paired:  # a vigilance pair: the photograph beside its random colours
                create(
                    image=photo,
                    condition=None,
                    scene=output.source,
                    is_real=True,
                    role=Stimulus.Role.ATTENTION,
                )
            create(
                image=vigilance_image(photo, rng) if study.paired else attention_image(photo),
                condition=None,
                scene=output.source,
                is_real=False,
                role=Stimulus.Role.ATTENTION,
            )
        with transaction.atomic():
            if attempt:
                attempt.hold()
            if study.participants.exists():
                raise StudyError("the study already has participants; its stimuli are fixed")
            old = list(study.stimuli.values_list("file", flat=True))
            study.stimuli.all().delete()
            transaction.on_commit(lambda: [default_storage.delete(n) for n in old])
            Stimulus.objects.bulk_create(rows)
            study.stimulus_bytes = largest
            study.preparation_error = ""
            study.save(update_fields=["stimulus_bytes", "preparation_error"])
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise
    return study.stimuli.count()


def stimuli_discard_attempt(*, token: uuid.UUID) -> list[str]:
    """Delete the files that the preparation attempt ``token`` wrote and that no stimulus
    uses (a killed attempt's: its rows were never written). Returns their names."""
    prefix = f"{STIMULI_FOLDER}/{_attempt_prefix(token)}"
    kept = Stimulus.objects.filter(file__startswith=prefix).values_list("file", flat=True)
    return discard_files(STIMULI_FOLDER, prefix=_attempt_prefix(token), keep=set(kept))


def preparation_discard_attempt(study: Study, token: uuid.UUID) -> None:
    """After the commit, the files of the lost preparation attempt ``token`` are deleted."""
    transaction.on_commit(lambda: stimuli_discard_attempt(token=token))


def study_request_open(*, study: Study, open_after: bool = True) -> Study:
    """Open ``study``: at once if its stimuli exist, else mark it preparing and leave the
    preparation to a worker (``cpu.prepare_study``, which opens it when done). With
    ``open_after`` False the stimuli are prepared (for a preview) and the study stays a
    draft. The intent is stored on the study (``open_after_preparation``) for the worker.

    Asked again while the study is preparing, the preparation is sent again: a lost one
    (its worker died, its message gone) is taken over, a living one ignores the copy. An
    Open then also turns a preview's preparation into one that opens the study."""
    if study.status == Study.Status.OPEN:
        return study
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if locked.status == Study.Status.PREPARING:
            if open_after and not locked.open_after_preparation:
                locked.open_after_preparation = True
                locked.save(update_fields=["open_after_preparation"])
            work_send(locked)
            return locked
        if open_after and locked.stimuli.exists():
            return study_open(study=locked)
        if locked.status != Study.Status.DRAFT and not open_after:
            raise StudyError("only a draft's stimuli can be prepared again")
        locked.status = Study.Status.PREPARING
        locked.preparation_error = ""
        locked.open_after_preparation = open_after
        locked.save(update_fields=["status", "preparation_error", "open_after_preparation"])
        work_send(locked)
    return locked


def study_prepare_and_open(*, study_id: int) -> None:
    """The worker's side of :func:`study_request_open`: claim the preparation, prepare, then
    open the study or leave it a draft, as the study's ``open_after_preparation`` says. A
    preparation held by a living attempt, or no longer asked for, is left alone. A failure
    puts the study back to draft with the reason in ``preparation_error``."""
    claimed = claim(
        Study,
        study_id,
        pending=lambda s: s.status == Study.Status.PREPARING,
        fields=PREPARATION_CLAIM,
        on_takeover=preparation_discard_attempt,
    )
    if claimed is None:
        return
    study, attempt = claimed
    try:
        if not (study.open_after_preparation and study.stimuli.exists()):
            study_prepare_stimuli(study=study, attempt=attempt)
        with transaction.atomic():
            row = attempt.hold()
            if row.status != Study.Status.PREPARING:
                attempt.finish()  # closed meanwhile
            elif row.open_after_preparation:
                attempt.finish(status=Study.Status.OPEN, opened_at=row.opened_at or timezone.now())
                if row.opened_at is None:  # the first opening for real
                    preregistration_freeze(study=Study.objects.get(pk=row.pk))
            else:
                attempt.finish(status=Study.Status.DRAFT)
    except ClaimLost:
        return  # another attempt took it over
    except StudyError as exc:
        _give_up(attempt, str(exc))
    except Exception as exc:
        _give_up(attempt, f"preparing the stimuli failed: {type(exc).__name__}: {exc}")
        raise


def _give_up(attempt: RowClaim, reason: str) -> None:
    attempt.rows().update(
        status=Study.Status.DRAFT, preparation_error=reason, preparation_token=None
    )
