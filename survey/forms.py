from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator

from studyplatform.safe_text import has_control_characters, validate_single_line
from survey.models import TEXT_FIELDS, Study
from survey.services.stimuli import scene_shortfall
from survey.wording import default_wording, key_display, wording_for
from worker.models import ColourisedImage, DatasetImage, ModelRun

#: (least, most) a study may ask for: beyond these no data set or sitting is realistic, and
#: the database's own limit would answer with a 19-digit number.
COUNT_LIMITS = {
    "images_per_participant": (2, 1000),
    "target_participants_per_condition": (1, 100_000),
    "practice_trials": (0, 100),
    "attention_checks": (0, 100),
}


def _limit(field: forms.Field, least: int, most: int) -> None:
    field.validators = [
        v for v in field.validators if not isinstance(v, (MinValueValidator, MaxValueValidator))
    ]
    field.validators += [MinValueValidator(least), MaxValueValidator(most)]
    field.widget.attrs.update(min=least, max=most)


class RunChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.name} ({obj.get_kind_display()}, {obj.dataset.name}, #{obj.pk})"


class StudyForm(forms.ModelForm):
    """A study's set-up. Once it has opened only :data:`TEXT_FIELDS` can change."""

    runs = RunChoices(
        queryset=ModelRun.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text="Each finished run becomes one condition.",
    )
    redirect_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label="Redirect when done (e.g. Prolific's completion URL)",
        help_text="“{code}” is replaced by the completion code.",
    )
    labels = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: one condition label per line, in the order of the runs above "
        "(default: the runs' names).",
    )

    field_order = ["name", "runs", "labels", "design"]

    class Meta:
        model = Study
        fields = [
            "name",
            "design",
            "images_per_participant",
            "target_participants_per_condition",
            "practice_trials",
            "attention_checks",
            "exposure_ms",
            "estimated_minutes",
            "time_limit_minutes",
            "language",
            "consent_text",
            "instructions",
            "question_text",
            "real_label",
            "ai_label",
            "real_key",
            "ai_key",
            "redirect_url",
        ]
        labels = {
            "language": "Participants' language",
            "question_text": "Question (optional)",
            "real_label": "Label of the answer “real” (optional)",
            "ai_label": "Label of the answer “AI” (optional)",
            "real_key": "Key for “real” (optional)",
            "ai_key": "Key for “AI” (optional)",
            "images_per_participant": "Images per participant (half real, half AI)",
            "target_participants_per_condition": "Target participants per condition",
            "exposure_ms": "Exposure time (ms)",
            "estimated_minutes": "Estimated time to take part (minutes)",
            "time_limit_minutes": "Time limit (minutes)",
        }
        help_texts = {
            "design": "Between subjects (the paper): each participant sees one condition.",
            "practice_trials": "Shown first, with feedback; excluded from the analysis.",
            "attention_checks": "Colour-inverted photographs among the trials; a participant "
            "who calls one real is excluded from the analysis.",
            "exposure_ms": "Empty: each image stays until answered. E.g. 1000 hides it after 1 s.",
            "estimated_minutes": "As you tell Prolific.",
            "time_limit_minutes": "A participant silent this long without finishing gives up "
            "their place to someone else. Empty: Prolific's maximum time for the estimate "
            "(2 + X + 2√X minutes).",
            "language": "Every fixed text the participants see (buttons, progress, messages) is "
            "in this language; write the consent and instructions in it too. These pages "
            "stay in English.",
            "consent_text": "Empty: a short default text, in the participants' language.",
            "instructions": "Empty: a short default text, in the participants' language.",
        }
        widgets = {
            "consent_text": forms.Textarea(attrs={"rows": 5}),
            "instructions": forms.Textarea(attrs={"rows": 5}),
        }

    def __init__(self, *args, runs=None, **kwargs):
        """``runs``: those the user may build a study from (default: all); a study being
        edited keeps offering its own runs, which a colleague may not see otherwise."""
        super().__init__(*args, **kwargs)
        study = self.instance
        choices = ModelRun.objects.all() if runs is None else runs
        if study.pk:
            choices = choices | ModelRun.objects.filter(conditions__study=study)
        self.fields["runs"].queryset = (
            ModelRun.objects.filter(pk__in=choices.values("pk"), status=ModelRun.Status.DONE)
            .select_related("dataset")
            .order_by("-pk")
        )
        if "estimated_minutes" in self.fields:
            self.fields["estimated_minutes"].required = False
        if "language" in self.fields:
            self.fields["language"].required = False
        self._describe_defaults()
        for name, (least, most) in COUNT_LIMITS.items():
            if name in self.fields:
                _limit(self.fields[name], least, most)
        if study.pk:
            self.fields["runs"].initial = [c.run_id for c in study.conditions.all()]
            self.fields["labels"].initial = "\n".join(c.label for c in study.conditions.all())
            if study.status != Study.Status.DRAFT:
                for name in list(self.fields):
                    if name not in TEXT_FIELDS:
                        del self.fields[name]

    def clean_name(self):
        name = self.cleaned_data["name"]
        validate_single_line(name)
        return name

    def clean_estimated_minutes(self):
        minutes = self.cleaned_data["estimated_minutes"]
        if minutes is None:  # left empty: the model's default
            return Study._meta.get_field("estimated_minutes").default
        if not 1 <= minutes <= 600:
            raise forms.ValidationError("Give the estimate in minutes, from 1 to 600.")
        return minutes

    def clean_time_limit_minutes(self):
        minutes = self.cleaned_data["time_limit_minutes"]
        if minutes is not None and not 1 <= minutes <= 1440:
            raise forms.ValidationError("Give the time limit in minutes, from 1 to 1440.")
        return minutes

    def clean_images_per_participant(self):
        n = self.cleaned_data["images_per_participant"]
        if n < 2 or n % 2:
            raise forms.ValidationError("Must be an even number (half real, half AI), at least 2.")
        return n

    def _describe_defaults(self) -> None:
        """Each answer field's help names every language's default, from the catalogues."""
        defaults = [(name, default_wording(code)) for code, name in settings.LANGUAGES]
        english = defaults[0][1]
        helps = {
            "question_text": f"Asked under each image. Empty: the language's default "
            f"(English: “{english.question}”).",
            "real_label": ", ".join(f"{n} “{w.real_label}”" for n, w in defaults),
            "ai_label": ", ".join(f"{n} “{w.ai_label}”" for n, w in defaults),
            "real_key": ", ".join(f"{n} {w.real_key}" for n, w in defaults),
            "ai_key": ", ".join(f"{n} {w.ai_key}" for n, w in defaults),
        }
        for name, text in helps.items():
            if name not in self.fields:
                continue
            if name.endswith("_label"):
                text = f"Empty: the language's default ({text})."
            elif name.endswith("_key"):
                text = f"One letter or digit. Empty: the language's default ({text})."
            self.fields[name].help_text = text

    def clean_language(self):
        return self.cleaned_data["language"] or Study._meta.get_field("language").default

    def clean_question_text(self):
        return self._one_line("question_text")

    def clean_real_label(self):
        return self._one_line("real_label")

    def clean_ai_label(self):
        return self._one_line("ai_label")

    def _one_line(self, name: str) -> str:
        value = self.cleaned_data[name].strip()
        validate_single_line(value)
        return value

    def clean_real_key(self):
        return self._key("real_key")

    def clean_ai_key(self):
        return self._key("ai_key")

    def _key(self, name: str) -> str:
        key = self.cleaned_data[name].strip()
        if key and not key.isalnum():
            raise forms.ValidationError("Give one letter or digit (or leave it empty).")
        return key_display(key)

    def _check_answers(self, cleaned) -> None:
        """The two answers must be told apart: different keys and different labels, once
        the language's defaults fill what is left empty."""
        names = ("language", "real_label", "ai_label", "real_key", "ai_key")
        if any(name not in self.fields or name not in cleaned for name in names):
            return
        wording = wording_for(**{name: cleaned[name] for name in names})
        if wording.real_key.casefold() == wording.ai_key.casefold():
            default = default_wording(cleaned["language"])
            self.add_error(
                "ai_key" if cleaned["ai_key"] else "real_key",
                f"The two answers need different keys (both would be {wording.real_key}; "
                f"this language's defaults are {default.real_key} and {default.ai_key}).",
            )
        if wording.real_label.casefold() == wording.ai_label.casefold():
            self.add_error(
                "ai_label" if cleaned["ai_label"] else "real_label",
                f"The two answers need different labels (both would be “{wording.real_label}”).",
            )

    def clean_labels(self):
        labels = self.cleaned_data["labels"]
        if any(has_control_characters(line) for line in labels.splitlines()):
            raise forms.ValidationError("Labels cannot contain tabs or control characters.")
        return labels

    def clean(self):
        cleaned = super().clean()
        self._check_answers(cleaned)
        if "runs" in self.fields and cleaned.get("runs") is not None:
            labels = [x.strip() for x in cleaned.get("labels", "").splitlines() if x.strip()]
            if labels and len(labels) != len(cleaned["runs"]):
                self.add_error("labels", "Give one label per chosen run, or none.")
            if len(set(labels)) != len(labels):
                self.add_error("labels", "Labels must differ.")
            cleaned["label_list"] = labels or None
            self._check_scenes(cleaned)
        return cleaned

    def _check_scenes(self, cleaned) -> None:
        """Refuse here what preparing the stimuli would refuse: too few colourised scenes."""
        names = ("design", "images_per_participant", "practice_trials", "attention_checks")
        if not cleaned["runs"] or any(cleaned.get(name) is None for name in names):
            return
        names_by_id = {run.pk: f"{run.name} (#{run.pk})" for run in cleaned["runs"]}
        scenes_by_run: dict[str, set[int]] = {name: set() for name in names_by_id.values()}
        pairs = ColourisedImage.objects.filter(
            run__in=cleaned["runs"], source__split=DatasetImage.Split.TEST
        ).values_list("run_id", "source_id")
        for run_id, scene in pairs:
            scenes_by_run[names_by_id[run_id]].add(scene)
        shortfall = scene_shortfall(
            design=cleaned["design"],
            scenes_by_run=scenes_by_run,
            images_per_participant=cleaned["images_per_participant"],
            practice_trials=cleaned["practice_trials"],
            attention_checks=cleaned["attention_checks"],
        )
        if shortfall:
            self.add_error(None, shortfall[0].upper() + shortfall[1:] + ".")
