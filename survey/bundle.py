"""A study's reproduction bundle, ``study-<id>-bundle.zip``: everything a paper needs in
one download. Reads only.

Contents (all under ``study-<id>/``): the pre-registration (Markdown and its canonical
JSON), ``data/judgements.csv`` (every answered trial, as the analysis pages' download),
``tables/`` (the tables as CSV, JSON and LaTeX, the runs' LaTeX table, one row per
participant, one per image, pooled, and the model's per-image soft labels), ``figures/``
(every figure of the dashboard and the per-image page as SVG and PDF), two scripts that
recompute the numbers from ``data/judgements.csv`` alone (``analysis.R`` with lme4's
``glmer``, ``analysis.py`` with NumPy/SciPy and a copy of the platform's Laplace
engine, :mod:`survey.glmm`; for a preference study both recompute the Bradley–Terry
scores of ``tables/bradley-terry.json`` from ``data/preferences.csv``) and ``README.txt``
listing it all.

The zip is written to a temporary file (the judgements streamed in, one member at a time),
so memory stays bounded however large the study.
"""

from __future__ import annotations

import inspect
import io
import math
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from scipy import stats

from studyplatform.figures import EmptyFigure, render
from studyplatform.safe_text import SafeCsvWriter
from survey import glmm
from survey.analysis import exports
from survey.analysis.display import figure_slots, image_figure_slots
from survey.analysis.preference_latex import preference_latex
from survey.analysis.results import image_rows, study_analysis
from survey.inference import IMAGE_COLUMNS as REALISM_COLUMNS
from survey.models import PreRegistration, Study
from survey.preference_protocol import (
    judgements_csv,
    preference_analysis,
    preference_judgements,
    scores_csv,
)
from survey.rating_protocol import is_rating, mos_csv, mos_json, rating_analysis, ratings_csv
from survey.statistics import dumps_json

SCRIPTS = Path(__file__).parent / "bundle_scripts"
#: In analysis.py, the lines between these markers are replaced by the engine's source.
ENGINE_BEGIN = "# --- engine: begin ---"
ENGINE_END = "# --- engine: end ---"
THREADPOOL_IMPORT = "from threadpoolctl import threadpool_limits\n"
THREADPOOL_OPTIONAL = """try:
    from threadpoolctl import threadpool_limits
except ImportError:  # only keeps BLAS to one thread (faster on small matrices)
    import contextlib

    def threadpool_limits(**kwargs):
        return contextlib.nullcontext()
"""
#: In both scripts, the study's plan replaces these default lines.
MARGIN_LINE = {"py": "MARGIN = 0.05", "R": "MARGIN <- 0.05"}
ALPHA_LINE = {"py": "ALPHA = 0.05", "R": "ALPHA <- 0.05"}

PARTICIPANT_COLUMNS = (
    "participant",
    "conditions",
    "excluded",
    "main_answered",
    "counted",
    "real_real",
    "real_ai",
    "ai_real",
    "ai_ai",
    "fooling_rate",
    "accuracy",
    "d_prime",
    "criterion",
    "practice_answered",
    "checks_answered",
)
IMAGE_COLUMNS = (
    "condition",
    "stimulus",
    "image",
    "image_name",
    "truth",
    "n",
    "fooled",
    "fooling_rate",
    "wilson_low",
    "wilson_high",
    "geometric_mean_rt_ms",
    "l1",
    "ssim",
)


