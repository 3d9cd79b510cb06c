"""The perceptual study (method.md §7): studies, their conditions and stimuli, participants
and their trials.

Nothing a participant's browser receives may reveal whether an image is real, its condition
or its scene: stimuli are stored under random names in one flat folder, and participants
and studies are addressed by random public ids.
"""

from __future__ import annotations

import math
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Mod
from django.db.models.lookups import Exact
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from studyplatform.ownership import Share, owner_field


def study_slug() -> str:
    return secrets.token_urlsafe(16)


def participant_public_id() -> str:
    """22 URL-safe characters, never starting with "-": a spreadsheet would read such an id
    as a formula, so the CSV exports would write it with a leading apostrophe and it would
    no longer match the same id elsewhere."""
    token = secrets.token_urlsafe(16)
    return "p" + token[1:] if token.startswith("-") else token


def completion_code() -> str:
    return secrets.token_hex(4).upper()


def colour_screen_seed() -> int:
    return secrets.randbits(62)


#: What may still change once a study has opened (nothing that changes what is shown).
TEXT_FIELDS = (
    "name",
    "consent_text",
    "instructions",
    "redirect_url",
    "target_participants_per_condition",
    "estimated_minutes",
    "time_limit_minutes",
)


class Study(models.Model):
    """A perceptual study over one or more model runs. ``owner`` and ``shares``: who may see
    and change it (:mod:`studyplatform.access`); a NULL owner means unowned, visible and
    editable only by staff researchers and superusers."""

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        #: Stimuli being prepared by a worker; opens when they are ready.
        PREPARING = "preparing", "preparing stimuli"
        OPEN = "open", "open"
        #: Open to pilot participants only: their participations are flagged
        #: (:attr:`Participant.is_pilot`), left out of every table, and removable at once.
        PILOT = "pilot", "open as a pilot"
        CLOSED = "closed", "closed"

    class Design(models.TextChoices):
        BETWEEN = "between", "between subjects (one condition per participant)"
        WITHIN = "within", "within subjects (every condition per participant)"

    class Protocol(models.TextChoices):
        """What a trial shows and asks (survey.protocols describes each: its source, its
        preset and its statistic). Chosen when the study is created, frozen when it opens;
        a later protocol is one more choice here and one more entry there."""

        SINGLE = "single", "single image, real or AI"
        PAIRED = "paired", "paired real vs fake, two-alternative forced choice"
        PREFERENCE = "preference", "model vs model preference, two-alternative forced choice"
        RATING = "rating", "rating, absolute category rating (ACR, ITU-T P.910)"
        HYPE_TIME = "hype_time", "HYPE_time: exposure staircase (Zhou et al. 2019)"

    name = models.CharField(max_length=200)
    #: The unguessable public id, used in the participants' link.
    slug = models.CharField(max_length=64, unique=True, default=study_slug, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    #: Every stimulus is served padded to this many bytes (the longest served image:
    #: survey.participation.served_image), so that response sizes cannot tell real from
    #: colourised images.
    stimulus_bytes = models.PositiveIntegerField(default=0)
    #: Why the last preparation of stimuli failed (shown to the researcher).
    preparation_error = models.TextField(blank=True)
    #: What the researcher asked for when the stimuli are ready: open the study (True) or
    #: leave it a draft for a preview (False). Read by the worker, never by the message.
    open_after_preparation = models.BooleanField(default=True)
    #: The claim of the worker preparing the stimuli (worker.services.claims).
    preparation_token = models.UUIDField(null=True, blank=True)
    preparation_attempts = models.PositiveIntegerField(default=0)
    preparation_worker = models.CharField(max_length=200, blank=True)
    preparation_heartbeat_at = models.DateTimeField(null=True, blank=True)
    design = models.CharField(max_length=7, choices=Design.choices, default=Design.BETWEEN)
    protocol = models.CharField(max_length=16, choices=Protocol.choices, default=Protocol.SINGLE)
    #: Half real photographs, half colourised (the paper: 12 + 12).
    images_per_participant = models.PositiveIntegerField(default=24)
    target_participants_per_condition = models.PositiveIntegerField(default=104)
    #: Trials before the real ones, with feedback; excluded from analysis.
    practice_trials = models.PositiveIntegerField(default=0)
    #: Obviously fake images (colour-inverted photographs) among the trials; excluded from
    #: the tables, used by the exclusion rule (a participant who calls one real is excluded).
    attention_checks = models.PositiveIntegerField(default=0)
    #: Instructed-response attention checks ("for this image, please answer Real"): an
    #: ordinary image from a reserved scene with the answer to give, among the main trials.
    #: Never in the tables; failing two or more is Prolific's ground for rejection
    #: (survey.participant_list).
    instructed_checks = models.PositiveIntegerField(default=0)
    #: Whether a failed instructed-response check also excludes from the analysis.
    instructed_checks_exclude = models.BooleanField(default=False)
    #: A colour-vision screen (survey.colour_screen's plates) between consent and the
    #: instructions; its result is stored on the participant.
    colour_screen = models.BooleanField(default=False)
    #: Whether failing the colour-vision screen also excludes from the analysis (else the
    #: result is only recorded).
    colour_screen_excludes = models.BooleanField(default=False)
    consent_text = models.TextField(blank=True)
    instructions = models.TextField(blank=True)
    #: The language of every fixed text the participants see (survey.wording); the
    #: researcher's own texts are written in it.
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")
    #: The question and the answers' labels and keys (blank: the language's default).
    question_text = models.CharField(max_length=200, blank=True)
    real_label = models.CharField(max_length=40, blank=True)
    ai_label = models.CharField(max_length=40, blank=True)
    real_key = models.CharField(max_length=1, blank=True)
    ai_key = models.CharField(max_length=1, blank=True)
    #: The equivalence margin δ: "people cannot tell" means a fooling rate within 0.5 ± δ
    #: (survey.equivalence); frozen at opening with the rest of the analysis plan.
    equivalence_margin = models.FloatField(
        default=0.05, validators=[MinValueValidator(0.005), MaxValueValidator(0.45)]
    )
    #: The significance level of every test and the coverage (1 − α) of every interval
    #: reported beside them; 0.05 unless the study sets another.
    alpha = models.FloatField(
        default=0.05, validators=[MinValueValidator(0.001), MaxValueValidator(0.2)]
    )
    #: The hypotheses as the researcher states them before opening (the pre-registration).
    hypotheses = models.TextField(blank=True)
    #: A preference study (survey.preference_protocol) chooses each pair from the third
    #: on where the Bradley–Terry ranking is least certain, instead of the balanced plan.
    preference_adaptive = models.BooleanField(default=False)
    #: Show each image this long, then hide it (None: until answered).
    exposure_ms = models.PositiveIntegerField(null=True, blank=True)
    #: Leave out of the analysis the main trials whose display was flagged (the measured
    #: exposure missed the target by more than a frame, or the page was hidden:
    #: :class:`TrialDisplay`); frozen at opening. Off: flagged trials count as any other.
    drop_flagged_displays = models.BooleanField(default=False)
    #: How long taking part should take, in minutes (what Prolific is told).
    estimated_minutes = models.PositiveIntegerField(default=5)
    #: A participant silent this long without finishing gives up their place (None:
    #: Prolific's default maximum time for :attr:`estimated_minutes`; see
    #: :attr:`time_limit`).
    time_limit_minutes = models.PositiveIntegerField(null=True, blank=True)
    completion_code = models.CharField(max_length=64, default=completion_code)
    redirect_url = models.URLField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    owner = owner_field()
    created_at = models.DateTimeField(auto_now_add=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    #: Archived: hidden from the list of studies (studyplatform.archiving).
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        constraints = [
            # Half real and half AI needs an even number; a paired or preference study
            # counts pairs (survey.protocols.images_per_participant_problem).
            models.CheckConstraint(
                condition=Q(images_per_participant__gte=2)
                & (
                    Q(protocol__in=["paired", "preference"])
                    | Q(Exact(Mod(F("images_per_participant"), 2), 0))
                ),
                name="study_images_count",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def accepting(self) -> bool:
        """Whether participants may start: open, or open as a pilot."""
        return self.status in (self.Status.OPEN, self.Status.PILOT)

    def clean(self) -> None:
        from survey.protocols import images_per_participant_problem  # it imports this module

        problem = images_per_participant_problem(self.protocol, self.images_per_participant)
        if problem:
            raise ValidationError({"images_per_participant": problem})

    @property
    def reserved_scenes(self) -> int:
        """Scenes set aside for practice and checks, never shown as main trials."""
        return self.practice_trials + self.attention_checks + self.instructed_checks

    @property
    def trials_per_participant(self) -> int:
        return self.images_per_participant + self.reserved_scenes

    @property
    def time_limit(self) -> timedelta:
        """How long an unfinished participant holds a place without a sign of life: the
        researcher's setting, else what Prolific allows for the estimated time X (its
        minimum maximum time, 2 + X + 2·√X minutes, rounded up)."""
        if self.time_limit_minutes:
            return timedelta(minutes=self.time_limit_minutes)
        x = self.estimated_minutes
        return timedelta(minutes=math.ceil(2 + x + 2 * math.sqrt(x)))

    @property
    def time_limit_in_minutes(self) -> int:
        return int(self.time_limit.total_seconds() // 60)

    @property
    def paired(self) -> bool:
        """Whether each trial shows a real photograph and a colourisation of it side by
        side (:attr:`Protocol.PAIRED`); ``images_per_participant`` then counts pairs."""
        return self.protocol == self.Protocol.PAIRED

    @property
    def preference(self) -> bool:
        """Whether each trial shows two runs' colourisations of one photograph side by
        side, "Which looks more natural?" (:attr:`Protocol.PREFERENCE`,
        survey.preference_protocol); ``images_per_participant`` then counts pairs."""
        return self.protocol == self.Protocol.PREFERENCE

    @property
    def side_by_side(self) -> bool:
        """Whether a trial shows two images side by side and is answered with a side
        (the paired and the preference protocols)."""
        return self.protocol in (self.Protocol.PAIRED, self.Protocol.PREFERENCE)

    @property
    def hype_time(self) -> bool:
        """Whether each trial's exposure is set by a 3-up/1-down staircase and followed
        by backward masks (:attr:`Protocol.HYPE_TIME`, survey.hype)."""
        return self.protocol == self.Protocol.HYPE_TIME

    @property
    def needs_script(self) -> bool:
        """Whether a participant's page needs its script: it alone shows an image for a
        limited time (an exposure limit, or HYPE_time's staircase with its masks). Without
        it the page says so, shows no image and refuses a plain form's answer."""
        return self.hype_time or bool(self.exposure_ms)

    @property
    def per_kind(self) -> int:
        """Real images per participant (and AI images: the same number)."""
        return self.images_per_participant // 2


class Condition(models.Model):
    """One model run in a study."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="conditions")
    run = models.ForeignKey("worker.ModelRun", on_delete=models.PROTECT, related_name="conditions")
    label = models.CharField(max_length=100)

    class Meta:
        ordering = ["study", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "run"], name="condition_unique_run"),
            models.UniqueConstraint(fields=["study", "label"], name="condition_unique_label"),
        ]

    def __str__(self) -> str:
        return self.label


class StudyShare(Share):
    """A colleague's access to a study (see :class:`studyplatform.ownership.Share`)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="shares")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "user"], name="study_share_unique"),
        ]


class Stimulus(models.Model):
    """One image a participant may see: a condition's colourised version of a scene, or a
    real photograph brought to the size of the colourised versions. Between subjects each
    condition has its own real stimuli (so that each condition's real and AI exposures are
    balanced on their own); within subjects they are shared (``condition`` None).

    Practice, attention-check and instructed-check stimuli come from scenes reserved for
    them (never shown as main trials); an attention check is a colour-inverted photograph
    (``is_real`` False: the right answer is "AI"); an instructed check shows an ordinary
    real or AI version, the answer to give is the trial's ``instructed_answer``."""

    class Role(models.TextChoices):
        MAIN = "main", "main"
        PRACTICE = "practice", "practice"
        ATTENTION = "attention", "attention check"
        INSTRUCTED = "instructed", "instructed-response check"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="stimuli")
    condition = models.ForeignKey(
        Condition, null=True, blank=True, on_delete=models.CASCADE, related_name="stimuli"
    )
    scene = models.ForeignKey(
        "worker.DatasetImage", on_delete=models.PROTECT, related_name="stimuli"
    )
    is_real = models.BooleanField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MAIN)
    #: Storage name, ``stimuli/<random hex>.jpg``.
    file = models.CharField(max_length=255, unique=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    #: Participants (not withdrawn) this stimulus was allocated to.
    exposures = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "stimuli"
        constraints = [
            models.CheckConstraint(
                condition=Q(is_real=True) | Q(condition__isnull=False) | Q(role="attention"),
                name="stimulus_ai_has_condition",
            ),
            models.UniqueConstraint(
                fields=["condition", "scene"],
                condition=Q(is_real=False, role__in=["main", "practice", "instructed"]),
                name="stimulus_unique_ai_scene",
            ),
            models.UniqueConstraint(
                # is_real too: a paired study's vigilance pair has a real photograph and
                # a random-coloured one of the same scene and size, both without condition.
                fields=["study", "condition", "scene", "width", "height", "is_real"],
                condition=Q(is_real=True) | Q(role="attention"),
                nulls_distinct=False,
                name="stimulus_unique_real_scene",
            ),
        ]
        indexes = [models.Index(fields=["study", "is_real", "exposures"])]

    def __str__(self) -> str:
        return f"{'real' if self.is_real else self.condition} #{self.scene_id}"


class Participant(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="participants")
    #: None in a within-subjects study.
    condition = models.ForeignKey(
        Condition, null=True, blank=True, on_delete=models.PROTECT, related_name="participants"
    )
    public_id = models.CharField(
        max_length=64, unique=True, default=participant_public_id, editable=False
    )
    # NULL, not "", when absent: the one-participation constraint skips NULLs only.
    prolific_pid = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    prolific_study_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    prolific_session_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    user_agent = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    #: The last start, resume or answer (a participant silent for long has dropped out).
    last_active_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    #: The participant chose to stop ("Stop taking part"): their place is free at once.
    returned_at = models.DateTimeField(null=True, blank=True)
    #: Their place was given up (returned, or silent past the study's time limit) and their
    #: stimuli's exposures given back; cleared if they come back while a place is free.
    released_at = models.DateTimeField(null=True, blank=True)
    #: Started while the study was open as a pilot: never in the analysis, holds no place
    #: of the real study, never counted in the stimuli's exposures, removable at once.
    is_pilot = models.BooleanField(default=False)
    #: Draws the participant's colour-vision plates (survey.colour_screen); never sent to
    #: the browser.
    colour_screen_seed = models.BigIntegerField(default=colour_screen_seed, editable=False)
    #: The screen's result once every plate is answered (NULL before, or without a screen):
    #: test plates read right (of survey.colour_screen.TEST_PLATES) and the rule's verdict.
    colour_screen_correct = models.PositiveSmallIntegerField(null=True, blank=True)
    colour_screen_passed = models.BooleanField(null=True, blank=True)
    colour_screen_done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "prolific_pid"],
                condition=Q(prolific_pid__isnull=False),
                name="participant_unique_prolific_pid",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id


class Trial(models.Model):
    """One judgement. In a paired study (``Study.protocol`` paired) ``stimulus`` is the
    fake of the pair (a colourisation; in a vigilance pair the random-coloured photograph),
    ``partner`` the real photograph of the same scene, ``fake_side`` where the fake is
    shown and ``chosen_side`` the side the participant called the real photograph. The
    pair's ``answer`` is then what the choice says of the fake: "real" when the
    participant chose the fake (fooled), "ai" when they chose the photograph, so that every
    count, table and model of the single-image protocol reads a pair as a judgement of
    its fake image (survey.protocols).

    In a preference study (``Study.protocol`` preference) ``stimulus`` and ``partner`` are
    two runs' colourisations of one photograph (``stimulus`` from the condition created
    first), ``fake_side`` is the side of ``stimulus`` (the name is the paired protocol's)
    and ``chosen_side`` the side chosen as more natural; ``answer`` is then "real" when
    ``stimulus`` was chosen and "ai" when ``partner`` was, by the same rule as a pair's
    (survey.preference_protocol.trial_winner names the winning condition)."""

    class Answer(models.TextChoices):
        REAL = "real", "Real"
        AI = "ai", "AI"
        #: A rating study's answer (survey.rating_protocol): the score is in ``rating``.
        RATED = "acr", "rated (ACR)"

    class Side(models.TextChoices):
        LEFT = "left", "left"
        RIGHT = "right", "right"

    #: The stimulus's role, copied so that analysis filters without a join.
    kind = models.CharField(
        max_length=10, choices=Stimulus.Role.choices, default=Stimulus.Role.MAIN
    )

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="trials")
    #: 1-based order of presentation.
    position = models.PositiveIntegerField()
    stimulus = models.ForeignKey(Stimulus, on_delete=models.PROTECT, related_name="trials")
    #: A paired trial's real photograph (NULL in the single-image protocol).
    partner = models.ForeignKey(
        Stimulus, null=True, blank=True, on_delete=models.PROTECT, related_name="partner_trials"
    )
    #: A paired trial's side of the fake (``stimulus``), drawn balanced per participant.
    fake_side = models.CharField(  # noqa: DJ001
        max_length=5, choices=Side.choices, null=True, blank=True
    )
    #: A paired trial's answer: the side chosen as the real photograph (NULL until answered).
    chosen_side = models.CharField(  # noqa: DJ001
        max_length=5, choices=Side.choices, null=True, blank=True
    )
    #: A HYPE_time trial's exposure in ms, set by the staircase (survey.hype) from the
    #: answers before it when the trial becomes the one at hand; NULL in other protocols
    #: (their exposure is the study's).
    exposure_ms = models.PositiveIntegerField(null=True, blank=True)
    shown_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    #: NULL until answered.
    answer = models.CharField(  # noqa: DJ001
        max_length=4, choices=Answer.choices, null=True, blank=True
    )
    rt_ms = models.PositiveIntegerField(null=True, blank=True)
    #: A rating study's score on ITU-T P.910's five-point ACR scale (5 excellent … 1 bad),
    #: stored with ``answer`` "acr" (survey.rating_protocol); NULL in every other protocol.
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    #: An instructed-response check's instruction: the answer the participant was asked to
    #: give (drawn at random, whatever the image); passed when ``answer`` equals it. NULL
    #: for every other kind of trial.
    instructed_answer = models.CharField(  # noqa: DJ001
        max_length=4, choices=Answer.choices, null=True, blank=True
    )
    #: A rating study's instructed-response check: the score asked for (1–5, drawn at
    #: random), with ``instructed_answer`` "acr"; passed when ``rating`` equals it too.
    #: NULL for every other trial.
    instructed_rating = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["participant", "position"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "position"], name="trial_unique_pos"),
            models.UniqueConstraint(
                fields=["participant", "stimulus"], name="trial_unique_stimulus"
            ),
            models.CheckConstraint(
                condition=Q(kind="instructed", instructed_answer__isnull=False)
                | (~Q(kind="instructed") & Q(instructed_answer__isnull=True)),
                name="trial_instruction_of_instructed_checks",
            ),
            models.CheckConstraint(
                condition=Q(partner__isnull=True, fake_side__isnull=True, chosen_side__isnull=True)
                | Q(partner__isnull=False, fake_side__isnull=False),
                name="trial_pair_has_partner_and_side",
            ),
            models.CheckConstraint(
                condition=Q(answer="acr", rating__isnull=False, rating__gte=1, rating__lte=5)
                | (Q(rating__isnull=True) & ~Q(answer="acr")),
                name="trial_rating_on_the_acr_scale",
            ),
            models.CheckConstraint(
                condition=Q(
                    instructed_answer="acr",
                    instructed_rating__isnull=False,
                    instructed_rating__gte=1,
                    instructed_rating__lte=5,
                )
                | (Q(instructed_rating__isnull=True) & ~Q(instructed_answer="acr")),
                name="trial_instructed_rating_on_the_acr_scale",
            ),
        ]
        indexes = [
            # The exclusion rule's "failed an attention check" (survey.analysis), found
            # without reading every trial.
            models.Index(
                fields=["participant"],
                condition=Q(kind="attention", answer="real"),
                name="trial_failed_attention",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant} #{self.position}"

    @property
    def fooled(self) -> bool | None:
        """A paired trial's answer: whether the fake was chosen as the real photograph."""
        if self.chosen_side is None:
            return None
        return self.chosen_side == self.fake_side

    @staticmethod
    def side_stored_as(answer: str, fake_side: str) -> str:
        """In a pair, the side whose choice is stored as ``answer``: the side of
        ``stimulus`` (``fake_side``) for "real", the other side for "ai" (so the real
        photograph's side in a paired study, and the side an instructed check asks for)."""
        if answer == Trial.Answer.REAL:
            return str(fake_side)
        left, right = Trial.Side.LEFT, Trial.Side.RIGHT
        return str(right if fake_side == left else left)


class TrialDisplay(models.Model):
    """How a trial's image was displayed, as the participant's browser measured it
    (survey.services.display_timing validates what it sends; survey/static display_timing.js
    measures). One per answered trial, stored with the answer in its transaction; bad or
    missing measurements never cost the answer: a value out of its range is stored as
    NULL and named in ``problems``.

    Times are in ms on the browser's ``requestAnimationFrame`` clock: ``exposure_ms`` runs
    from the frame the image was first drawn in to the first frame without it. Sizes are
    CSS pixels."""

    class Status(models.TextChoices):
        MEASURED = "measured", "measured"
        #: The answer came without any measurement (no JavaScript: a plain form).
        NOT_MEASURED = "not_measured", "not measured"
        #: A measurement came but could not be read at all (not a JSON object).
        REFUSED = "refused", "refused"

    trial = models.OneToOneField(
        Trial, primary_key=True, on_delete=models.CASCADE, related_name="display"
    )
    status = models.CharField(max_length=12, choices=Status.choices)
    #: The study's exposure time when answered (None: until answered).
    target_ms = models.PositiveIntegerField(null=True, blank=True)
    #: Frames the browser aimed for: the whole number nearest target_ms / frame_ms.
    target_frames = models.PositiveIntegerField(null=True, blank=True)
    exposure_ms = models.FloatField(null=True, blank=True)
    #: The median frame interval over a warm-up before the trial (1000 / refresh rate).
    frame_ms = models.FloatField(null=True, blank=True)
    device_pixel_ratio = models.FloatField(null=True, blank=True)
    window_width = models.PositiveIntegerField(null=True, blank=True)
    window_height = models.PositiveIntegerField(null=True, blank=True)
    image_width = models.FloatField(null=True, blank=True)
    image_height = models.FloatField(null=True, blank=True)
    #: During the trial (image first drawn to answer): the page was hidden (another tab,
    #: minimised), the window lost the focus, the page left full screen.
    hidden = models.BooleanField(null=True)
    blurred = models.BooleanField(null=True)
    left_fullscreen = models.BooleanField(null=True)
    #: Answered while the image was still shown (before the exposure ended): no exposure
    #: is measured, and a short one is the participant's doing, not the display's.
    answered_early = models.BooleanField(null=True)
    #: The measured exposure missed the target by more than one frame.
    missed_target = models.BooleanField(default=False)
    #: missed_target or hidden: the study may drop such trials
    #: (:attr:`Study.drop_flagged_displays`).
    flagged = models.BooleanField(default=False)
    #: What the server refused of the measurement, in words ("" when nothing).
    problems = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"display of trial {self.trial_id} ({self.status})"

    @property
    def refresh_hz(self) -> float | None:
        return 1000 / self.frame_ms if self.frame_ms else None


class ColourScreenAnswer(models.Model):
    """One plate of a participant's colour-vision screen, answered once: what they typed
    (``""``: "I can't see a number") and whether it was the plate's digit."""

    participant = models.ForeignKey(
        Participant, on_delete=models.CASCADE, related_name="colour_screen_answers"
    )
    #: 1-based, as survey.colour_screen.screen_plates numbers them.
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=8)
    answer = models.CharField(max_length=8, blank=True)
    correct = models.BooleanField()
    answered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["participant", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "position"], name="colour_screen_answer_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant} plate {self.position}"


