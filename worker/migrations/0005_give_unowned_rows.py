from django.db import migrations

from studyplatform.ownership import give_unowned_rows


def forwards(apps, schema_editor):
    give_unowned_rows(apps, "worker", "Dataset")
    give_unowned_rows(apps, "worker", "ModelRun")


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("worker", "0004_dataset_owner_modelrun_owner_datasetshare_runshare"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
