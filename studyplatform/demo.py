"""The demo that the run command sets up on a fresh machine: a data set, two trained runs and
an open study built from them, so that every page has something to show.

Every step is idempotent and keyed by a well-known name; a second pass reuses what exists and
carries on where the last one stopped:

1. the data set :data:`DATASET` (synthetic scenes) is made, if absent, here and now;
2. the runs :data:`BASELINE` and :data:`ENSEMBLE` are launched on it, if absent, with small
   settings (:class:`DemoConfig`): the Celery workers train them (a few minutes on two CPU
   cores; their progress is on the runs page);
3. the study :data:`STUDY` is created from the two runs at once, as a draft, so that its
   participants' link is known from the start; once both runs are done it is opened
   (:func:`survey.services.stimuli.study_request_open`: a worker prepares its stimuli and opens it).

:func:`demo_advance` makes one pass and says where the demo stands. The run command calls it
every few seconds from a background thread (:class:`DemoWatcher`) until the study is open;
``python manage.py demo [--wait]`` calls it from the command line. The state lives in the
database only, so a restart resumes: the first pass after a (re)start also launches again a
run that failed or was cancelled, and asks again to open a study whose preparation failed.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction

from survey.models import Study
from survey.services.stimuli import study_request_open
from survey.services.studies import study_create
from worker.models import Dataset, ModelRun, SubModel
from worker.services.datasets import DatasetImportError, dataset_import
from worker.services.runs import model_run_launch
from worker.services.sources import scan_synthetic

logger = logging.getLogger(__name__)

DATASET = "demo-synthetic"
BASELINE = "demo-baseline"
ENSEMBLE = "demo-ensemble"
STUDY = "Demo study"
#: (name, kind, condition label) of the two runs, in the study's order.
RUNS = (
    (BASELINE, ModelRun.Kind.BASELINE, "Pix2Pix baseline"),
    (ENSEMBLE, ModelRun.Kind.ENSEMBLE, "Context ensemble"),
)

CONSENT = """\
This is a demonstration study of the colour study platform. The images are synthetic scenes; \
some were colourised by two small models trained on this machine a few minutes ago.

Your answers are stored without your name in this installation's database and are used only \
to try the platform out. Taking part takes about three minutes, and you may stop at any time \
with "Stop taking part" on the study's page.

By continuing you agree to take part."""

INSTRUCTIONS = """\
You will see {images} images, one at a time. Some show their original colours ("Real"); the \
others were coloured by a computer model from a black-and-white version ("AI").