def _csv(rows: Iterable[Iterable[Any]]) -> bytes:
    buffer = io.StringIO()
    SafeCsvWriter(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return value


# --------------------------------------------------------------------------------------------
# Tables made for the bundle
# --------------------------------------------------------------------------------------------


def _sdt(aa: int, n_ai: int, ra: int, n_real: int) -> tuple[float | None, float | None]:
    """d′ and c, log-linear correction (as survey.statistics.sdt_from_counts)."""
    if not n_ai or not n_real:
        return None, None
    zh = float(stats.norm.ppf((aa + 0.5) / (n_ai + 1)))
    zf = float(stats.norm.ppf((ra + 0.5) / (n_real + 1)))
    return zh - zf, -(zh + zf) / 2


def participant_table(judgements: Iterable[list[Any]]) -> Iterator[list[Any]]:
    """One row per participant of judgements.csv's rows (in participant order): their
    conditions, exclusion, and the cells, rates, d′ and c of their counted judgements.
    Participants appear by their database id only, as in judgements.csv."""
    at = {name: i for i, name in enumerate(exports.JUDGEMENT_COLUMNS)}
    yield list(PARTICIPANT_COLUMNS)
    current, record = None, None

    def finished(r):
        rr, ra, ar, aa = r["cells"]
        n = rr + ra + ar + aa
        d, c = _sdt(aa, ar + aa, ra, rr + ra)
        return [
            r["participant"],
            "; ".join(sorted(r["conditions"])),
            r["excluded"],
            r["main"],
            n,
            rr,
            ra,
            ar,
            aa,
            _cell((ra + ar) / n if n else None),
            _cell((rr + aa) / n if n else None),
            _cell(d),
            _cell(c),
            r["practice"],
            r["checks"],
        ]

    for row in judgements:
        participant = row[at["participant"]]
        if participant != current:
            if record is not None:
                yield finished(record)
            current = participant
            record = {
                "participant": participant,
                "conditions": set(),
                "excluded": row[at["excluded"]],
                "main": 0,
                "cells": [0, 0, 0, 0],
                "practice": 0,
                "checks": 0,
            }
        if row[at["practice"]]:
            record["practice"] += 1
        elif row[at["attention"]]:
            record["checks"] += 1
        else:
            record["main"] += 1
            if row[at["condition"]]:
                record["conditions"].add(row[at["condition"]])
            if row[at["counted"]]:
                real, said_real = row[at["truth"]] == "real", row[at["answer"]] == "real"
                index = {(1, 1): 0, (1, 0): 1, (0, 1): 2, (0, 0): 3}[(real, said_real)]
                record["cells"][index] += 1
    if record is not None:
        yield finished(record)


def image_table(study: Study, images_by_condition: dict) -> list[list[Any]]:
    """The per-image page's numbers: every main stimulus with its pooled fooling rate and
    Wilson interval, response time, and an AI image's L1 and SSIM."""
    labels = dict(study.conditions.values_list("pk", "label"))
    rows: list[list[Any]] = [list(REALISM_COLUMNS)]
    for condition, images in images_by_condition.items():
        for r in images:
            low, high = r.interval if r.interval else (None, None)
            rows.append(
                [
                    labels.get(condition, ""),
                    r.stimulus_id,
                    r.scene_id,
                    r.scene_name,
                    "real" if r.is_real else "ai",
                    r.n,
                    r.fooled,
                    _cell(r.rate),
                    _cell(low),
                    _cell(high),
                    _cell(r.rt_ms),
                    _cell(r.metrics.get("l1")),
                    _cell(r.metrics.get("ssim")),
                ]
            )
    return rows


def realism_table(mixed: dict[str, Any]) -> list[list[Any]] | None:
    """The model's per-image soft labels (survey.inference.image_records' columns), or
    None when the mixed models were not computed."""
    if not mixed.get("computed"):
        return None
    rows: list[list[Any]] = [list(REALISM_COLUMNS)]
    for c in mixed["conditions"]:
        for i in c["images"]:
            rows.append(
                [
                    c["condition"],
                    i["image"],
                    i["truth"],
                    i["n"],
                    i["fooled"],
                    _cell(i["effect"]),
                    _cell(i["effect_ci"][0]),
                    _cell(i["effect_ci"][1]),
                    _cell(i["fooling_rate"]),
                    _cell(i["fooling_rate_ci"][0]),
                    _cell(i["fooling_rate_ci"][1]),
                    _cell(i["soft_label"]),
                ]
            )
    return rows


# --------------------------------------------------------------------------------------------
# Scripts
# --------------------------------------------------------------------------------------------


def _with_plan(text: str, kind: str, study: Study) -> str:
    for line, value in ((MARGIN_LINE, study.equivalence_margin), (ALPHA_LINE, study.alpha)):
        default = line[kind]
        if default not in text:
            raise RuntimeError(f"the {kind} script has no line {default!r}")
        name, arrow = default.split(" ", 2)[:2]
        text = text.replace(default, f"{name} {arrow} {value!r}", 1)
    return text


def python_script(study: Study) -> str:
    """analysis.py with the engine's source in place of its import and the study's δ, α."""
    text = (SCRIPTS / "analysis.py").read_text(encoding="utf-8")
    head, rest = text.split(ENGINE_BEGIN, 1)
    _, tail = rest.split(ENGINE_END, 1)
    engine = inspect.getsource(glmm).replace("from __future__ import annotations\n", "")
    engine = engine.replace('__all__ = ["GLMMFit", "RandomTerm", "TermFit", "fit_glmm"]\n', "")
    engine = engine.replace(THREADPOOL_IMPORT, THREADPOOL_OPTIONAL)
    block = (
        f"{ENGINE_BEGIN}\n# A copy of the platform's survey/glmm.py (its docstring below; "
        "threadpoolctl made optional), so that this script needs NumPy and SciPy only."
        f"\n{engine}\n{ENGINE_END}"
    )
    return _with_plan(head + block + tail, "py", study)


def r_script(study: Study) -> str:
    return _with_plan((SCRIPTS / "analysis.R").read_text(encoding="utf-8"), "R", study)


# --------------------------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------------------------


def readme(study: Study, members: list[tuple[str, str]], preregistration) -> str:
    lines = [
        f"Reproduction bundle of study {study.pk}: {study.name}",
        "",
        "Every number of the study's analysis pages, the data they come from, and two",
        "scripts that recompute them from data/judgements.csv alone:",
        "",
        "  Rscript analysis.R      (R with lme4 and jsonlite)",
        "  python analysis.py      (Python 3.10+, NumPy and SciPy)",
        "",
        "Each prints JSON with the keys of tables/tables.json: per condition the pooled",
        "cells, rates with Wilson and exact intervals, chi-square (Pearson without",
        "continuity correction, the paper's; Yates), Fisher's p, the binomial tests, the",
        "participants' mean d' and c with t intervals (\"conditions\"), and the mixed models",
        '("mixed_models": fooled ~ 1 + (1|participant) + (1|image) per condition, the',
        "probit signal-detection model, the joint model's contrasts with Holm p) with the",
        "exact binomial TOST and the mixed-model TOST against 0.5 +- delta.",
        "analysis.R fits the models with lme4's glmer (Laplace); analysis.py carries a",
        "copy of the platform's engine (the same Laplace estimator in NumPy/SciPy), so its",
        "numbers are the platform's; glmer agrees within about 0.02 logit for intercepts,",
        "5 % for their standard errors and 0.05 for the random-effect SDs.",
        "The bootstrap intervals are not recomputed (resampling draws differ between",
        "languages); tables.json holds them with their seed.",
        "",
        f"Equivalence margin delta = {study.equivalence_margin:g}, alpha = {study.alpha:g} "
        "(the study's plan; both scripts take --margin and --alpha to try others).",
        "",
    ]
    if exports.elsewhere(study.protocol):  # no fooling rates: the paragraph below says what
        lines[2:] = [
            "Every number of the study's analysis page, the data it comes from, and two",
            "scripts, run as",
            "",
            "  Rscript analysis.R      (R with jsonlite)",
            "  python analysis.py      (Python 3.10+, NumPy and SciPy)",
            "",
            *(
                [f"alpha = {study.alpha:g} (the study's plan; both scripts take --alpha).", ""]
                if study.preference
                else []
            ),
        ]
    if study.paired:
        lines[-1:-1] = [
            "",
            "This study's protocol is paired real vs fake (2AFC): each row of",
            "judgements.csv is a pair, written as the judgement of its fake (answer real:",
            "the fake was chosen as the real photograph). Both scripts then report per",
            'condition "pairs": the fooling rate P(chose the fake) with its Wilson and',
            "exact intervals, and fit fooled ~ 1 + (1|participant) + (1|image); there is",
            "no 2x2 table and no d' (a yes/no d' needs real photographs judged alone).",
        ]
    if is_rating(study):
        lines[-1:-1] = [
            "",
            "This study's protocol is rating (absolute category rating, ITU-T P.910): each",
            "image was scored 1 (bad) to 5 (excellent), in data/judgements.csv's rating",
            "column (answer acr). Its statistic is the mean opinion score (MOS) per run and",
            "of the real photographs: tables/mos.json and tables/mos.csv, from",
            "data/ratings.csv. There are no fooling rates: no participants.csv, images.csv",
            "or figures; tables/tables.* say where the MOS is, and both scripts point to",
            "tables/mos.json.",
        ]
    elif study.hype_time:
        lines[-1:-1] = [
            "",
            "This study's protocol is HYPE_time: each image was shown for an exposure set",
            "by a 3-up/1-down staircase (data/judgements.csv's exposure_ms), then masked.",
            "Its statistic is the exposure threshold: per participant in tables/tables.json",
            '("exposure_thresholds"), per condition in tables/tables.csv and tables.json',
            "(exposure_threshold_ms with its bootstrap interval). The scripts recompute the",
            "fooling rates only, not the thresholds.",
        ]
    elif study.preference:
        lines[-1:-1] = [
            "",
            "This study's protocol is preference (which looks more natural): its statistic",
            "is the Bradley-Terry score per run, tables/bradley-terry.json, from",
            "data/preferences.csv. There are no fooling rates: no participants.csv,",
            "images.csv or figures; tables/tables.* say where the scores are. Both scripts",
            "recompute the scores from data/preferences.csv (found beside judgements.csv;",
            "or give its path) and print tables/bradley-terry.json's keys: under",
            '"bradley_terry" each run\'s maximum-likelihood log-strength centred to mean 0',
            "(score), its standard error (se) and Wald interval (ci) at 1 - alpha, its wins",
            "and comparisons; when the scores do not exist (a run that never won or never",
            'lost, runs never compared) "bradley_terry" is null and "error" says why.',
            "analysis.py fits by Newton's method, analysis.R by glm(binomial) on the +-1",
            "design with the first run as reference; both then centre the scores and their",
            "covariance, and agree with the platform's numbers to 1e-6.",
        ]
    if preregistration is not None:
        lines += [
            f"Pre-registration frozen {preregistration.created_at.isoformat(timespec='seconds')};",
            f"SHA-256 of preregistration.json: {preregistration.sha256}",
            "(check it with: sha256sum preregistration.json)",
            "",
        ]
    else:
        lines += [
            "No pre-registration: the study has not opened for real (or opened before",
            "pre-registrations were frozen).",
            "",
        ]
    lines += [
        "Participants appear by a number only (the platform's database id), the same in",
        "every file, never by their Prolific id or the link they took part through. A",
        "text cell starting with = + - @ is written with a leading apostrophe",
        "(spreadsheets would run it as a formula).",
        "",
        "Contents:",
        "",
    ]
    width = max(len(name) for name, _ in members)
    lines += [f"  {name.ljust(width)}  {what}" for name, what in members]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# The zip
# --------------------------------------------------------------------------------------------


def bundle_name(study: Study) -> str:
    return f"study-{study.pk}-bundle.zip"


def study_bundle(*, study: Study):
    """The bundle as an open temporary file, at its start (deleted when closed)."""
    archive = tempfile.TemporaryFile()
    try:
        _write(archive, study)
    except BaseException:
        archive.close()
        raise
    archive.seek(0)
    return archive


def _write(archive, study: Study) -> None:
    root = f"study-{study.pk}"
    members: list[tuple[str, str]] = []
    prereg = PreRegistration.objects.filter(study=study).first()
    analysis = study_analysis(study=study)
    record = exports.analysis_record(analysis)
    record["mixed_models"] = exports.mixed_models_record(analysis)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:

        def add(name: str, data: bytes | str, what: str) -> None:
            zf.writestr(f"{root}/{name}", data.encode("utf-8") if isinstance(data, str) else data)
            members.append((name, what))

        if prereg is not None:
            add("preregistration.md", prereg.markdown, "the pre-registration, Markdown")
            add("preregistration.json", prereg.document, "the pre-registration, canonical JSON")
        with zf.open(f"{root}/data/judgements.csv", "w") as target:
            for chunk in exports.judgements_csv_chunks(study=study):
                target.write(chunk.encode("utf-8"))
        members.append(("data/judgements.csv", "every answered trial, long format"))
        add("tables/tables.csv", exports.tables_csv(analysis), "the tables, one row per condition")
        add(
            "tables/tables.json",
            dumps_json(record, indent=2) + "\n",
            "every number of the dashboard, with the mixed models",
        )
        add("tables/tables.tex", exports.tables_latex(analysis), "the tables, LaTeX (booktabs)")
        add("tables/runs.tex", exports.runs_latex(analysis), "the runs' L1 and SSIM, LaTeX")
        if study.preference:  # its own statistic (survey.preference_protocol)
            preferences = preference_analysis(study=study)
            add(
                "data/preferences.csv",
                judgements_csv(preference_judgements(study=study)),
                "the pairwise judgements: participant,item_a,item_b,winner, then sides",
            )
            add(
                "tables/bradley-terry.json",
                dumps_json(preferences, indent=2) + "\n",
                "Bradley–Terry scores per run with intervals, wins per pair of runs",
            )
            add("tables/bradley-terry.csv", scores_csv(preferences), "Bradley–Terry scores")
            add(
                "tables/bradley-terry.tex",
                preference_latex(
                    preferences, study_id=study.pk, study_name=study.name, alpha=study.alpha
                ),
                "the Bradley–Terry scores and the wins per pair of runs, LaTeX (booktabs)",
            )
        if is_rating(study):  # its own statistic (survey.rating_protocol)
            mos = rating_analysis(study=study)
            add(
                "data/ratings.csv",
                ratings_csv(study=study),
                "every counted ACR rating (1 bad … 5 excellent), before screening",
            )
            add(
                "tables/mos.json",
                mos_json(mos) + "\n",
                "the mean opinion score per run and of the real photographs, with intervals "
                "and the BT.500 screening",
            )
            add("tables/mos.csv", mos_csv(mos), "the mean opinion scores, one row per item")
        # A rating or preference study has no fooling rates: its per-participant and
        # per-image fooling-rate tables and the dashboard's figures would be empty.
        if exports.elsewhere(study.protocol) is None:
            with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as people:
                SafeCsvWriter(people, lineterminator="\n").writerows(
                    participant_table(exports.judgement_rows(study=study))
                )
                people.seek(0)
                with zf.open(f"{root}/tables/participants.csv", "w") as target:
                    for line in people:
                        target.write(line.encode("utf-8"))
            members.append(("tables/participants.csv", "one row per participant: cells, d', c"))
            rows = image_rows(study=study)
            add(
                "tables/images.csv",
                _csv(image_table(study, rows)),
                "one row per image, pooled rates",
            )
            realism = realism_table(record["mixed_models"])
            if realism is not None:
                add(
                    "tables/image-realism.csv",
                    _csv(realism),
                    "the model's per-image effects and soft labels",
                )
            slots = {**figure_slots(analysis), **image_figure_slots(study, rows)}
            for name, slot in slots.items():
                spec = slot.spec or EmptyFigure(slot.title, slot.empty or "Nothing to draw yet.")
                for fmt in ("svg", "pdf"):
                    add(f"figures/{name}.{fmt}", render(spec, fmt), f"figure: {slot.title}")
        add("analysis.R", r_script(study), "recomputes the numbers with lme4 (R)")
        add("analysis.py", python_script(study), "recomputes the numbers (Python)")
        members.append(("README.txt", "this file"))
        zf.writestr(f"{root}/README.txt", readme(study, sorted(members), prereg))