class ParticipantTally(models.Model):
    """A finished participant's answered main trials, counted once for the analysis
    (survey.analysis): per stimulus condition (within subjects the real photographs' row has
    none) the four cells of the 2×2 table and the sums of the log response times.

    A finished participation never changes (answers are stored once and never edited, and
    completion is final), so its tally stays right; a withdrawal deletes the participant's
    tallies with their trials (:func:`_drop_withdrawn_tallies`)."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="tallies")
    condition = models.ForeignKey(
        Condition, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    real_real = models.PositiveIntegerField()
    real_ai = models.PositiveIntegerField()
    ai_real = models.PositiveIntegerField()
    ai_ai = models.PositiveIntegerField()
    #: Sums of ln(response time in ms) over the real and over the AI images.
    log_rt_real = models.FloatField(null=True)
    log_rt_ai = models.FloatField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "condition"],
                nulls_distinct=False,
                name="tally_unique_condition",
            ),
        ]

    def __str__(self) -> str:
        return f"tally of {self.participant_id} ({self.condition_id})"


@receiver(post_save, sender=Participant)
def _drop_withdrawn_tallies(sender, instance: Participant, **kwargs) -> None:
    if instance.withdrawn_at is not None:
        ParticipantTally.objects.filter(participant=instance).delete()


class Withdrawal(models.Model):
    """The log of withdrawals: whose data was removed, when and by whom."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="withdrawals")
    #: The participant number of the downloads (the participant's id; the row stays,
    #: marked withdrawn). NULL only for a log written before it was kept and not found.
    participant_number = models.PositiveBigIntegerField(null=True, blank=True)
    participant_public_id = models.CharField(max_length=64)
    prolific_pid = models.CharField(max_length=64, blank=True)
    trials_removed = models.PositiveIntegerField(default=0)
    reason = models.TextField(blank=True)
    withdrawn_at = models.DateTimeField(auto_now_add=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-withdrawn_at"]

    def __str__(self) -> str:
        return f"withdrawal of {self.participant_public_id}"


class RefusedStart(models.Model):
    """Visits to a study's link that could not start or resume a participation, counted
    per study and reason for the researcher's monitor (a bounded table: one row per
    reason, never one per visit). ``example`` keeps the last offending value of a
    malformed Prolific id (e.g. an unreplaced ``{{%PROLIFIC_PID%}}``), which is what the
    researcher needs to mend the link; no other visitor data is kept."""

    class Reason(models.TextChoices):
        MALFORMED_ID = "malformed_id", "a Prolific id in the link that does not look like one"
        OTHER_BROWSER = "other_browser", "a Prolific id already taking part in another browser"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="refused_starts")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    count = models.PositiveIntegerField(default=0)
    example = models.CharField(max_length=100, blank=True)
    last_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "reason"], name="refused_start_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.count} refused ({self.reason}) for study {self.study_id}"


class PreRegistrationQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ValidationError("a pre-registration never changes once frozen")


class PreRegistration(models.Model):
    """What a study set out to do, frozen when it first opens for real (never as a pilot):
    the canonical JSON document (survey.preregistration), its Markdown rendering and the
    SHA-256 of the JSON's bytes. One per study; it never changes: :meth:`save` refuses an
    existing row and the queryset refuses ``update``."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="preregistration")
    #: The canonical JSON (sorted keys, no spaces, UTF-8), exactly the bytes hashed.
    document = models.TextField()
    markdown = models.TextField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PreRegistrationQuerySet.as_manager()

    def __str__(self) -> str:
        return f"pre-registration of study {self.study_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValidationError("a pre-registration never changes once frozen")
        super().save(*args, **kwargs)