For each image, answer Real or AI: go by your first impression, there is no need to study \
it for long. A few images check that you are paying attention."""


@dataclass(frozen=True)
class DemoConfig:
    """How big the demo is. The default trains both runs in a few minutes on two CPU cores:
    420 scenes of 64 px (42 of them test scenes, enough for 24 images per participant plus
    the practice and attention scenes), a generator width of 16, and few epochs. The router
    (the ensemble's classifier) trains until its validation accuracy has not improved for
    ``classifier_patience`` epochs (at most ``classifier_epochs``), on training scenes
    translated at random by up to ``classifier_shift`` of their side, at ``classifier_lr``
    (settings of the demo, not the paper's). With 4 fixed epochs it was right on half the
    test scenes and the ensemble scored worse than the baseline; trained until it stalled
    but without the shifts it learned its 318 training scenes by heart and was right on
    90 % of the test scenes (predicted routing's L1 26 % above oracle routing's); with them
    and patience 10 on 95 % (16 % above). These settings reach 100 % of the test scenes at
    epoch 41 (see README)."""

    per_category: int = 70
    image_size: int = 64
    width: int = 16
    epochs: int = 10
    classifier_epochs: int = 45
    classifier_patience: int | None = 15
    classifier_shift: float = 0.125
    classifier_lr: float = 2e-3
    batch_size: int = 16
    seed: int = 0
    images_per_participant: int = 24
    practice_trials: int = 2
    attention_checks: int = 1

    def run_config(self) -> dict:
        return {
            "image_size": self.image_size,
            "width": self.width,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "classifier": {
                "epochs": self.classifier_epochs,
                "batch_size": self.batch_size,
                "patience": self.classifier_patience,
                "shift": self.classifier_shift,
                "lr": self.classifier_lr,
            },
        }


#: What the run command makes.
FULL = DemoConfig()
#: Seconds instead of minutes, for tests and smoke checks (same names; 12 test scenes, 8 images
#: per participant).
TINY = DemoConfig(
    per_category=20,
    image_size=32,
    width=8,
    epochs=1,
    classifier_epochs=1,
    classifier_patience=None,
    classifier_shift=0.0,
    classifier_lr=7.5e-4,
    images_per_participant=8,
)
PRESETS = {"full": FULL, "tiny": TINY}


class Stage:
    TRAINING = "training"
    PREPARING = "preparing"
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass
class DemoState:
    """Where the demo stands after a pass of :func:`demo_advance`."""

    stage: str
    #: One line for people: progress, or what went wrong.
    detail: str
    dataset: Dataset
    runs: list[ModelRun]
    study: Study
    #: What this pass made, launched or asked for (empty when it only looked).
    done: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.stage in (Stage.OPEN, Stage.CLOSED, Stage.FAILED)


def demo_advance(*, config: DemoConfig = FULL, retry: bool = False, user=None) -> DemoState:
    """One idempotent pass over the demo's steps (see the module docstring). ``retry``:
    launch again a run that failed or was cancelled, and ask again to open a study whose
    preparation failed (else they are reported as the demo's failure). ``user`` owns what
    is created, and takes what an earlier pass left unowned (default: the account
    'researcher' that the run command creates, if there is one)."""
    if user is None:
        user = get_user_model().objects.filter(username="researcher").first()
    done: list[str] = []
    dataset = _dataset(config, user, done)
    with transaction.atomic():
        # One pass at a time (the run command's thread and the demo command may race):
        # the data set's row lock serialises them, and nothing below is long.
        Dataset.objects.select_for_update().get(pk=dataset.pk)
        runs = [_run(name, kind, dataset, config, retry, user, done) for name, kind, _ in RUNS]
        study = _study(runs, config, user, done)
        _adopt([dataset, *runs, study], user)
        stage, detail = _stage(runs, study)
        if stage == Stage.PREPARING and study.status == Study.Status.DRAFT:
            if study.preparation_error and not retry:
                stage = Stage.FAILED
                detail = f"preparing the study failed: {study.preparation_error}"
            else:
                study = study_request_open(study=study)
                done.append(f"asked a worker to prepare the stimuli of {STUDY!r} and open it")
                stage, detail = _stage(runs, study)
    return DemoState(stage, detail, dataset, runs, study, done)


def _adopt(objects, user) -> None:
    """Give ``user`` the demo's objects that have no owner (made before owners existed, or
    by a pass without the account)."""
    if user is None:
        return
    for obj in objects:
        if obj.owner_id is None:
            obj.owner = user
            obj.save(update_fields=["owner"])


def _dataset(config: DemoConfig, user, done: list[str]) -> Dataset:
    found = Dataset.objects.filter(name=DATASET).first()
    if found is not None:
        return found
    with tempfile.TemporaryDirectory(prefix="demo-synthetic-") as tmp:
        scan = scan_synthetic(
            Path(tmp), per_category=config.per_category, size=config.image_size, seed=config.seed
        )
        try:
            report = dataset_import(
                name=DATASET,
                source=Dataset.Source.SYNTHETIC,
                images=scan.images,
                seed=config.seed,
                skipped=scan.skipped,
                summary=scan.summary,
                categories=scan.categories,
                created_by=user,
            )
        except (DatasetImportError, IntegrityError):
            found = Dataset.objects.filter(name=DATASET).first()
            if found is None:  # not a concurrent pass that made it first
                raise
            return found
    done.append(
        f"made the data set {DATASET!r} ({report.imported} synthetic scenes of "
        f"{config.image_size} px)"
    )
    return report.dataset


def _run(name, kind, dataset, config, retry, user, done) -> ModelRun:
    run = ModelRun.objects.filter(name=name, dataset=dataset).order_by("-created_at").first()
    if run is not None and not (
        retry and run.status in (ModelRun.Status.FAILED, ModelRun.Status.CANCELLED)
    ):
        return run
    if run is not None:  # launched again: a draft demo study made from it goes with it
        Study.objects.filter(
            name=STUDY, status=Study.Status.DRAFT, conditions__run=run, participants__isnull=True
        ).delete()
    run = model_run_launch(
        name=name,
        kind=kind,
        colour_space="lab",
        dataset=dataset,
        config=config.run_config(),
        user=user,
    )
    done.append(f"launched the run {name!r} ({run.get_kind_display()})")
    return run


def _study(runs: list[ModelRun], config: DemoConfig, user, done) -> Study:
    found = Study.objects.filter(name=STUDY)
    for run in runs:
        found = found.filter(conditions__run=run)
    study = found.order_by("-created_at").first()
    if study is not None:
        return study
    study = study_create(
        name=STUDY,
        runs=runs,
        labels=[label for _, _, label in RUNS],
        images_per_participant=config.images_per_participant,
        practice_trials=config.practice_trials,
        attention_checks=config.attention_checks,
        consent_text=CONSENT,
        # The page adds what the practice images are (survey/participant/trial.html).
        instructions=INSTRUCTIONS.format(
            images=config.images_per_participant + config.practice_trials + config.attention_checks
        ),
        user=user,
    )
    done.append(f"created the study {STUDY!r} from the two runs")
    return study


def _stage(runs: list[ModelRun], study: Study) -> tuple[str, str]:
    for run in runs:
        if run.status in (ModelRun.Status.FAILED, ModelRun.Status.CANCELLED):
            reason = f": {run.failure_reason}" if run.failure_reason else ""
            return Stage.FAILED, (
                f"the run {run.name!r} {run.status}{reason} (the next start of the platform, "
                "or `manage.py demo`, launches it again)"
            )
    if any(run.status != ModelRun.Status.DONE for run in runs):
        return Stage.TRAINING, "training: " + ", ".join(training_progress(run) for run in runs)
    if study.status == Study.Status.OPEN:
        return Stage.OPEN, f"{STUDY!r} is open"
    if study.status == Study.Status.CLOSED:
        return Stage.CLOSED, f"{STUDY!r} was closed"
    return Stage.PREPARING, f"preparing the stimuli of {STUDY!r}"


def training_progress(run: ModelRun) -> str:
    """``"demo-ensemble 40 %"``: the share of its sub-models' epochs done, or its status."""
    if run.status != ModelRun.Status.RUNNING:
        return f"{run.name} {run.status}"
    shares = [
        1.0 if sm.status == SubModel.Status.DONE else (sm.epoch / sm.epochs if sm.epochs else 0)
        for sm in run.submodels.all()
    ]
    return f"{run.name} {round(100 * sum(shares) / max(1, len(shares)))} %"


class DemoWatcher(threading.Thread):
    """Calls :func:`demo_advance` every ``interval`` seconds until the demo is open (or has
    failed), and tells ``say`` what changed: what it made, the participants' link as soon as
    the study exists, progress now and then (every ``progress_every`` seconds), the end."""

    def __init__(
        self,
        *,
        say: Callable[[str], None],
        base_url: str,
        config: DemoConfig = FULL,
        interval: float = 2.0,
        progress_every: float = 30.0,
    ):
        super().__init__(name="demo-watcher", daemon=True)
        self.say = say
        self.base_url = base_url.rstrip("/")
        self.config = config
        self.interval = interval
        self.progress_every = progress_every
        self.state: DemoState | None = None
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def link(self, study: Study) -> str:
        return f"{self.base_url}/s/{study.slug}/"

    def run(self) -> None:
        retry, last_error, last_progress, told_link = True, "", 0.0, None
        while not self._stopping.is_set():
            try:
                state = demo_advance(config=self.config, retry=retry)
            except Exception as exc:  # a locked database, a broker hiccup: try again later
                error = f"{type(exc).__name__}: {exc}"
                if error != last_error:
                    logger.exception("demo step failed")
                    self.say(f"demo: a step failed ({error}); trying again")
                    last_error = error
                self._stopping.wait(max(self.interval, 10.0))
                continue
            finally:
                connection.close()  # this thread's connection
            retry, last_error = False, ""
            previous, self.state = self.state, state
            for line in state.done:
                self.say(f"demo: {line}")
            if state.study.slug != told_link and not state.finished:
                self.say(
                    f"demo: participants' link of {STUDY!r}: {self.link(state.study)}"
                    + ("" if state.stage == Stage.OPEN else " (it opens when both runs are done)")
                )
                told_link = state.study.slug
            now = time.monotonic()
            changed = previous is None or previous.stage != state.stage
            if changed or (
                state.stage == Stage.TRAINING and now - last_progress >= self.progress_every
            ):
                last_progress = now
                if state.stage == Stage.OPEN:
                    self.say(f"demo: {STUDY!r} is open to participants: {self.link(state.study)}")
                else:
                    self.say(f"demo: {state.detail}")
            if state.finished:
                return
            self._stopping.wait(self.interval)
