from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from studyplatform.ownership import Share, owner_field


class Dataset(models.Model):
    """A set of photographs with a category and a split per image (its manifest).

    ``owner`` and ``shares``: who may see and change it (:mod:`studyplatform.access`); a
    NULL owner means unowned, visible and editable only by staff researchers and superusers."""

    class Source(models.TextChoices):
        MIRFLICKR = "mirflickr", "MIRFLICKR-25000"
        FOLDER = "folder", "Folder of photos"
        ZIP = "zip", "Zip of photos"
        SYNTHETIC = "synthetic", "Synthetic scenes"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, unique=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    owner = owner_field()
    seed = models.IntegerField(default=0)
    #: Category names in display order ([] for an uncategorised set).
    categories = models.JSONField(default=list)
    #: {category or "": {"train": n, "val": n, "test": n}}
    counts = models.JSONField(default=dict)
    #: What the import did: imported, skipped (by reason), grayscale removed, settings.
    summary = models.JSONField(default=dict)
    #: Archived: hidden from the lists and from the choices of new work; still works where
    #: already used (studyplatform.archiving).
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def total(self) -> int:
        return sum(sum(per_split.values()) for per_split in self.counts.values())


class DatasetImage(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train", "train"
        VAL = "val", "validation"
        TEST = "test", "test"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="images")
    #: Stored under a generated name; the original name is kept only as data.
    file = models.CharField(max_length=255)
    original_name = models.CharField(max_length=500)
    category = models.CharField(max_length=64, blank=True)
    split = models.CharField(max_length=5, choices=Split.choices)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "original_name"], name="dataset_image_unique_name"
            ),
        ]
        indexes = [models.Index(fields=["dataset", "split", "category"])]

    def __str__(self) -> str:
        return f"{self.dataset.name}: {self.original_name}"


