"""The migrations describe the models: a model change without its migration would leave a
fresh database (``migrate``, as ``scripts/run.sh`` and CI run it) without the column or
constraint the code relies on."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_every_model_change_has_its_migration():
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as missing:  # --check exits 1 when a migration is missing
        pytest.fail(f"a model change has no migration (exit {missing.code}):\n{out.getvalue()}")
