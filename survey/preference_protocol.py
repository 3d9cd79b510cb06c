"""The model-vs-model preference protocol, 2AFC (``Study.Protocol.PREFERENCE``): its
rules, its pairs and its analysis.

**Design.** Two colourisations of the same test photograph by two runs (conditions) side
by side, "Which looks more natural?", as the pairwise-comparison designs of image-quality
work run it (e.g. ITU-T P.910's pair comparison; Mantiuk, Tomaszewska & Mantiuk 2012,
"Comparison of four subjective methods for image quality assessment"), analysed with the
model of Bradley & Terry (1952). Within subjects: every participant compares pairs of runs.

* **Stimuli** (survey.services.stimuli): the runs' outputs of the test photographs that
  *every* run colourised, each brought to one size per photograph (the smallest of the
  runs' outputs, so that no image is enlarged) and encoded the same way, served as pixels of
  one length. No real photograph is shown, and there are no practice pairs and no
  attention checks (a preference has no right answer to give feedback on or to check).
* **Instructed-response checks** (``Study.instructed_checks``), for Prolific's rejection
  policy: photographs every run colourised are reserved for them (never main pairs); each
  participant gets each once (:func:`instructed_pairs`), two runs' images at random, with
  "For this pair, please answer Left" (or Right, drawn at random, whatever the images) in
  place of the question, at random places among the pairs, never first. Stored as
  ``Trial.instructed_answer`` in the answer's own terms ("real": the side of
  ``stimulus``), so a check is passed when ``answer`` equals it, as in every protocol;
  never counted in the scores, the pair counts or the adaptive choice.
* **Pairs per participant** (:func:`preference_plan`): ``images_per_participant`` pairs.
  Every unordered pair of runs gets the same number of them (``n // P`` of the ``P`` run
  pairs); the remainder goes to the run pairs compared least often so far in the study
  (ties at random), so that over the participants every run pair is compared equally
  often (±1 per participant started). Each photograph is shown once per participant: the
  photographs are matched to the pairs by a minimum-cost assignment on how often their two
  images were shown (the least shown first, ties at random). Within each run pair the
  first run's image is on the left in half of the pairs and on the right in the other half
  (an odd one out at random); the pairs come in a random order.
* **Answer**: the side chosen, stored as the trial's ``chosen_side``; the winner is the
  condition of the image on that side (:func:`trial_winner`).
* **Adaptive choice** (``Study.preference_adaptive``; :func:`preference_adapt`): the
  participant starts with the balanced plan above, and each answer to pair ``k`` re-chooses
  pair ``k + 2`` (pair ``k + 1`` may already be in the browser, preloaded) where the
  ranking is least certain: the pair of runs whose score *difference* has the largest
  standard error given every answer of the study so far (:func:`run_pair_uncertainty`: from
  the Bradley–Terry Fisher information at the current ML scores where they exist, else at
  equal scores, every p = ½; infinite for two runs not yet linked by any chain of
  comparisons). Ties go to the run pair this participant has compared least, then at
  random; the photograph is the least shown of those the participant has not seen, the
  first run's side the one it has had less often in that run pair. Computed on the server
  inside the answer's transaction; the browser learns nothing new (the same URLs, sizes and
  page).

**Statistic**: Bradley–Terry scores per run (survey.preference: maximum-likelihood
log-strengths from choix polished to the optimum, centred to mean 0, with Wald intervals):
a run's score is its log-odds of being preferred to a run of average strength, and the
difference of two runs' scores is the log-odds that the first is preferred to the second.
Counted: the answered main trials of included participants (the study's exclusion rule,
survey.analysis.exclusion).
"""

from __future__ import annotations

import csv
import io
import itertools
import random
from collections import Counter

import numpy as np
from django.db.models import F
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

from studyplatform.safe_text import spreadsheet_cell
from studyplatform.words import counted
from survey.analysis.exclusion import measured_trials
from survey.models import Condition, Participant, Stimulus, Study, Trial
from survey.preference import (
    Comparison,
    PreferenceError,
    bradley_terry,
    check_estimable,
)
from survey.services.assignment import Pair, _sides, _trial_order
from survey.services.errors import NotEnoughScenes, StudyError

