from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Q

from studyplatform.safe_text import has_control_characters, validate_single_line
from survey.models import TEXT_FIELDS, Condition, Study
from survey.preference_protocol import preference_scene_shortfall, preference_settings_problems
from survey.protocols import images_per_participant_problem
from survey.services.stimuli import scene_shortfall
from survey.wording import default_wording, key_display, wording_for
from worker.models import ColourisedImage, DatasetImage, ModelRun
from worker.run_results import run_coverage

#: The longest exposure a study may set (beyond a minute, leave it empty: until answered).
MAX_EXPOSURE_MS = 60_000

#: (least, most) a study may ask for: beyond these no data set or sitting is realistic, and
#: the database's own limit would answer with a 19-digit number.
COUNT_LIMITS = {
    "images_per_participant": (2, 1000),
    "target_participants_per_condition": (1, 100_000),
    "practice_trials": (0, 100),
    "attention_checks": (0, 100),
    "instructed_checks": (0, 100),
}


def _limit(field: forms.Field, least: int, most: int) -> None:
    field.validators = [
        v for v in field.validators if not isinstance(v, (MinValueValidator, MaxValueValidator))
    ]
    field.validators += [MinValueValidator(least), MaxValueValidator(most)]
    field.widget.attrs.update(min=least, max=most)


#: A condition's label is at most this long (the model's column).
LABEL_MAX = Condition._meta.get_field("label").max_length
LABEL_PREFIX = "label_"


def label_field(run: ModelRun) -> str:
    """The name of the field that holds ``run``'s condition label."""
    return f"{LABEL_PREFIX}{run.pk}"


def run_name(run: ModelRun) -> str:
    """A run as errors name it: “name” (#id)."""
    return f"“{run.name}” (#{run.pk})"


class RunChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        coverage = run_coverage(obj)
        partial = f", tested on {coverage.text}" if coverage and not coverage.complete else ""
        status = ""  # a draft's own runs are listed whatever their state
        if obj.status in ModelRun.ACTIVE:
            status = ", still training: the study can open once it is done"
        elif obj.status != ModelRun.Status.DONE:
            status = f", {obj.get_status_display()}: untick it, or the study cannot open"
        return (
            f"{obj.name} ({obj.get_kind_display()}, {obj.dataset.name}, #{obj.pk}{partial}{status})"
        )


