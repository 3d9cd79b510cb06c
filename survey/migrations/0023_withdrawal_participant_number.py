from django.db import migrations, models


def number_earlier_withdrawals(apps, schema_editor):
    """The logs written before the number was kept: their participant's row is still there
    (withdrawn, not deleted), found by its public id."""
    Withdrawal = apps.get_model("survey", "Withdrawal")
    Participant = apps.get_model("survey", "Participant")
    for withdrawal in Withdrawal.objects.filter(participant_number__isnull=True).iterator():
        pk = (
            Participant.objects.filter(
                study_id=withdrawal.study_id, public_id=withdrawal.participant_public_id
            )
            .values_list("pk", flat=True)
            .first()
        )
        if pk is not None:
            Withdrawal.objects.filter(pk=withdrawal.pk).update(participant_number=pk)


class Migration(migrations.Migration):
    dependencies = [
        ("survey", "0022_instructed_rating_checks"),
    ]

    operations = [
        migrations.AddField(
            model_name="withdrawal",
            name="participant_number",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(number_earlier_withdrawals, migrations.RunPython.noop),
    ]
