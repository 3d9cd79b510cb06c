"""Counting the visits to a study's link that could not start or resume a participation
(a malformed Prolific id, or a Prolific id already taking part in another browser), so
that the researcher's monitor shows them. One row per study and reason."""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from survey.models import RefusedStart, Study


def refused_start_record(*, study: Study, reason: str, example: str = "") -> None:
    row, _ = RefusedStart.objects.get_or_create(study=study, reason=reason)
    fields = {"count": F("count") + 1, "last_at": timezone.now()}
    if example:
        fields["example"] = example[:100]
    RefusedStart.objects.filter(pk=row.pk).update(**fields)
