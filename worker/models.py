from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Dataset(models.Model):
    """A set of photographs with a category and a split per image (its manifest)."""

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
    seed = models.IntegerField(default=0)
    #: Category names in display order ([] for an uncategorised set).
    categories = models.JSONField(default=list)
    #: {category or "": {"train": n, "val": n, "test": n}}
    counts = models.JSONField(default=dict)
    #: What the import did: imported, skipped (by reason), grayscale removed, settings.
    summary = models.JSONField(default=dict)

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


class ImportJob(models.Model):
    """An upload being turned into a data set by a worker."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    name = models.CharField(max_length=200)
    upload = models.CharField(max_length=255, help_text="storage name of the uploaded zip")
    original_filename = models.CharField(max_length=255)
    categories_from_folders = models.BooleanField(default=True)
    seed = models.IntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import {self.name} ({self.status})"