QUESTION = "Which looks more natural?"


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


def preference_settings_problems(
    *,
    runs: int,
    design: str | None,
    practice_trials: int = 0,
    attention_checks: int = 0,
) -> dict[str | None, str]:
    """What a preference study's settings cannot be, by form field (None: the whole
    form), in words; empty when they are fine."""
    problems: dict[str | None, str] = {}
    if runs < 2:
        problems["runs"] = (
            "A model-vs-model preference study compares runs: choose at least 2 runs "
            f"(conditions); {counted(runs, 'run is', 'runs are')} chosen."
        )
    if design is not None and design != Study.Design.WITHIN:
        problems["design"] = (
            "A preference study is within subjects: each participant compares pairs of the "
            "runs. Choose “within subjects”."
        )
    for name, value, what in (
        ("practice_trials", practice_trials, "practice pairs"),
        ("attention_checks", attention_checks, "attention checks"),
    ):
        if value:
            problems[name] = (
                f"A preference study has no {what} (a preference has no right answer to "
                "check or give feedback on; instructed-response checks, which say which "
                "image to choose, can be had). Set this to 0."
            )
    return problems


def preference_scene_shortfall(
    *,
    scenes_by_run: dict[str, set[int]],
    images_per_participant: int,
    instructed_checks: int = 0,
) -> str | None:
    """Why a preference study over runs that colourised ``scenes_by_run`` could not give
    each participant ``images_per_participant`` pairs of different photographs and
    ``instructed_checks`` check pairs of photographs reserved for them (each pair needs a
    photograph that every run colourised); None if it could."""
    if len(scenes_by_run) < 2:
        return None
    common = set.intersection(*scenes_by_run.values())
    needed = images_per_participant + instructed_checks
    if len(common) < needed:
        checks = (
            f" plus {counted(instructed_checks, 'instructed check', 'instructed checks')}"
            if instructed_checks
            else ""
        )
        return (
            f"these runs colourised {counted(len(common), 'test image', 'test images')} in "
            f"common; {images_per_participant} pairs per participant, each of a different "
            f"photograph,{checks} need {needed}"
        )
    return None


def preference_sizes(sizes_by_scene: dict[int, list[tuple[int, int]]]) -> dict[int, tuple]:
    """Per photograph, the one size its images are shown at: the smallest (by area, then
    width) of the runs' outputs, so that no run's image is enlarged and the two images of
    a pair never differ in size."""
    return {
        scene: min(sizes, key=lambda wh: (wh[0] * wh[1], wh[0]))
        for scene, sizes in sizes_by_scene.items()
    }


# --------------------------------------------------------------------------------------------
# Pairs
# --------------------------------------------------------------------------------------------


def run_pair_counts(study: Study) -> Counter:
    """How often each unordered pair of conditions (lower id first) was planned so far
    (the main trials of every participant not withdrawn, pilots apart)."""
    rows = Trial.objects.filter(
        participant__study=study,
        participant__is_pilot=study.status == Study.Status.PILOT,
        participant__withdrawn_at__isnull=True,
        kind=Stimulus.Role.MAIN,
        partner__isnull=False,
    ).values_list("stimulus__condition_id", "partner__condition_id")
    return Counter(tuple(sorted(pair)) for pair in rows)


