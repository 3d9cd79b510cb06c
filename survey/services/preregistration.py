"""Freezing a study's pre-registration (survey.preregistration) when it first opens for
real, in the transaction that opens it.

A pilot opening does not freeze: pilot data are no part of the analysis, and removing them
puts a never-opened study back to draft, whose design may still change. The pre-registration
is frozen when the study opens for real (from a draft, or from a pilot); reopening a closed
study keeps the one it has. A study opened before pre-registrations existed has none (its
page says so) and never gets one later: it would describe a study already under way.
"""

from __future__ import annotations

from django.db import transaction

from survey.models import PreRegistration, Study
from survey.preregistration import (
    build_document,
    canonical_bytes,
    document_sha256,
    render_markdown,
)


def preregistration_freeze(*, study: Study) -> PreRegistration:
    """The study's pre-registration, created now if it has none. Call it inside the
    transaction that opens the study, holding the study's row lock."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("freeze the pre-registration in the transaction that opens the study")
    existing = PreRegistration.objects.filter(study=study).first()
    if existing is not None:
        return existing
    document = build_document(study)
    sha = document_sha256(document)
    return PreRegistration.objects.create(
        study=study,
        document=canonical_bytes(document).decode("utf-8"),
        markdown=render_markdown(document, sha),
        sha256=sha,
    )
