"""The planner page's form (GET) and what it turns into: a :class:`survey.power.Plan`, its
result, the figure and the command line that reproduces it with more simulations."""

from __future__ import annotations

import shlex

from django import forms

from survey.power import GOALS, Plan, PlanResult, plan

#: The page answers in a few seconds on two cores (bench/bench_power.py measures it);
#: more simulations through ``manage.py plan_study``.
PAGE_SIMULATIONS = 50
PAGE_MAX_SIMULATIONS = 400

GOAL_CHOICES = [
    ("equivalence", "show equivalence to chance within ±δ"),
    ("difference", "detect a difference Δ between two conditions"),
    ("width", "a 95 % interval of width at most w"),
]
assert [g for g, _ in GOAL_CHOICES] == list(GOALS)

#: Plan field -> command option
OPTIONS = {
    "rate": "--rate",
    "participant_sd": "--participant-sd",
    "image_sd": "--image-sd",
    "images_per_participant": "--images-per-participant",
    "pool": "--pool",
    "margin": "--margin",
    "alpha": "--alpha",
    "goal": "--goal",
    "delta": "--delta",
    "width": "--width",
    "power": "--power",
    "simulations": "--simulations",
    "seed": "--seed",
}


def _number(label, help_text="", required=True, step="any"):
    return forms.FloatField(
        label=label,
        help_text=help_text,
        required=required,
        widget=forms.NumberInput(attrs={"step": step}),
    )


class PlanForm(forms.Form):
    goal = forms.ChoiceField(label="Goal", choices=GOAL_CHOICES)
    rate = _number(
        "Expected fooling rate",
        "The model-based rate (a typical participant on a typical image), as a fraction; "
        "for a difference, the first condition's.",
    )
    delta = _number(
        "Difference Δ (difference goal)",
        "The second condition's rate is the first's plus Δ (e.g. 0.1).",
        required=False,
    )
    width = _number(
        "Largest interval width w (width goal)", "As a fraction (0.1 = 10 points).", False
    )
    margin = _number("Equivalence margin δ", "Equivalent to chance: inside 0.5 ± δ.")
    alpha = _number("α")
    power = _number("Target power")
    participant_sd = _number("Participant SD (logit)")
    image_sd = _number("Image SD (logit)")
    images_per_participant = _number("Images per participant", "Half real, half AI.", step=2)
    pool = _number(
        "Images in the pool, of each kind",
        "AI images per condition, and as many real photographs.",
        step=1,
    )
    simulations = _number(
        "Simulated studies per point",
        f"Up to {PAGE_MAX_SIMULATIONS} here; more with the command below.",
        step=1,
    )
    seed = _number("Seed", step=1)

    def clean_simulations(self):
        value = self.cleaned_data["simulations"]
        if value is not None and value > PAGE_MAX_SIMULATIONS:
            raise forms.ValidationError(
                f"At most {PAGE_MAX_SIMULATIONS} on this page (it must answer in seconds); "
                "run manage.py plan_study for more."
            )
        return value

    def clean(self):
        """Every input the planner cannot use, each beside its field, all at once: an input
        the form already refused (not a number, left empty) is not checked again."""
        data = super().clean()
        values = {name: data.get(name) for name in self.fields}
        for problem in Plan(**values).problems():
            if problem.option not in self.fields:
                self.add_error(None, str(problem))
            elif problem.option not in self.errors:
                self.add_error(problem.option, sentence(problem.message))
        return data

    def plan(self) -> Plan | None:
        """The checked plan, or None with the errors added to the fields."""
        if not self.is_valid():
            return None
        return Plan(**self.cleaned_data).checked()


def sentence(message: str) -> str:
    """A planner's message (“must be even…”, as the command prints it after the option)
    as a sentence beside its field."""
    return f"{message[:1].upper()}{message[1:]}."


def initial(defaults, study=None) -> dict:
    values = {
        "goal": "equivalence",
        "rate": Plan.rate,
        "delta": 0.1,
        "width": 0.1,
        "margin": Plan.margin,
        "alpha": Plan.alpha,
        "power": Plan.power,
        "participant_sd": defaults.participant_sd,
        "image_sd": defaults.image_sd,
        "images_per_participant": Plan.images_per_participant,
        "pool": Plan.pool,
        "simulations": PAGE_SIMULATIONS,
        "seed": Plan.seed,
    }
    if study is not None:
        values.update(
            images_per_participant=study.images_per_participant,
            margin=study.equivalence_margin,
            alpha=study.alpha,
        )
    return values


def command_line(p: Plan, simulations: int = 2000) -> str:
    """The command that computes the same plan with more simulations."""
    parts = ["python", "manage.py", "plan_study"]
    for name, option in OPTIONS.items():
        value = simulations if name == "simulations" else getattr(p, name)
        if value is None or (name == "delta" and p.goal != "difference"):
            continue
        if name == "width" and p.goal != "width":
            continue
        parts += [option, f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join(parts)


def run(p: Plan) -> PlanResult:
    return plan(p)