class ChromaMeans(models.Model):
    """The per-category mean chroma of a data set's training images in one colour space,
    each image brought to one size (0: as stored), that the mean-chroma reference paints
    (``worker.services.references``): computed once, reused by every run evaluated on that
    data set at that size. ``train_split`` ("count:last id" of the training rows) says
    which split it was computed over; for any other it is computed again."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="chroma_means")
    colour_space = models.CharField(max_length=3)
    image_size = models.PositiveIntegerField(help_text="0: each image at its stored size")
    train_split = models.CharField(max_length=64)
    #: colourmodels.references.CategoryChromaMeans.state()
    state = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "colour_space", "image_size"], name="chroma_means_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name}: {self.colour_space} {self.image_size or 'as stored'}"


class ImportJob(models.Model):
    """An upload being checked by a worker: a zip of photos turned into a data set
    (``kind="dataset"``), or a run made elsewhere turned into an uploaded ``ModelRun``
    (``kind="run"``: its zip, separate manifest, data set and colour space)."""

    class Kind(models.TextChoices):
        DATASET = "dataset", "data set"
        RUN = "run", "run"

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DATASET)

    name = models.CharField(max_length=200)
    upload = models.CharField(max_length=255, help_text="storage name of the uploaded zip")
    original_filename = models.CharField(max_length=255)
    categories_from_folders = models.BooleanField(default=True)
    seed = models.IntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    #: Every problem of a refused run upload, in words (``error`` shows the first few).
    problems = models.JSONField(default=list, blank=True)
    #: The data set made (``kind="dataset"``).
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL)
    #: A run upload's parameters: the data set of its ground truths, its colour space, the
    #: storage name and file name of its separate manifest (blank: the zip's own).
    target = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="run_uploads"
    )
    colour_space = models.CharField(max_length=3, blank=True)
    manifest = models.CharField(max_length=255, blank=True)
    manifest_filename = models.CharField(max_length=255, blank=True)
    #: The run made (``kind="run"``).
    run = models.ForeignKey(
        "ModelRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    #: The claim of the worker importing it (worker.services.claims).
    claim_token = models.UUIDField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import {self.name} ({self.status})"


class ModelRun(models.Model):
    """A colourisation model trained here (baseline or ensemble) or uploaded from elsewhere.

    The row is the source of truth for state and progress; its sub-models are the units of
    work that Celery tasks train."""

    class Kind(models.TextChoices):
        BASELINE = "baseline", "Pix2Pix baseline"
        ENSEMBLE = "ensemble", "Context ensemble"
        UPLOADED = "uploaded", "Uploaded"

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        EVALUATING = "evaluating", "evaluating"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.EVALUATING)

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    colour_space = models.CharField(max_length=3, choices=[("lab", "LAB"), ("yuv", "YUV")])
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="runs")
    config = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    failure_reason = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    #: Where it ran: device, library versions, the code's git commit.
    environment = models.JSONField(default=dict)
    #: The paper's tables and more, filled by the evaluation.
    metrics = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    owner = owner_field()
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: The claim of the worker evaluating it (worker.services.claims): its heartbeat,
    #: written while the run is being evaluated so that a silent evaluation is noticed.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    evaluation_attempts = models.PositiveIntegerField(default=0)
    claim_token = models.UUIDField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    #: Archived: hidden from the lists and from a new study's choices (studyplatform.archiving).
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()}, {self.colour_space.upper()})"

    @property
    def storage_prefix(self) -> str:
        return f"runs/{self.uid.hex}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class SubModel(models.Model):
    """One network a run trains: a generator (for all images or one category) or the
    classifier that routes images to the ensemble's generators."""

    class Role(models.TextChoices):
        GENERATOR = "generator", "generator"
        CLASSIFIER = "classifier", "classifier"

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, related_name="submodels")
    role = models.CharField(max_length=10, choices=Role.choices)
    #: The category a generator is trained on; "" for the baseline and the classifier.
    category = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    epoch = models.PositiveIntegerField(default=0)
    epochs = models.PositiveIntegerField(default=0)
    step = models.PositiveIntegerField(default=0)
    steps = models.PositiveIntegerField(default=0)
    losses = models.JSONField(default=dict)
    eta_seconds = models.FloatField(null=True, blank=True)
    best_epoch = models.PositiveIntegerField(null=True, blank=True)
    stopped_epoch = models.PositiveIntegerField(null=True, blank=True)
    #: Each claim by a worker gets a new token; a worker whose token was replaced stops.
    claim_token = models.UUIDField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)
    #: Storage names of the kept weights.
    artefacts = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "role", "category"], name="submodel_unique"),
        ]
        ordering = ["run", "role", "category"]

    def __str__(self) -> str:
        return f"{self.role}:{self.category or 'all'}"

    @property
    def label(self) -> str:
        if self.role == self.Role.CLASSIFIER:
            return "classifier"
        return f"generator ({self.category})" if self.category else "generator"


class EpochRecord(models.Model):
    """One epoch of one sub-model's history, as its trainer recorded it."""

    submodel = models.ForeignKey(SubModel, on_delete=models.CASCADE, related_name="epoch_records")
    epoch = models.PositiveIntegerField()
    values = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["submodel", "epoch"], name="epoch_record_unique"),
        ]
        ordering = ["submodel", "epoch"]

    def __str__(self) -> str:
        return f"{self.submodel} epoch {self.epoch}"


class ColourisedImage(models.Model):
    """A test image as a run colourised it, with its metrics against the ground truth."""

    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, related_name="outputs")
    source = models.ForeignKey(DatasetImage, on_delete=models.PROTECT, related_name="outputs")
    file = models.CharField(max_length=255)
    #: The category the image was routed to (ensemble), or given in an upload's manifest.
    routed_category = models.CharField(max_length=64, blank=True)
    metrics = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "source"], name="colourised_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.run.name}: {self.source.original_name}"


class DatasetShare(Share):
    """A colleague's access to a data set (see :class:`studyplatform.ownership.Share`)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="shares")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "user"], name="dataset_share_unique"),
        ]


class RunShare(Share):
    """A colleague's access to a model run (see :class:`studyplatform.ownership.Share`)."""

    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, related_name="shares")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "user"], name="run_share_unique"),
        ]
