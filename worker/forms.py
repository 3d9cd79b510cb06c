import zipfile
from pathlib import PurePosixPath

from django import forms
from django.conf import settings

from colourmodels.data.categories import CATEGORIES, OTHERS
from colourmodels.data.images import IMAGE_EXTENSIONS
from colourmodels.early_stopping import MONITORS, PAPER_SETTINGS
from studyplatform.safe_text import validate_single_line
from worker.models import Dataset, ModelRun
from worker.services.datasets import DATASET_SEED_MAX
from worker.services.runs import SEED_MAX, default_config


class DatasetUploadForm(forms.Form):
    name = forms.CharField(max_length=200, validators=[validate_single_line])
    archive = forms.FileField(
        label="Zip of photos", help_text="Optionally one folder per category inside the zip."
    )
    categories_from_folders = forms.BooleanField(
        required=False, initial=True, label="Use the folders inside the zip as categories"
    )
    seed = forms.IntegerField(
        initial=0,
        min_value=0,
        max_value=DATASET_SEED_MAX,
        help_text=f"Seed of the train / validation / test split (0 to {DATASET_SEED_MAX}).",
    )

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
        try:
            holds_an_image = _holds_an_image(archive)
        except zipfile.BadZipFile:
            raise forms.ValidationError("This is not a zip archive.") from None
        if not holds_an_image:
            kinds = ", ".join(sorted(IMAGE_EXTENSIONS))
            raise forms.ValidationError(f"This zip holds no images (files ending in {kinds}).")
        archive.seek(0)
        return archive


def _holds_an_image(archive) -> bool:
    """Whether the zip names a member the import would read as an image (hidden files and
    macOS's __MACOSX folder are ignored there too); the import still checks each one."""
    with zipfile.ZipFile(archive) as zf:
        names = [info.filename for info in zf.infolist() if not info.is_dir()]
    for name in names:
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        if any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue
        if parts and PurePosixPath(parts[-1]).suffix.lower() in IMAGE_EXTENSIONS:
            return True
    return False


IMAGE_SIZES = (32, 64, 128, 256, 512)


def _paper_defaults() -> dict:
    return default_config(kind=ModelRun.Kind.ENSEMBLE, categories=list(CATEGORIES))


class DatasetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        categories = ", ".join(obj.categories) if obj.categories else "no categories"
        return f"{obj.name} ({obj.total} images; {categories})"


