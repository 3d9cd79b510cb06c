import zipfile

from django import forms
from django.conf import settings

from worker.models import Dataset


class DatasetUploadForm(forms.Form):
    name = forms.CharField(max_length=200)
    archive = forms.FileField(
        label="Zip of photos", help_text="Optionally one folder per category inside the zip."
    )
    categories_from_folders = forms.BooleanField(
        required=False, initial=True, label="Use the folders inside the zip as categories"
    )
    seed = forms.IntegerField(initial=0, help_text="Seed of the train / validation / test split.")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Dataset.objects.filter(name=name).exists():
            raise forms.ValidationError("A data set with this name already exists.")
        return name

    def clean_archive(self):
        archive = self.cleaned_data["archive"]
        limit = settings.DATASET_UPLOAD_MAX_BYTES
        if archive.size > limit:
            raise forms.ValidationError(f"The file is larger than {limit // 2**20} MiB.")
        if not archive.name.lower().endswith(".zip") or not zipfile.is_zipfile(archive):
            raise forms.ValidationError("This is not a zip archive.")
        archive.seek(0)
        return archive
