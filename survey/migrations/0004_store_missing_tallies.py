"""Tallies of the participants who finished before tallies were stored at the last answer.

Until then the analysis stored a finished participant's tally when it next ran (a GET that
wrote); now the last answer stores it (survey.services.trials.trial_answer) and the
analysis only reads, so the participants who finished before need theirs once, here: run
by every ``migrate``, it leaves no finished participant without a tally, which a command
to remember would not. The counting is written out with the historical models (not
imported from survey.analysis, which may change after this migration), the same numbers
as survey.analysis.counts.participant_tallies; tallies stored already are kept.
"""

from django.db import migrations
from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Greatest, Ln

BATCH = 2000
CELLS = {  # name -> (the stimulus is real, the answer)
    "real_real": (True, "real"),
    "real_ai": (True, "ai"),
    "ai_real": (False, "real"),
    "ai_ai": (False, "ai"),
}


def store_missing_tallies(apps, schema_editor):
    Participant = apps.get_model("survey", "Participant")
    ParticipantTally = apps.get_model("survey", "ParticipantTally")
    Trial = apps.get_model("survey", "Trial")
    missing = Participant.objects.filter(
        completed_at__isnull=False, withdrawn_at__isnull=True, tallies__isnull=True
    ).values("pk")
    log_rt = Ln(Greatest(F("rt_ms"), Value(1)))
    rows = (
        Trial.objects.filter(participant__in=missing, kind="main", answer__isnull=False)
        .values("participant_id", condition=F("stimulus__condition_id"))
        .annotate(
            **{
                name: Count("pk", filter=Q(stimulus__is_real=real, answer=answer))
                for name, (real, answer) in CELLS.items()
            },
            log_rt_real=Sum(log_rt, filter=Q(stimulus__is_real=True)),
            log_rt_ai=Sum(log_rt, filter=Q(stimulus__is_real=False)),
        )
        .order_by()
    )
    batch = []
    for row in rows.iterator(chunk_size=BATCH):
        batch.append(
            ParticipantTally(
                participant_id=row["participant_id"],
                condition_id=row["condition"],
                **{name: row[name] for name in (*CELLS, "log_rt_real", "log_rt_ai")},
            )
        )
        if len(batch) == BATCH:
            ParticipantTally.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    ParticipantTally.objects.bulk_create(batch, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("survey", "0003_analysis_tallies"),
    ]

    operations = [
        migrations.RunPython(store_missing_tallies, migrations.RunPython.noop),
    ]