class StudyForm(forms.ModelForm):
    """A study's set-up. Once it has opened only :data:`TEXT_FIELDS` can change."""

    runs = RunChoices(
        queryset=ModelRun.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Tick at least one run: each becomes a condition."},
        help_text="Tick each finished run that becomes a condition and give it the label "
        "the analysis shows (empty: the run's name).",
    )
    redirect_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label="Redirect when done (e.g. Prolific's completion URL)",
        help_text="“{code}” is replaced by the completion code.",
    )

    field_order = ["name", "protocol", "runs", "design"]

    class Meta:
        model = Study
        fields = [
            "name",
            "protocol",
            "design",
            "images_per_participant",
            "target_participants_per_condition",
            "practice_trials",
            "attention_checks",
            "instructed_checks",
            "instructed_checks_exclude",
            "colour_screen",
            "colour_screen_excludes",
            "exposure_ms",
            "preference_adaptive",
            "drop_flagged_displays",
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
            "hypotheses",
            "equivalence_margin",
            "alpha",
        ]
        labels = {
            "protocol": "Protocol",
            "hypotheses": "Hypotheses (pre-registration)",
            "equivalence_margin": "Equivalence margin δ",
            "alpha": "Significance level α",
            "language": "Participants' language",
            "question_text": "Question (optional)",
            "real_label": "Label of the answer “real” (optional)",
            "ai_label": "Label of the answer “AI” (optional)",
            "real_key": "Key for “real” (optional)",
            "ai_key": "Key for “AI” (optional)",
            "images_per_participant": "Images (or pairs) per participant",
            "target_participants_per_condition": "Target participants per condition",
            "exposure_ms": "Exposure time (ms)",
            "drop_flagged_displays": "Leave out of the analysis the trials whose display was "
            "flagged",
            "preference_adaptive": "Preference study: choose pairs adaptively where the ranking "
            "is least certain",
            "estimated_minutes": "Estimated time to take part (minutes)",
            "time_limit_minutes": "Time limit (minutes)",
            "instructed_checks": "Instructed-response checks",
            "instructed_checks_exclude": "Also exclude from the analysis a participant who "
            "fails an instructed-response check",
            "colour_screen": "Colour-vision screen before the trials",
            "colour_screen_excludes": "Also exclude from the analysis a participant who fails "
            "the colour-vision screen",
        }
        help_texts = {
            "protocol": "What each trial shows and asks; frozen when the study opens. Paired "
            "(Zhang et al. 2016, pix2pix): the photograph and a colourisation of it side by "
            "side, “Which one is the real photograph?”; images per participant then counts "
            "pairs, attention checks are vigilance pairs (the photograph beside itself in "
            "random colours). Model vs model preference: two runs' colourisations of one "
            "photograph side by side, “Which looks more natural?” (at least 2 runs, within "
            "subjects, no practice or attention checks; images per participant counts pairs). "
            "Rating (ITU-T P.910 ACR): one image at a time rated from 1 (bad) "
            "to 5 (excellent), the real photographs among them as a hidden reference; no "
            "attention checks. HYPE_time (Zhou et al. 2019): one image at a time, its exposure set "
            "by a 3-up/1-down staircase between 100 and 1000 ms, then backward masks; between "
            "subjects, exposure left empty. Choose a preset above to fill in the published "
            "design.",
            "images_per_participant": "Single image, rating and HYPE_time: images, half real "
            "photographs and half AI images (an even number). Paired and preference: pairs.",
            "design": "Between subjects (the paper): each participant sees one condition.",
            "preference_adaptive": "Only for a model-vs-model preference study. Off: every "
            "pair of runs equally often. On: from each participant's third pair, the pair of "
            "runs whose score difference is least certain given every answer so far.",
            "practice_trials": "Shown first, with feedback; excluded from the analysis.",
            "attention_checks": "Colour-inverted photographs among the trials; a participant "
            "who calls one real is excluded from the analysis.",
            "instructed_checks": "Ordinary images among the trials, each with an instruction "
            "in place of the question (“For this image, please answer Real”, or AI, at "
            "random; in a paired or preference study a pair, “For this pair, please answer "
            "Left”, or Right; in a rating study a score, “… answer Poor (2)”). Each takes "
            "a photograph of its own, reserved for it like a practice trial's. Never "
            "counted in the tables. Prolific allows rejecting a submission that failed at "
            "least two of them (the participant list marks it may_reject); use two or more "
            "if you may reject.",
            "instructed_checks_exclude": "Off: failing them only counts toward Prolific's "
            "rejection policy. On: failing any one also excludes the participant from the "
            "analysis, as a failed colour-inverted check does.",
            "colour_screen": "Seven generated pseudo-isochromatic plates (Ishihara-like: a "
            "digit in dots on a red–green confusion line, plus one control plate everyone "
            "can read), shown after consent, before the instructions, described to "
            "participants as a screen, not a diagnosis. Passed: the control plate and at "
            "least 5 of the 6 test plates read right. Frozen when the study opens.",
            "colour_screen_excludes": "Off: the result is recorded only (participant list, "
            "exports). On: failing the screen excludes the participant from the analysis.",
            "exposure_ms": "Empty: each image stays until answered. E.g. 1000 hides it after 1 s.",
            "drop_flagged_displays": "Each trial's display is measured in the participant's "
            "browser. Flagged: the measured exposure missed the exposure time by more than one "
            "screen refresh, or the page was hidden during the trial. Off (the default): "
            "flagged trials count as any other; the display report lists them. Frozen when the "
            "study opens.",
            "estimated_minutes": "As you tell Prolific.",
            "time_limit_minutes": "A participant silent this long without finishing gives up "
            "their place to someone else. Empty: Prolific's maximum time for the estimate "
            "(2 + X + 2√X minutes).",
            "language": "Every fixed text the participants see (buttons, progress, messages) is "
            "in this language; write the consent and instructions in it too. These pages "
            "stay in English.",
            "consent_text": "Empty: a short default text, in the participants' language.",
            "hypotheses": "What you expect, in your words, before any data (e.g. “Participants "
            "cannot tell the ensemble's images from photographs: its fooling rate is within "
            "0.5 ± δ”). Frozen when the study opens.",
            "equivalence_margin": "“People cannot tell” is claimed when the fooling rate is "
            "shown to lie within 0.5 ± δ (two one-sided tests). Default 0.05. Frozen when "
            "the study opens.",
            "alpha": "Of every test; default 0.05. Frozen when the study opens.",
            "instructions": "Empty: a short default text, in the participants' language.",
        }
        widgets = {
            "consent_text": forms.Textarea(attrs={"rows": 5}),
            "instructions": forms.Textarea(attrs={"rows": 5}),
            "hypotheses": forms.Textarea(attrs={"rows": 4}),
            "equivalence_margin": forms.NumberInput(attrs={"step": "0.005"}),
            "alpha": forms.NumberInput(attrs={"step": "0.001"}),
        }

    def __init__(self, *args, runs=None, **kwargs):
        """``runs``: those the user may build a study from (default: all); a study being
        edited keeps offering its own runs, which a colleague may not see otherwise."""
        super().__init__(*args, **kwargs)
        study = self.instance
        choices = ModelRun.objects.all() if runs is None else runs
        finished = Q(pk__in=choices.values("pk"), status=ModelRun.Status.DONE)
        if study.pk:  # its own runs, finished or not (a draft may wait for one in training)
            finished |= Q(conditions__study=study)
        self.fields["runs"].queryset = (
            ModelRun.objects.filter(finished).distinct().select_related("dataset").order_by("-pk")
        )
        if "estimated_minutes" in self.fields:
            self.fields["estimated_minutes"].required = False
        if "instructed_checks" in self.fields:  # optional: left out, none
            self.fields["instructed_checks"].required = False
        if "language" in self.fields:
            self.fields["language"].required = False
        if "protocol" in self.fields:  # optional: left out, the single-image protocol
            self.fields["protocol"].required = False
        for name in ("equivalence_margin", "alpha"):  # optional: left out, the default
            if name in self.fields:
                self.fields[name].required = False
        self._describe_defaults()
        for name, (least, most) in COUNT_LIMITS.items():
            if name in self.fields:
                _limit(self.fields[name], least, most)
        self._runs_listed: list[ModelRun] = []
        if study.pk:
            self.fields["runs"].initial = [c.run_id for c in study.conditions.all()]
            if study.status != Study.Status.DRAFT:
                for name in list(self.fields):
                    if name not in TEXT_FIELDS:
                        del self.fields[name]
        if "runs" in self.fields:
            self._add_label_fields()

    def _add_label_fields(self) -> None:
        """One label field beside each run, prefilled with its condition's label (the
        study's conditions come first, in their order) or the run's name."""
        study = self.instance
        current = {c.run_id: c for c in study.conditions.all()} if study.pk else {}
        runs = list(self.fields["runs"].queryset)
        runs.sort(key=lambda run: (0, current[run.pk].pk) if run.pk in current else (1, -run.pk))
        self._runs_listed = runs
        for run in runs:
            self.fields[label_field(run)] = forms.CharField(
                required=False,
                strip=True,
                label="Condition label",
                initial=current[run.pk].label if run.pk in current else run.name[:LABEL_MAX],
                widget=forms.TextInput(attrs={"maxlength": LABEL_MAX}),
            )

    def typed(self) -> dict:
        """Each field's value as the browser sent it (a bound form), fit to be a new form's
        initial values: what the researcher typed, kept when they choose a preset."""
        return {name: self[name].data for name in self.fields}

    @property
    def setup_fields(self) -> list:
        """The fields shown one after another (the labels go beside their runs)."""
        return [self[name] for name in self.fields if not name.startswith(LABEL_PREFIX)]

    @property
    def condition_rows(self) -> list[dict]:
        """Per run: the run, its tick box and its label field, in the order listed."""
        boxes = {str(box.data["value"]): box for box in self["runs"]}
        return [
            {
                "run": run,
                "box": boxes[str(run.pk)],
                "label": self[label_field(run)],
                "name": run_name(run),
            }
            for run in self._runs_listed
        ]

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

    def clean_instructed_checks(self):
        n = self.cleaned_data["instructed_checks"]
        return 0 if n is None else n

    def clean_exposure_ms(self):
        ms = self.cleaned_data["exposure_ms"]
        if ms is not None and not 1 <= ms <= MAX_EXPOSURE_MS:
            raise forms.ValidationError(
                f"Give the exposure in milliseconds, from 1 to {MAX_EXPOSURE_MS:,} (one "
                "minute), or leave it empty: each image then stays until answered."
            )
        return ms

    def clean_time_limit_minutes(self):
        minutes = self.cleaned_data["time_limit_minutes"]
        if minutes is not None and not 1 <= minutes <= 1440:
            raise forms.ValidationError("Give the time limit in minutes, from 1 to 1440.")
        return minutes

    def clean_images_per_participant(self):
        n = self.cleaned_data["images_per_participant"]
        if n < 2:
            raise forms.ValidationError("Must be at least 2.")
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

    def clean_equivalence_margin(self):
        return self._or_default("equivalence_margin")

    def clean_alpha(self):
        return self._or_default("alpha")

    def _or_default(self, name: str):
        value = self.cleaned_data[name]
        return Study._meta.get_field(name).default if value is None else value

    def clean_protocol(self):
        return self.cleaned_data["protocol"] or Study._meta.get_field("protocol").default

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

    def clean(self):
        cleaned = super().clean()
        self._check_answers(cleaned)
        limit, estimate = cleaned.get("time_limit_minutes"), cleaned.get("estimated_minutes")
        if limit and estimate and limit < estimate:
            self.add_error(
                "time_limit_minutes",
                f"The time limit ({limit} min) is shorter than the study is estimated to take "
                f"({estimate} min): most participants would lose their place before the end. "
                "Give at least the estimate, or leave it empty for Prolific's maximum time.",
            )
        n = cleaned.get("images_per_participant")
        if n is not None:
            protocol = cleaned.get("protocol") or self.instance.protocol
            problem = images_per_participant_problem(protocol, n)
            if problem:
                self.add_error("images_per_participant", problem)
        if cleaned.get("protocol") == Study.Protocol.RATING and cleaned.get("attention_checks"):
            self.add_error(
                "attention_checks",
                "A rating study has no colour-inverted attention checks (a rating has no right "
                "answer; ITU-R BT.500's screening of observers does that work). Use "
                "instructed-response checks instead, or set this to 0.",
            )
        if cleaned.get("protocol") == Study.Protocol.HYPE_TIME:
            self._check_hype_time(cleaned)
        if "runs" in self.fields and cleaned.get("runs") is not None:
            chosen = {run.pk for run in cleaned["runs"]}
            runs = [run for run in self._runs_listed if run.pk in chosen]
            cleaned["runs"] = runs
            cleaned["label_list"] = self._clean_labels(runs)
            if cleaned.get("preference_adaptive") and (
                cleaned.get("protocol") != Study.Protocol.PREFERENCE
            ):
                self.add_error(
                    "preference_adaptive",
                    "Adaptive pairs are for a model-vs-model preference study only: untick it.",
                )
            if cleaned.get("protocol") == Study.Protocol.PREFERENCE:
                self._check_preference(cleaned)
            else:
                self._check_scenes(cleaned)
        return cleaned

    def _check_preference(self, cleaned) -> None:
        """A preference study's rules (survey.preference_protocol): at least 2 runs,
        within subjects, no practice or attention checks (instructed-response checks are
        allowed), enough photographs every run colourised."""
        problems = preference_settings_problems(
            runs=len(cleaned["runs"]),
            design=cleaned.get("design"),
            practice_trials=cleaned.get("practice_trials") or 0,
            attention_checks=cleaned.get("attention_checks") or 0,
        )
        for name, text in problems.items():
            self.add_error(name if name in self.fields else None, text)
        if problems or cleaned.get("images_per_participant") is None:
            return
        names_by_id = {run.pk: f"{run.name} (#{run.pk})" for run in cleaned["runs"]}
        scenes_by_run: dict[str, set[int]] = {name: set() for name in names_by_id.values()}
        outputs = ColourisedImage.objects.filter(
            run__in=cleaned["runs"], source__split=DatasetImage.Split.TEST
        ).values_list("run_id", "source_id")
        for run_id, scene in outputs:
            scenes_by_run[names_by_id[run_id]].add(scene)
        shortfall = preference_scene_shortfall(
            scenes_by_run=scenes_by_run,
            images_per_participant=cleaned["images_per_participant"],
            instructed_checks=cleaned.get("instructed_checks") or 0,
        )
        if shortfall:
            self.add_error(None, shortfall[0].upper() + shortfall[1:] + ".")

    def _check_hype_time(self, cleaned) -> None:
        """HYPE_time (survey.hype): one model per participant, the exposure the staircase's."""
        if cleaned.get("design") == Study.Design.WITHIN:
            self.add_error(
                "design",
                "A HYPE_time study is between subjects: one staircase per participant measures "
                "one model. Choose between subjects.",
            )
        if cleaned.get("exposure_ms"):
            self.add_error(
                "exposure_ms",
                "A HYPE_time study's exposure is set for each image by its staircase (100 to "
                "1000 ms). Leave the exposure time empty.",
            )

    def _clean_labels(self, runs: list[ModelRun]) -> list[str]:
        """The chosen runs' labels in their order (a run's name where its label is left
        empty); an error beside each label that cannot be used, naming its run."""
        labels, by_label = [], {}
        for run in runs:
            name = label_field(run)
            label = self.cleaned_data.get(name) or run.name[:LABEL_MAX]
            labels.append(label)
            if has_control_characters(label):
                self.add_error(
                    name, f"The label of {run_name(run)} cannot contain tabs or line breaks."
                )
            elif len(label) > LABEL_MAX:
                self.add_error(
                    name,
                    f"The label of {run_name(run)} is {len(label)} characters long: "
                    f"at most {LABEL_MAX}.",
                )
            by_label.setdefault(label, []).append(run)
        for label, same in by_label.items():
            if len(same) > 1:
                for run in same:
                    others = " and ".join(run_name(o) for o in same if o is not run)
                    self.add_error(
                        label_field(run),
                        f"{run_name(run)} and {others} both have the label “{label}”: "
                        "give each condition its own label.",
                    )
        return labels

    def _check_scenes(self, cleaned) -> None:
        """Refuse here what preparing the stimuli would refuse: too few colourised scenes."""
        names = ("design", "images_per_participant", "practice_trials", "attention_checks")
        instructed = cleaned.get("instructed_checks") or 0
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
            instructed_checks=instructed,
            paired=cleaned.get("protocol") == Study.Protocol.PAIRED,
        )
        if shortfall:
            self.add_error(None, shortfall[0].upper() + shortfall[1:] + ".")
