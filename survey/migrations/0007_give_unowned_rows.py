from django.db import migrations

from studyplatform.ownership import give_unowned_rows


def forwards(apps, schema_editor):
    give_unowned_rows(apps, "survey", "Study")


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("survey", "0006_study_owner_studyshare"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