def run_pair_quotas(
    conditions: list[int], n: int, done: Counter, rng: random.Random
) -> dict[tuple[int, int], int]:
    """The pairs of one participant per unordered pair of conditions: ``n // P`` each,
    the remainder to the pairs compared least so far (``done``), ties at random."""
    pairs = list(itertools.combinations(sorted(conditions), 2))
    quotas = {pair: n // len(pairs) for pair in pairs}
    extra = sorted(pairs, key=lambda pair: (done.get(pair, 0), rng.random()))
    for pair in extra[: n % len(pairs)]:
        quotas[pair] += 1
    return quotas


def preference_plan(*, study: Study, rng: random.Random) -> list[Pair]:
    """The pairs, in order, of a participant of a preference study starting now (see the
    module docstring). ``Pair.fake`` is the first condition's image (``Trial.stimulus``),
    ``Pair.real`` the second's (``Trial.partner``). It only reads."""
    conditions = sorted(study.conditions.values_list("pk", flat=True))
    if len(conditions) < 2:
        raise StudyError("a preference study needs at least 2 runs")
    n = study.images_per_participant
    images: dict[int, dict[int, Stimulus]] = {}
    for s in Stimulus.objects.filter(study=study, role=Stimulus.Role.MAIN, is_real=False):
        images.setdefault(s.scene_id, {})[s.condition_id] = s
    scenes = sorted(scene for scene, by in images.items() if len(by) == len(conditions))
    if len(scenes) < n:
        raise NotEnoughScenes(
            f"{counted(len(scenes), 'photograph')} prepared for every run, a participant "
            f"needs {counted(n, 'different photograph')}"
        )
    quotas = run_pair_quotas(conditions, n, run_pair_counts(study), rng)
    slots = [pair for pair, count in quotas.items() for _ in range(count)]
    # Rows: the pairs to fill; columns: the photographs; the cost of a photograph for a
    # pair: how often its two images were shown, the least shown first, ties at random.
    cost = np.empty((len(slots), len(scenes)))
    for i, (a, b) in enumerate(slots):
        for j, scene in enumerate(scenes):
            by = images[scene]
            cost[i, j] = by[a].exposures + by[b].exposures + rng.random() / 2
    rows, columns = linear_sum_assignment(cost)
    chosen = {int(i): scenes[j] for i, j in zip(rows, columns)}
    sides: dict[tuple[int, int], list[str]] = {
        pair: _sides(count, rng) for pair, count in quotas.items()
    }
    pairs = []
    for i, (a, b) in enumerate(slots):
        by = images[chosen[i]]
        pairs.append(Pair(fake=by[a], real=by[b], fake_side=sides[(a, b)].pop()))
    return _trial_order([], pairs, instructed_pairs(study, rng), rng)


def instructed_pairs(study: Study, rng: random.Random) -> list[Pair]:
    """A participant's instructed-response check pairs: each photograph reserved for them
    once, shown by two runs drawn at random (the one created first as ``Pair.fake``), the
    first run's image on the left in half of them (an odd one out at random). Which side
    to choose is drawn when the participant starts (survey.services.assignment.
    instructions), whatever the images."""
    images: dict[int, dict[int, Stimulus]] = {}
    for s in Stimulus.objects.filter(study=study, role=Stimulus.Role.INSTRUCTED):
        images.setdefault(s.scene_id, {})[s.condition_id] = s
    scenes = sorted(scene for scene, by in images.items() if len(by) >= 2)
    pairs = []
    for scene, side in zip(scenes, _sides(len(scenes), rng), strict=True):
        a, b = sorted(rng.sample(sorted(images[scene]), 2))
        pairs.append(Pair(fake=images[scene][a], real=images[scene][b], fake_side=side))
    return pairs


# --------------------------------------------------------------------------------------------
# Adaptive choice
# --------------------------------------------------------------------------------------------


def run_pair_uncertainty(
    conditions: list[int], wins: dict[tuple[int, int], int]
) -> dict[tuple[int, int], float]:
    """Per unordered pair of ``conditions`` (lower id first): the standard error of the
    two runs' Bradley–Terry score difference given ``wins`` ((winner, loser) -> count).
    ``Var(s_i − s_j) = (e_i − e_j)ᵀ I⁺ (e_i − e_j)`` with ``I`` the Fisher information
    (survey.preference) at the ML scores where they exist, else at equal scores; infinite
    when no chain of comparisons links the two runs."""
    ids = sorted(conditions)
    index = {c: i for i, c in enumerate(ids)}
    w = np.zeros((len(ids), len(ids)))
    for (winner, loser), count in wins.items():
        w[index[winner], index[loser]] += count
    scores = np.zeros(len(ids))
    try:
        check_estimable([str(c) for c in ids], w)
    except PreferenceError:
        pass  # no finite ML scores yet: the information at equal scores
    else:
        comparisons = [
            Comparison("", str(winner), str(loser), str(winner))
            for (winner, loser), count in wins.items()
            for _ in range(count)
        ]
        fitted = {r["item"]: r["score"] for r in bradley_terry(comparisons)["items"]}
        scores = np.array([fitted[str(c)] for c in ids])
    n = w + w.T
    p = 1.0 / (1.0 + np.exp(-(scores[:, None] - scores[None, :])))
    weight = n * p * (1.0 - p)
    information = np.diag(weight.sum(axis=1)) - weight
    covariance = np.linalg.pinv(information, hermitian=True)
    _, component = connected_components(n > 0, directed=False)
    result = {}
    for a, b in itertools.combinations(ids, 2):
        i, j = index[a], index[b]
        if component[i] != component[j]:
            result[(a, b)] = float("inf")
        else:
            variance = covariance[i, i] + covariance[j, j] - 2 * covariance[i, j]
            result[(a, b)] = float(np.sqrt(max(variance, 0.0)))
    return result


def study_wins(study: Study, *, pilot: bool) -> dict[tuple[int, int], int]:
    """(winning condition, losing condition) -> count over the study's answered main pairs
    (participants not withdrawn, pilots or not as ``pilot``)."""
    rows = Trial.objects.filter(
        participant__study=study,
        participant__is_pilot=pilot,
        participant__withdrawn_at__isnull=True,
        kind=Stimulus.Role.MAIN,
        partner__isnull=False,
        answer__isnull=False,
    ).values_list("stimulus__condition_id", "partner__condition_id", "answer")
    wins: Counter = Counter()
    for a, b, answer in rows:
        winner = trial_winner(stimulus_condition=a, partner_condition=b, answer=answer)
        wins[(winner, b if winner == a else a)] += 1
    return dict(wins)


def preference_adapt(
    *, participant: Participant, position: int, rng: random.Random | None = None
) -> Trial | None:
    """Re-choose the unanswered pair at ``position`` of an adaptive preference study's
    ``participant`` (see the module docstring); returns it, or None when there is no such
    pair or it is answered. Call it inside the answer's transaction (the participant's row
    locked). The exposures move from the old images to the new (pilots leave them alone)."""
    rng = rng or random.SystemRandom()
    study = participant.study
    trial = (
        Trial.objects.filter(
            participant=participant,
            position=position,
            answer__isnull=True,
            kind=Stimulus.Role.MAIN,  # an instructed check stays as planned
        )
        .select_related("stimulus", "partner")
        .first()
    )
    if trial is None or trial.partner is None:
        return None
    conditions = sorted(study.conditions.values_list("pk", flat=True))
    uncertainty = run_pair_uncertainty(conditions, study_wins(study, pilot=participant.is_pilot))
    rows = list(
        Trial.objects.filter(participant=participant)
        .exclude(pk=trial.pk)
        .values_list(
            "stimulus__scene_id",
            "stimulus__condition_id",
            "partner__condition_id",
            "fake_side",
            "kind",
        )
    )
    seen = {scene for scene, *_ in rows}  # checks' photographs too: none is shown twice
    others = [row[:4] for row in rows if row[4] == Stimulus.Role.MAIN]
    mine = Counter((a, b) for _scene, a, b, _side in others)
    largest = max(uncertainty.values())
    candidates = [
        pair
        for pair, se in uncertainty.items()
        if se == largest or (np.isfinite(largest) and abs(se - largest) <= 1e-9)
    ]
    fewest = min(mine.get(pair, 0) for pair in candidates)
    a, b = rng.choice([pair for pair in candidates if mine.get(pair, 0) == fewest])
    images: dict[int, dict[int, Stimulus]] = {}
    for s in Stimulus.objects.filter(
        study=study, role=Stimulus.Role.MAIN, condition_id__in=(a, b)
    ).exclude(scene_id__in=seen):
        images.setdefault(s.scene_id, {})[s.condition_id] = s
    options = [by for by in images.values() if len(by) == 2]
    if not options:
        return trial  # no photograph left for this pair: the planned pair stays
    least = min(by[a].exposures + by[b].exposures for by in options)
    chosen = rng.choice([by for by in options if by[a].exposures + by[b].exposures == least])
    lefts = sum(1 for _s, x, y, side in others if (x, y) == (a, b) and side == Trial.Side.LEFT)
    rights = mine.get((a, b), 0) - lefts
    if lefts == rights:
        side = rng.choice(Trial.Side.values)
    else:
        side = Trial.Side.LEFT if lefts < rights else Trial.Side.RIGHT
    old = [trial.stimulus_id, trial.partner_id]
    trial.stimulus, trial.partner, trial.fake_side = chosen[a], chosen[b], side
    trial.save(update_fields=["stimulus", "partner", "fake_side"])
    if not participant.is_pilot:
        Stimulus.objects.filter(pk__in=old).update(exposures=F("exposures") - 1)
        Stimulus.objects.filter(pk__in=[chosen[a].pk, chosen[b].pk]).update(
            exposures=F("exposures") + 1
        )
    return trial


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------


def trial_winner(*, stimulus_condition: int, partner_condition: int, answer: str) -> int:
    """The condition preferred in a preference trial: the stimulus's when ``answer`` is
    "real" (its side was chosen), else the partner's (see :class:`survey.models.Trial`)."""
    return stimulus_condition if answer == Trial.Answer.REAL else partner_condition


def pair_sides(*, stimulus_condition: int, partner_condition: int, fake_side: str) -> tuple:
    """(left, right): the conditions of a preference trial's two images, by side (the
    stimulus's image is on ``fake_side``)."""
    if fake_side == Trial.Side.LEFT:
        return stimulus_condition, partner_condition
    return partner_condition, stimulus_condition


def participant_pairs(*, study: Study, participant: int) -> dict[int, dict]:
    """position -> the runs' labels on the left and the right and the one preferred, for
    every answered pair of participant number ``participant`` (checks included: there the
    side chosen followed an instruction, and "preferred" means nothing)."""
    labels = dict(Condition.objects.filter(study=study).values_list("pk", "label"))
    rows = Trial.objects.filter(
        participant_id=participant,
        participant__study=study,
        answer__isnull=False,
        partner__isnull=False,
    ).values_list(
        "position", "stimulus__condition_id", "partner__condition_id", "answer", "fake_side"
    )
    pairs = {}
    for position, a, b, answer, fake_side in rows:
        left, right = pair_sides(stimulus_condition=a, partner_condition=b, fake_side=fake_side)
        winner = trial_winner(stimulus_condition=a, partner_condition=b, answer=answer)
        pairs[position] = {
            "left": labels[left],
            "right": labels[right],
            "preferred": labels[winner],
        }
    return pairs


def preference_judgements(*, study: Study, include_unfinished: bool = False) -> list[dict]:
    """The counted judgements (main trials, answered, of included participants), one
    record each: participant (its number, as in judgements.csv; never the public id,
    which resumes the session), the two runs' labels (the stimulus's first), the winner's,
    the sides and the response time."""
    labels = dict(Condition.objects.filter(study=study).values_list("pk", "label"))
    rows = (
        measured_trials(study=study, include_unfinished=include_unfinished)
        .filter(partner__isnull=False)
        .order_by("participant__started_at", "participant_id", "position")
        .values(
            "participant_id",
            "position",
            "stimulus__condition_id",
            "partner__condition_id",
            "answer",
            "fake_side",
            "chosen_side",
            "rt_ms",
            "stimulus__scene_id",
        )
    )
    records = []
    for row in rows:
        a, b = row["stimulus__condition_id"], row["partner__condition_id"]
        winner = trial_winner(stimulus_condition=a, partner_condition=b, answer=row["answer"])
        left, right = pair_sides(
            stimulus_condition=a, partner_condition=b, fake_side=row["fake_side"]
        )
        records.append(
            {
                "participant": row["participant_id"],
                "position": row["position"],
                "item_a": labels[a],
                "item_b": labels[b],
                "winner": labels[winner],
                "left": labels[left],
                "right": labels[right],
                "chosen_side": row["chosen_side"],
                "rt_ms": row["rt_ms"],
                "scene": row["stimulus__scene_id"],
            }
        )
    return records


JUDGEMENT_COLUMNS = (
    "participant",
    "item_a",
    "item_b",
    "winner",
    "left",
    "right",
    "chosen_side",
    "rt_ms",
    "position",
    "scene",
)


def judgements_csv(records: list[dict]) -> str:
    """The judgements as CSV: the columns ``participant,item_a,item_b,winner`` that
    ``manage.py analyse_preferences`` reads, then the sides, response time, position and
    photograph (its data-set image id). Text that starts like a formula gets a leading
    apostrophe (:func:`studyplatform.safe_text.spreadsheet_cell`)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=JUDGEMENT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    # Run labels are the researchers' text: spreadsheet-safe, as in every CSV download.
    writer.writerows({k: spreadsheet_cell(v) for k, v in record.items()} for record in records)
    return out.getvalue()


def preference_analysis(*, study: Study, include_unfinished: bool = False) -> dict:
    """The study's Bradley–Terry scores per run (:func:`survey.preference.bradley_terry`
    at the study's 1 − α), the wins and comparisons per pair of runs, and ``error`` (in
    words) instead of scores when the fit does not exist yet."""
    records = preference_judgements(study=study, include_unfinished=include_unfinished)
    comparisons = [
        Comparison(str(r["participant"]), r["item_a"], r["item_b"], r["winner"]) for r in records
    ]
    labels = list(Condition.objects.filter(study=study).values_list("label", flat=True))
    pairs: dict[tuple[str, str], dict] = {}
    for a, b in itertools.combinations(labels, 2):
        pairs[(a, b)] = {"item_a": a, "item_b": b, "wins_a": 0, "wins_b": 0, "comparisons": 0}
    order = {label: i for i, label in enumerate(labels)}
    for c in comparisons:
        a, b = sorted((c.item_a, c.item_b), key=order.__getitem__)
        cell = pairs[(a, b)]
        cell["comparisons"] += 1
        cell["wins_a" if c.winner == a else "wins_b"] += 1
    result = {
        "protocol": Study.Protocol.PREFERENCE.label,
        "statistic": "Bradley–Terry score per run (ML log-strength centred to mean 0)",
        "n_judgements": len(comparisons),
        "n_participants": len({c.participant for c in comparisons}),
        "run_pairs": list(pairs.values()),
        "bradley_terry": None,
        "error": "",
    }
    try:
        result["bradley_terry"] = bradley_terry(comparisons, confidence=1 - study.alpha)
    except PreferenceError as exc:
        result["error"] = str(exc)
    return result


SCORE_COLUMNS = ("rank", "item", "score", "se", "ci_low", "ci_high", "wins", "comparisons")


def scores_csv(result: dict) -> str:
    """The scores as CSV, highest first (only the header when there is no fit); a label
    that starts like a formula gets a leading apostrophe, as in judgements_csv."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SCORE_COLUMNS)
    fit = result["bradley_terry"]
    for rank, item in enumerate(fit["items"] if fit else [], start=1):
        writer.writerow(
            [
                rank,
                spreadsheet_cell(item["item"]),  # a label; the numbers stay numbers
                f"{item['score']:.6f}",
                f"{item['se']:.6f}",
                f"{item['ci'][0]:.6f}",
                f"{item['ci'][1]:.6f}",
                item["wins"],
                item["comparisons"],
            ]
        )
    return out.getvalue()
