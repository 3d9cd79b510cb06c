"""What studies, model runs and data sets share about their owner: the sharing levels and the
abstract model of one share (a colleague and a level). Each app subclasses :class:`Share`
once per kind of object (``DatasetShare``, ``RunShare``, ``StudyShare``), with a foreign key
named after the object and ``related_name="shares"``; :mod:`studyplatform.access` reads them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Level(models.TextChoices):
    VIEW = "view", "view"
    EDIT = "edit", "edit"


def owner_field() -> models.ForeignKey:
    """The owner of a data set, run or study. NULL means unowned (made by a command without
    ``--owner``, or before owners existed when no researcher account was there to take it):
    visible and editable only by staff researchers and superusers."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )


class Share(models.Model):
    """One colleague's access to one object, at one level."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    level = models.CharField(max_length=4, choices=Level.choices, default=Level.VIEW)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.user} ({self.level})"


def give_unowned_rows(apps, app_label: str, model_name: str) -> None:
    """The data migration's rule for rows made before owners existed: each goes to its
    creator if that account is a researcher, else to the oldest researcher account; with no
    researcher account at all the rows stay unowned (see :func:`owner_field`)."""
    user_model = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    researchers = user_model.objects.filter(groups__name="researchers").order_by(
        "date_joined", "pk"
    )
    oldest = researchers.first()
    if oldest is None:
        return
    model = apps.get_model(app_label, model_name)
    unowned = model.objects.filter(owner__isnull=True)
    unowned.filter(created_by__in=researchers).update(owner_id=models.F("created_by_id"))
    unowned.update(owner=oldest)
