"""What a participant's browser is given: the trial at hand as plain data, the stimulus as
pixels whose byte length tells nothing (:func:`served_image`), practice feedback, the
completion redirect.

Nothing here may reveal whether an image is real, its condition, its scene or whether a
trial is an attention check: a trial is described by its position only (practice trials
are announced as practice, since the participant is told so and gets feedback; an
instructed-response check carries its instruction, "For this image, please answer Real",
which was drawn at random and says nothing of any image)."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from PIL import Image

from survey.hype import MASKS, next_exposure
from survey.models import Participant, Stimulus, Study, Trial
from survey.rating_protocol import rating_wording
from survey.services import participant_sql
from survey.services.hype_exposure import measured_correct
from survey.services.stimuli import pixels_png
from survey.services.trials import AnswerResult
from survey.wording import pair_wording, study_wording

#: Prolific issues its ids (participant, study, session) as 24 lower-case hex digits.
PROLIFIC_ID = re.compile(r"^[0-9a-f]{24}$")
PROLIFIC_PARAMETERS = {
    "PROLIFIC_PID": "prolific_pid",
    "STUDY_ID": "prolific_study_id",
    "SESSION_ID": "prolific_session_id",
}


def instruction_text(
    answer: str | None, study, fake_side: str | None = None, rating: int | None = None
) -> str:
    """What an instructed-response check asks, in the participant's language ("" for
    any other trial). The answer's name is the button's, as the study words it; in a
    pair (``fake_side`` given: a paired or preference study's check) the side to choose,
    "real" being the side of the trial's ``stimulus``, as its answer is stored; in a rating study
    (``answer`` "acr") the score ``rating``, by its name and number ("Poor (2)")."""
    if answer == Trial.Answer.RATED and rating is not None:
        option = next(o for o in rating_wording(study).options if o.score == rating)
        label = f"{option.label} ({rating})"
        return gettext("For this image, please answer %(label)s.") % {"label": label}
    if answer not in (Trial.Answer.REAL, Trial.Answer.AI):
        return ""
    if fake_side is not None:
        sides = pair_wording(study)
        side = Trial.side_stored_as(answer, fake_side)
        label = sides.left_label if side == Trial.Side.LEFT else sides.right_label
        return gettext("For this pair, please answer %(label)s.") % {"label": label}
    wording = study_wording(study)
    label = wording.real_label if answer == Trial.Answer.REAL else wording.ai_label
    return gettext("For this image, please answer %(label)s.") % {"label": label}


@dataclass(frozen=True)
class ProlificIds:
    """The Prolific ids a link carried: each normalised as Prolific issues it (lower case,
    no surrounding space) or None when absent; ``malformed`` names the parameters that
    were present but do not look like Prolific ids (e.g. an unreplaced
    ``{{%PROLIFIC_PID%}}``), with the value as given (cut to 64 characters)."""

    prolific_pid: str | None = None
    prolific_study_id: str | None = None
    prolific_session_id: str | None = None
    malformed: tuple[tuple[str, str], ...] = ()

    def as_fields(self) -> dict[str, str | None]:
        return {field: getattr(self, field) for field in PROLIFIC_PARAMETERS.values()}


def prolific_ids(query) -> ProlificIds:
    """PROLIFIC_PID, STUDY_ID and SESSION_ID from a query string or form."""
    fields: dict[str, str | None] = {}
    malformed = []
    for parameter, field in PROLIFIC_PARAMETERS.items():
        raw = (query.get(parameter) or "").strip()
        value = raw.lower()
        if raw and not PROLIFIC_ID.match(value):
            malformed.append((parameter, raw[:64]))
        fields[field] = value if raw and PROLIFIC_ID.match(value) else None
    return ProlificIds(**fields, malformed=tuple(malformed))


@dataclass(frozen=True)
class TrialView:
    position: int
    total: int
    answered: int
    practice: bool
    image_url: str
    #: An instructed-response check's instruction (:func:`instruction_text`); "" otherwise.
    instruction: str = ""
    #: A paired trial's two images, by the side they are shown on (the URLs name the side,
    #: never which image is real: the fake's side is drawn at random); else None.
    pair_urls: dict[str, str] | None = None
    #: A HYPE_time trial's exposure (ms, set by its staircase before it is shown) and its
    #: backward masks' URLs (they name the position and the mask's number only); else None.
    exposure_ms: int | None = None
    mask_urls: list[str] | None = None

    def as_dict(self) -> dict:
        record = {
            "position": self.position,
            "total": self.total,
            "answered": self.answered,
            "practice": self.practice,
            "image_url": self.image_url,
            "instruction": self.instruction,
        }
        if self.pair_urls is not None:
            record["pair_urls"] = self.pair_urls
        if self.mask_urls is not None:
            record["exposure_ms"] = self.exposure_ms
            record["mask_urls"] = self.mask_urls
        return record


def image_url(participant: Participant, position: int) -> str:
    return reverse("participant_image", args=[participant.public_id, position])


def pair_urls(participant: Participant, position: int) -> dict[str, str]:
    """A paired trial's images by side."""
    return {
        side: reverse("participant_pair_image", args=[participant.public_id, position, side])
        for side in Trial.Side.values
    }


def mask_urls(participant: Participant, position: int) -> list[str]:
    """A HYPE_time trial's backward masks, in the order they are shown."""
    return [
        reverse("participant_mask", args=[participant.public_id, position, k])
        for k in range(1, MASKS + 1)
    ]


def _trial_view(
    participant: Participant,
    *,
    position,
    total,
    answered,
    kind,
    instructed,
    instructed_rating=None,
    fake_side=None,
    exposure=None,
):
    paired = participant.study.side_by_side
    hype = participant.study.hype_time
    if hype and exposure is None:  # stored when the trial became the one at hand
        exposure = next_exposure(measured_correct(participant))
    return TrialView(
        position=position,
        total=total,
        answered=answered,
        practice=kind == Stimulus.Role.PRACTICE,
        image_url="" if paired else image_url(participant, position),
        instruction=instruction_text(instructed, participant.study, fake_side, instructed_rating),
        pair_urls=pair_urls(participant, position) if paired else None,
        exposure_ms=exposure if hype else None,
        mask_urls=mask_urls(participant, position) if hype else None,
    )


def current_trial(participant: Participant) -> TrialView | None:
    """The first unanswered trial, marked shown (the no-script fallback's response time
    starts here), or None when every trial is answered.

    One query (it runs after every answer): the participant's trials, unanswered first in
    order of position, the first one with the counts of all and of answered trials (window
    counts, taken before the LIMIT); then the write marking it shown, only if it was not."""
    row = participant_sql.trial_at_hand(participant.pk)
    if row is None or row["answer"] is not None:
        return None
    if not row["shown"]:  # as trial_mark_shown does, the trial at hand already read
        participant_sql.update(
            Trial, row["pk"], {"shown_at": timezone.now()}, where_null="shown_at"
        )
    return _trial_view(
        participant,
        position=row["position"],
        total=row["total"],
        answered=row["answered"],
        kind=row["kind"],
        instructed=row["instructed_answer"],
        instructed_rating=row["instructed_rating"],
        fake_side=row["fake_side"],
        exposure=row["exposure_ms"],
    )


def following_trial(participant: Participant, result: AnswerResult) -> TrialView | None:
    """The trial after the one :func:`trial_answer` just answered (None when the
    participation is complete): when that call stored the answer it read and marked the
    next trial already (no query); else (a repeated answer) the current one."""
    if result.finished:
        return None
    if not result.stored:
        return current_trial(participant)
    nxt = result.next_trial
    return _trial_view(
        participant,
        position=nxt.position,
        total=participant.study.trials_per_participant,
        answered=nxt.position - 1,  # answers are given in order
        kind=nxt.kind,
        instructed=nxt.instructed_answer,
        instructed_rating=nxt.instructed_rating,
        fake_side=nxt.fake_side,
        exposure=nxt.exposure_ms,
    )


def next_image_url(participant: Participant, trial: TrialView | None) -> str | list | None:
    """The image after ``trial``, for the browser to preload (a paired study's two images,
    left then right)."""
    if trial is None or trial.position >= trial.total:
        return None
    if participant.study.side_by_side:
        return list(pair_urls(participant, trial.position + 1).values())
    if participant.study.hype_time:  # its masks too: shown on the frame after the image
        return [
            image_url(participant, trial.position + 1),
            *mask_urls(participant, trial.position + 1),
        ]
    return image_url(participant, trial.position + 1)


def feedback_sentences() -> dict[str, dict[str, str]]:
    """The four sentences of practice feedback in the active language, by right/wrong and
    by the truth ("real", "ai"): whole sentences, so that each language words them its way."""
    return {
        "right": {
            "real": gettext("Correct: that image was a real photograph."),
            "ai": gettext("Correct: that image was colourised by AI."),
        },
        "wrong": {
            "real": gettext("Wrong: that image was a real photograph."),
            "ai": gettext("Wrong: that image was colourised by AI."),
        },
    }


def pair_feedback_sentences() -> dict[str, dict[str, str]]:
    """A paired study's practice feedback, by right/wrong and by the real photograph's
    side ("left", "right")."""
    return {
        "right": {
            "left": gettext("Correct: the real photograph was on the left."),
            "right": gettext("Correct: the real photograph was on the right."),
        },
        "wrong": {
            "left": gettext("Wrong: the real photograph was on the left."),
            "right": gettext("Wrong: the real photograph was on the right."),
        },
    }


def real_side(trial: Trial) -> str:
    """The side of a paired trial's real photograph."""
    return Trial.side_stored_as(Trial.Answer.AI, trial.fake_side)


def practice_feedback(trial: Trial) -> dict | None:
    """What a practice trial's answer earns: whether it was right, what the image was
    ("real" or "ai"; in a paired study the real photograph's side) and the sentence that
    says so in the active language. None for any other trial (no feedback may reveal a
    measured trial's truth; nor has a rating: it cannot be right or wrong)."""
    if trial.kind != Stimulus.Role.PRACTICE or trial.answer in (None, Trial.Answer.RATED):
        return None
    if trial.fake_side is not None:
        truth = real_side(trial)
        correct = trial.chosen_side == truth
        return {
            "correct": correct,
            "truth": truth,
            "text": pair_feedback_sentences()["right" if correct else "wrong"][truth],
        }
    truth = Trial.Answer.REAL if trial.stimulus.is_real else Trial.Answer.AI
    correct = trial.answer == truth
    return {
        "correct": correct,
        "truth": str(truth),
        "text": feedback_sentences()["right" if correct else "wrong"][str(truth)],
    }


def last_practice_feedback(participant: Participant) -> dict | None:
    """The feedback of the last answered trial if it was a practice trial (shown by the
    no-script page after its redirect)."""
    last = (
        Trial.objects.filter(participant=participant, answer__isnull=False)
        .select_related("stimulus")
        .order_by("-position")
        .first()
    )
    return practice_feedback(last) if last is not None else None


@dataclass(frozen=True)
class ImageRequest:
    """What the image view needs of one trial (:func:`image_request`)."""

    study_id: int
    #: The study's protocol (a HYPE_time trial's masks are served by the same rules).
    protocol: str
    public_id: str
    #: Withdrawn or released (silent past the time limit, or stopped).
    gone: bool
    answered: bool
    #: Unanswered trials before this one (more than one: not on screen yet).
    open_before: int
    fake_side: str | None
    stimulus_file: str
    partner_file: str | None
    stimulus_bytes: int

    def file_for(self, side: str | None) -> str | None:
        """The file shown (on ``side`` of a pair): the fake on its side, else the partner."""
        return self.stimulus_file if side is None or side == self.fake_side else self.partner_file


def image_request(public_id: str, position: int) -> ImageRequest | None:
    """The trial ``position`` of the participation ``public_id`` as the image view needs
    it, or None. One plain SQL statement (images are half of all the participants'
    requests, and building the equivalent ORM query, with the count of the unanswered
    trials before it as a subquery, cost three quarters of the image view's CPU:
    bench/profile_participant_paths.py); its table and column names come from the models."""
    row = participant_sql.image_row(public_id, position)
    if row is None:
        return None
    study_id, protocol, gone, answered, before, fake_side, file, partner, length = row
    return ImageRequest(
        study_id=study_id,
        protocol=protocol,
        public_id=public_id,
        gone=bool(gone),
        answered=bool(answered),
        open_before=before,
        fake_side=fake_side,
        stimulus_file=file,
        partner_file=partner,
        stimulus_bytes=length,
    )


#: The served stimuli kept in memory per process, in bytes: a study's few hundred images
#: fit at 64–128 px (an uncompressed 256 px image is 197 kB: about 500 of them); bounded so
#: that many or large studies cannot grow it.
SERVED_CACHE_BYTES = 96 * 1024 * 1024
_served: OrderedDict[tuple[str, int], bytes] = OrderedDict()
_served_bytes = 0
_served_lock = threading.Lock()


def served_image(name: str, length: int) -> bytes:
    """The stored stimulus ``name`` as the participant's browser receives it: its pixels
    (:func:`~survey.services.stimuli.pixels_png`) padded with zero bytes after the PNG's
    end up to ``length``, the study's longest (``Study.stimulus_bytes``; decoders ignore
    what follows the end), so that every image of a study has one Content-Length and a
    file's own length tells its width and height only, which the page shows anyway."""
    # Kept in memory, least recently used dropped beyond SERVED_CACHE_BYTES: a stimulus
    # file is written once under a fresh random name (survey.services.stimuli._store;
    # storage.save never overwrites) and never rewritten, and a study's files are only
    # deleted with their Stimulus rows (no trial then names them), so a name stands for
    # the same bytes for good (the study's length, read with it, is in the key all the
    # same). Only names read from a trial reach here, after the owner and on-screen
    # checks, so the cache serves nothing those checks would refuse.
    global _served_bytes
    key = (name, length)
    with _served_lock:
        data = _served.get(key)
        if data is not None:
            _served.move_to_end(key)
            return data
    with default_storage.open(name, "rb") as f, Image.open(f) as image:
        data = pixels_png(image)
    data += b"\0" * max(0, length - len(data))
    if len(data) <= SERVED_CACHE_BYTES:
        with _served_lock:
            if key not in _served:
                _served[key] = data
                _served_bytes += len(data)
            while _served_bytes > SERVED_CACHE_BYTES:
                _, dropped = _served.popitem(last=False)
                _served_bytes -= len(dropped)
    return data


def completion_redirect(study: Study) -> str:
    """The configured redirect (Prolific's completion URL), ``{code}`` replaced by the
    completion code; empty when none is configured."""
    return study.redirect_url.replace("{code}", study.completion_code) if study.redirect_url else ""