class RunLaunchForm(forms.Form):
    """A model run's set-up; every default is the paper's setting (method.md §3–5)."""

    name = forms.CharField(
        max_length=200,
        required=False,
        validators=[validate_single_line],
        help_text="Optional: “kind space” when left empty.",
    )
    kind = forms.ChoiceField(
        choices=[
            (ModelRun.Kind.BASELINE, "Pix2Pix baseline (one generator)"),
            (ModelRun.Kind.ENSEMBLE, "Context ensemble (classifier + one generator a category)"),
        ],
        initial=ModelRun.Kind.BASELINE,
    )
    colour_space = forms.ChoiceField(
        choices=[("lab", "LAB"), ("yuv", "YUV")], initial="lab", label="Colour space"
    )
    dataset = DatasetChoiceField(queryset=Dataset.objects.order_by("-created_at"), label="Data set")
    image_size = forms.TypedChoiceField(
        choices=[(s, f"{s} × {s}") for s in IMAGE_SIZES], coerce=int, label="Image size"
    )
    width = forms.IntegerField(
        min_value=1, max_value=1024, help_text="Generator width (64 in the paper)."
    )
    epochs = forms.IntegerField(min_value=1, max_value=10000, help_text="At most this many.")
    batch_size = forms.IntegerField(min_value=1, max_value=4096, label="Batch size (generators)")
    early_stopping = forms.BooleanField(
        required=False, label="Early stopping (Prechelt's PQ criterion)"
    )
    monitor = forms.ChoiceField(
        choices=[
            (m, {"total": "total G loss (paper)", "gan": "GAN plain loss"}[m]) for m in MONITORS
        ],
        label="Loss the criterion watches",
    )
    routing = forms.ChoiceField(
        choices=[
            ("predicted", "predicted (the classifier's category)"),
            ("oracle", "oracle (the true category)"),
            ("soft", "soft (probability-weighted mix)"),
        ],
    )
    classifier_epochs = forms.IntegerField(min_value=1, max_value=10000, label="Classifier epochs")
    classifier_patience = forms.IntegerField(
        min_value=1,
        max_value=10000,
        required=False,
        label="Classifier patience (epochs)",
        help_text="Stop the classifier once its validation accuracy has not improved for this "
        "many epochs. Empty: train all its epochs, as the paper does.",
    )
    seed = forms.IntegerField(min_value=0, max_value=SEED_MAX, help_text=f"0 to {SEED_MAX}.")
    fast = forms.BooleanField(
        required=False,
        label="Fast mode",
        help_text="On a GPU: bf16 autocast, channels-last, fused Adam. Off: the reference "
        "pix2pix step.",
    )

    def __init__(self, *args, datasets=None, dataset=None, **kwargs):
        """``datasets``: those the user may launch on (default: all). ``dataset``: the one
        chosen (default: the newest); a bound form uses the posted one. The early-stopping
        table has a row for the baseline and one for each of its categories."""
        super().__init__(*args, **kwargs)
        if datasets is not None:
            self.fields["dataset"].queryset = datasets.order_by("-created_at")
        defaults = _paper_defaults()
        choices = self.fields["dataset"].queryset
        if self.is_bound:
            posted = str(self.data.get("dataset", ""))
            dataset = choices.filter(pk=posted).first() if posted.isdigit() else None
        self.chosen_dataset = dataset or choices.first()
        self.fields["dataset"].initial = self.chosen_dataset
        self.fields["dataset"].widget = forms.HiddenInput()
        for key in ("image_size", "width", "epochs", "batch_size", "routing", "seed", "fast"):
            self.fields[key].initial = defaults[key]
        self.fields["classifier_epochs"].initial = defaults["classifier"]["epochs"]
        self.fields["classifier_patience"].initial = defaults["classifier"]["patience"]
        self.fields["early_stopping"].initial = bool(defaults["early_stopping"])
        self.fields["monitor"].initial = defaults["early_stopping"]["baseline"].get(
            "monitor", "total"
        )
        for key, setting, _ in self._early_stopping_keys():
            # The table's headers label the inputs for the eye; aria-label for the ear.
            self.fields[f"k_{key}"] = forms.IntegerField(
                min_value=1,
                max_value=1000,
                initial=setting.k,
                label=f"k ({key})",
                widget=forms.NumberInput(attrs={"aria-label": f"k ({key})"}),
            )
            self.fields[f"mu_{key}"] = forms.FloatField(
                min_value=0,
                max_value=1000,
                initial=setting.mu,
                label=f"μ ({key})",
                widget=forms.NumberInput(attrs={"aria-label": f"μ ({key})", "step": "any"}),
            )
            for name in (f"k_{key}", f"mu_{key}"):  # in a table: no label element
                self.fields[name].widget.attrs["aria-label"] = self.fields[name].label

    def _early_stopping_keys(self):
        """(row, the paper's setting, whence) for the baseline and each of the chosen data
        set's categories: the paper's (k, μ) where the category is one of the paper's
        (method.md §4), else the paper's "others" row, the documented default."""
        rows = [("baseline", PAPER_SETTINGS["baseline"], "the paper's baseline")]
        categories = self.chosen_dataset.categories if self.chosen_dataset else []
        for category in categories:
            if category == "baseline":
                continue  # cannot be told from the baseline's row; it shares its values
            if category in PAPER_SETTINGS:
                rows.append((category, PAPER_SETTINGS[category], "the paper's value"))
            else:
                rows.append((category, PAPER_SETTINGS[OTHERS], f"default: the paper's “{OTHERS}”"))
        return rows

    def early_stopping_rows(self):
        """(name, k field, μ field, whence) for the template's table."""
        return [
            (key, self[f"k_{key}"], self[f"mu_{key}"], whence)
            for key, _, whence in self._early_stopping_keys()
        ]

    def main_fields(self):
        names = ("name", "kind", "colour_space")
        return [self[n] for n in names]

    def estimate_settings(self) -> dict:
        """image_size, width and epochs as posted (where valid) or as offered."""
        cleaned = getattr(self, "cleaned_data", None) or {}
        return {
            key: cleaned.get(key) or self.fields[key].initial
            for key in ("image_size", "width", "epochs")
        }

    def training_fields(self):
        return [self[n] for n in ("image_size", "width", "epochs", "batch_size", "seed")]

    def clean(self):
        cleaned = super().clean()
        dataset = cleaned.get("dataset")
        if cleaned.get("kind") == ModelRun.Kind.ENSEMBLE and dataset is not None:
            if len(dataset.categories) < 2:
                self.add_error(
                    "dataset",
                    f"An ensemble needs a data set with categories; {dataset.name} has none.",
                )
        return cleaned

    def config(self) -> dict:
        """The overrides for ``model_run_launch`` (it fills in the rest from the paper)."""
        data = self.cleaned_data
        config = {
            "image_size": data["image_size"],
            "width": data["width"],
            "epochs": data["epochs"],
            "batch_size": data["batch_size"],
            "routing": data["routing"],
            "seed": data["seed"],
            "fast": data["fast"],
            "classifier": {
                "epochs": data["classifier_epochs"],
                "patience": data["classifier_patience"],
            },
        }
        if not data["early_stopping"]:
            config["early_stopping"] = None
            return config

        def setting(key):
            return {"k": data[f"k_{key}"], "mu": data[f"mu_{key}"], "monitor": data["monitor"]}

        early = {"baseline": setting("baseline")}
        if data["kind"] == ModelRun.Kind.ENSEMBLE:
            for category in data["dataset"].categories:
                early[category] = setting(category)
        config["early_stopping"] = early
        return config


class RunUploadForm(forms.Form):
    name = forms.CharField(
        max_length=200,
        validators=[validate_single_line],
        help_text="The model's name, as studies show it.",
    )
    dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.order_by("name"),
        label="Data set",
        help_text="The data set whose test images were colourised.",
    )
    colour_space = forms.ChoiceField(
        choices=[("lab", "LAB"), ("yuv", "YUV")],
        initial="lab",
        help_text="The space in which the L1 distance and chroma error are measured.",
    )
    archive = forms.FileField(
        label="Zip of colourised images",
        help_text="With manifest.csv inside (described below the form), or give it below.",
    )
    manifest = forms.FileField(label="Manifest (CSV)", required=False)

    def __init__(self, *args, datasets=None, **kwargs):
        """``datasets``: those the user may upload a run against (default: all)."""
        super().__init__(*args, **kwargs)
        if datasets is not None:
            self.fields["dataset"].queryset = datasets.order_by("name")

    def clean_archive(self):
        archive = self.cleaned_data["archive"]
        limit = settings.DATASET_UPLOAD_MAX_BYTES
        if archive.size > limit:
            raise forms.ValidationError(f"The file is larger than {limit // 2**20} MiB.")
        if not zipfile.is_zipfile(archive):
            raise forms.ValidationError("This is not a zip archive.")
        archive.seek(0)
        return archive
