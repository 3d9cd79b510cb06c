"""Stimuli are served as their pixels in an uncompressed PNG (survey.participation
.served_image): a prepared study's ``stimulus_bytes`` becomes the longest of those, from its
stimuli's width and height (it was the longest JPEG file, which the PNGs outgrow)."""

import io

from django.db import migrations


def _served_length(width: int, height: int) -> int:
    # survey.services.stimuli.served_length as it is when this migration is written.
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="PNG", compress_level=0)
    return len(buffer.getvalue())


def served_lengths(apps, schema_editor):
    Study = apps.get_model("survey", "Study")
    Stimulus = apps.get_model("survey", "Stimulus")
    sizes: dict[int, set[tuple[int, int]]] = {}
    for study, width, height in (
        Stimulus.objects.filter(width__gt=0, height__gt=0)
        .values_list("study_id", "width", "height")
        .distinct()
    ):
        sizes.setdefault(study, set()).add((width, height))
    for study, shapes in sizes.items():
        longest = max(_served_length(w, h) for w, h in shapes)
        Study.objects.filter(pk=study, stimulus_bytes__lt=longest).update(stimulus_bytes=longest)


class Migration(migrations.Migration):
    dependencies = [("survey", "0023_withdrawal_participant_number")]

    operations = [migrations.RunPython(served_lengths, migrations.RunPython.noop)]
