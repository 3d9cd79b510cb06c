"""A study's pre-registration: what it set out to do, as a JSON document and its Markdown
rendering, built when the study first opens for real (:mod:`survey.services.preregistration`
freezes it; reads only here).

It holds the hypotheses as the researcher wrote them, the design (protocol, counts,
exposure, language and wording), the stimuli manifest with the SHA-256 of every stimulus
file, the model runs with their configuration and the SHA-256 of their checkpoints (for an
uploaded run: of its uploaded images as stored), the seeds, the exclusion rules, the
analysis plan (the formulas of :mod:`survey.inference`, the margin δ, α and the intervals)
and the planned sample size.

**Canonical JSON**: keys sorted, no insignificant spaces, UTF-8, no NaN. Its SHA-256 is the
pre-registration's hash; the ``.json`` download is exactly those bytes, so ``sha256sum``
of the file gives the hash shown on the study's page.

Files are hashed in pieces (:data:`HASH_CHUNK`): none is read whole into memory.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.files.storage import default_storage
from django.utils import timezone

from survey import hype
from survey.analysis.exclusion import exclusion_rule_text
from survey.analysis.exports import CHI2_VARIANT, MIXED_MODEL_LIMIT, elsewhere
from survey.equivalence import CHANCE
from survey.inference import ENGINE
from survey.models import Stimulus, Study
from survey.protocols import protocol_info
from survey.statistics import DEFAULT_CONFIDENCE
from survey.wording import study_wording
from worker.models import ColourisedImage, ModelRun

SCHEMA = "colour-study-preregistration/1"
HASH_CHUNK = 1 << 20
MISSING = "missing from storage"

#: The models of survey.inference, as its results name them (a test checks they agree).
FOOLING_FORMULA = "fooled ~ 1 + (1 | participant) + (1 | image)"
SDT_FORMULA = "said_real ~ truth + (1 + truth | participant) + (1 | image), probit"
JOINT_FORMULA = "fooled ~ condition + (1 | participant) + (1 | image)"
#: The dashboard's bootstrap (survey.analysis.results.study_analysis's defaults).
BOOTSTRAP_REPLICATES = 2000
BOOTSTRAP_SEED = 0


def file_sha256(name: str) -> tuple[str | None, int | None]:
    """(SHA-256 hex, size in bytes) of a stored file, read in pieces; (None, None) when
    it is not in storage."""
    digest = hashlib.sha256()
    size = 0
    try:
        with default_storage.open(name, "rb") as stream:
            while chunk := stream.read(HASH_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        return None, None
    return digest.hexdigest(), size


def _file_record(name: str, **extra) -> dict[str, Any]:
    sha, size = file_sha256(name)
    record = {"file": name, "sha256": sha, "bytes": size, **extra}
    if sha is None:
        record["note"] = MISSING
    return record


def canonical_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def document_sha256(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(document)).hexdigest()


# --------------------------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------------------------


def _protocol(study: Study) -> dict[str, Any]:
    """The protocol, its statistic, and its settings: a preference study's adaptive
    choice of pairs, a HYPE_time study's staircase constants (survey.hype)."""
    record: dict[str, Any] = {
        "protocol": study.protocol,
        "protocol_text": study.get_protocol_display(),
        "statistic": protocol_info(study).statistic,
    }
    if study.preference:
        record["preference_adaptive"] = study.preference_adaptive
    if study.hype_time:
        record["staircase"] = {
            "ladder_ms": list(hype.LADDER_MS),
            "start_ms": hype.START_MS,
            "rule": f"{hype.DOWN_AFTER}-up/1-down: {hype.DOWN_AFTER} correct answers in a "
            "row make the exposure one rung shorter, one wrong answer one rung longer",
            "down_after": hype.DOWN_AFTER,
            "masks": hype.MASKS,
            "mask_ms": hype.MASK_MS,
            "threshold": f"mean exposure at the last {hype.LAST_REVERSALS} reversals (all "
            f"if fewer; fewer than {hype.MIN_REVERSALS}: the exposure it ended on, not "
            "converged)",
            "last_reversals": hype.LAST_REVERSALS,
            "min_reversals": hype.MIN_REVERSALS,
        }
    return record


def _design(study: Study) -> dict[str, Any]:
    wording = study_wording(study)
    return {
        **_protocol(study),
        "design": study.design,
        "design_text": study.get_design_display(),
        "images_per_participant": study.images_per_participant,
        "real_per_participant": study.per_kind,
        "ai_per_participant": study.per_kind,
        "practice_trials": study.practice_trials,
        "attention_checks": study.attention_checks,
        "instructed_checks": study.instructed_checks,
        "trials_per_participant": study.trials_per_participant,
        "exposure_ms": study.exposure_ms,
        "exposure_text": f"{study.exposure_ms} ms" if study.exposure_ms else "until answered",
        "language": study.language,
        "wording": {
            "question": wording.question,
            "real_label": wording.real_label,
            "ai_label": wording.ai_label,
            "real_key": wording.real_key,
            "ai_key": wording.ai_key,
        },
        "consent_text": study.consent_text,
        "instructions": study.instructions,
        "estimated_minutes": study.estimated_minutes,
        "time_limit_minutes": study.time_limit_in_minutes,
        "stimulus_format": "baseline JPEG, quality 92, 4:4:4, no metadata; served as its "
        f"pixels in an uncompressed PNG padded to {study.stimulus_bytes} bytes",
    }


def _stimuli(study: Study) -> list[dict[str, Any]]:
    labels = dict(study.conditions.values_list("pk", "label"))
    rows = (
        Stimulus.objects.filter(study=study)
        .select_related("scene")
        .order_by("condition_id", "role", "is_real", "scene_id", "pk")
    )
    return [
        _file_record(
            s.file,
            stimulus=s.pk,
            condition=labels.get(s.condition_id),
            truth="real" if s.is_real else "ai",
            role=s.role,
            scene=s.scene_id,
            scene_name=s.scene.original_name,
            category=s.scene.category,
            width=s.width,
            height=s.height,
        )
        for s in rows.iterator(chunk_size=500)
    ]


def _run(run: ModelRun) -> dict[str, Any]:
    config = dict(run.config or {})
    if isinstance(config.get("manifest"), dict):  # an upload's entries: listed with hashes
        config["manifest"] = {k: v for k, v in config["manifest"].items() if k != "entries"}
    record: dict[str, Any] = {
        "id": run.pk,
        "uid": run.uid.hex,
        "name": run.name,
        "kind": run.kind,
        "colour_space": run.colour_space,
        "status": run.status,
        "dataset": {"id": run.dataset_id, "name": run.dataset.name, "seed": run.dataset.seed},
        "config": config,
        "environment": run.environment or {},
        "test_metrics": (run.metrics or {}).get("test", {}),
    }
    if run.kind == ModelRun.Kind.UPLOADED:
        outputs = ColourisedImage.objects.filter(run=run).order_by("source_id", "pk")
        record["uploaded_files"] = [
            _file_record(o.file, image_id=o.source_id) for o in outputs.iterator(chunk_size=500)
        ]
    else:
        record["checkpoints"] = [
            _file_record(name, submodel=sm.label, artefact=kind)
            for sm in run.submodels.order_by("role", "category")
            for kind, name in sorted((sm.artefacts or {}).items())
            if name
        ]
    return record


def _hype_note(level: float) -> str:
    """A HYPE_time study's primary statistic, and what the fooling-rate plan still is."""
    return (
        f"the exposure threshold: per participant the mean exposure at the last "
        f"{hype.LAST_REVERSALS} reversals of the staircase, per condition the mean over "
        f"participants with a {level:g} % percentile bootstrap over participants "
        f"({BOOTSTRAP_REPLICATES} replicates, seed {BOOTSTRAP_SEED}). The pooled rates below "
        "only describe the judgements; the mixed models, d′ and the equivalence test are "
        "left out: each judgement was made at an exposure the staircase chose from the "
        "answers before it"
    )


def _analysis_plan(study: Study) -> dict[str, Any]:
    level = 100 * DEFAULT_CONFIDENCE
    note = elsewhere(study.protocol)
    if study.hype_time:
        note = _hype_note(level)
    elif note:  # A rating or preference study: the fooling-rate plan below is not its own.
        note = f"{note}; the fooling-rate plan below does not apply"
    return {
        **({"protocol_note": note} if note else {}),
        "outcome": "fooled = 1 when the answer differs from the truth (a real photograph "
        "judged AI, or an AI image judged Real)",
        "pooled": {
            "fooling_rate": "(real judged AI + AI judged real) / all judgements (the paper's)",
            "intervals": f"Wilson score, {level:g} %",
            "chi2": CHI2_VARIANT + "; Yates-corrected and Fisher's exact p beside it",
            "signal_detection": "d′ and c per participant (log-linear correction, Hautus "
            f"1995), means with t intervals ({level:g} %)",
            "bootstrap": f"percentile, {level:g} %, {BOOTSTRAP_REPLICATES} replicates, seed "
            f"{BOOTSTRAP_SEED}: over participants, and over participants and images together",
        },
        "mixed_models": {
            "engine": ENGINE,
            "per_condition": FOOLING_FORMULA + ", logit link",
            "signal_detection": SDT_FORMULA + " (truth coded +½ real, −½ AI)",
            "across_conditions": JOINT_FORMULA
            + ", logit link; every pairwise contrast with its Wald interval and "
            "Holm-adjusted p",
            "intervals": f"Wald, {level:g} %, carried to the rate scale",
            "computed_on_the_page_up_to_judgements": MIXED_MODEL_LIMIT,
        },
        "equivalence": {
            "chance": CHANCE,
            "margin": study.equivalence_margin,
            "alpha": study.alpha,
            "bounds": [CHANCE - study.equivalence_margin, CHANCE + study.equivalence_margin],
            "exact_binomial_tost": "p = max of the two one-sided exact binomial p-values "
            "(statsmodels' binom_tost); equivalent when p < α",
            "mixed_model_tost": f"the model-based rate's {100 * (1 - 2 * study.alpha):g} % "
            "interval inside 0.5 ± δ",
            "verdicts": ["equivalent to chance within ±δ", "different from chance", "inconclusive"],
        },
    }


def build_document(study: Study) -> dict[str, Any]:
    """The pre-registration of ``study`` as it stands now (plain JSON values)."""
    conditions = list(study.conditions.select_related("run", "run__dataset").order_by("pk"))
    target = study.target_participants_per_condition
    per_participant = study.images_per_participant
    return {
        "schema": SCHEMA,
        "frozen_at": timezone.now().isoformat(timespec="seconds"),
        "study": {"id": study.pk, "name": study.name, "created_at": study.created_at.isoformat()},
        "hypotheses": study.hypotheses,
        "design": _design(study),
        "conditions": [
            {"id": c.pk, "label": c.label, "run": c.run_id, "run_name": c.run.name}
            for c in conditions
        ],
        "stimuli": _stimuli(study),
        "model_runs": [_run(c.run) for c in conditions],
        "seeds": {
            "stimulus_preparation": None,
            "assignment": None,
            "note": "scenes reserved for practice and checks, and each participant's "
            "images, are drawn from the operating system's random source "
            "(random.SystemRandom): no seed reproduces them; the stimuli manifest and "
            "judgements.csv record what was drawn",
            "bootstrap": BOOTSTRAP_SEED,
        },
        "exclusion": {
            "attention_checks": study.attention_checks,
            "instructed_checks": study.instructed_checks,
            "instructed_checks_exclude": study.instructed_checks_exclude,
            "drop_flagged_displays": study.drop_flagged_displays,
            "colour_screen": study.colour_screen,
            "colour_screen_excludes": study.colour_screen_excludes,
            "rules": exclusion_rule_text(study=study),
        },
        "analysis_plan": _analysis_plan(study),
        "planned_sample": {
            "participants_per_condition": target,
            "conditions": len(conditions),
            "participants": target
            if study.design == Study.Design.WITHIN
            else target * len(conditions),
            "judgements_per_participant": per_participant,
            "note": "the target counts included participants (finished, checks passed)",
        },
    }


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def _md(text: Any) -> str:
    """One line of text with Markdown's active characters escaped."""
    out = " ".join(str(text if text is not None else "").split())
    for ch in "\\`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    return out


def _files_table(records: list[dict[str, Any]], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns + ["SHA-256"]) + " |"]
    lines.append("|" + "---|" * (len(columns) + 1))
    for r in records:
        cells = [_md(r.get(c, "")) for c in columns]
        lines.append("| " + " | ".join(cells + [f"`{r['sha256']}`" if r["sha256"] else MISSING]))
        lines[-1] += " |"
    return lines


def _protocol_lines(design: dict[str, Any]) -> list[str]:
    """A preference study's adaptive setting and a HYPE_time study's staircase, as Markdown
    list items (none for a pre-registration frozen before they were recorded)."""
    lines = []
    if "preference_adaptive" in design:
        lines.append(
            "- Pairs: "
            + (
                "adaptive (from the third on, where the Bradley–Terry ranking is least certain)"
                if design["preference_adaptive"]
                else "balanced plan (each pair of runs equally often)"
            )
        )
    stair = design.get("staircase")
    if stair:
        lines.append(
            f"- Staircase: exposures {', '.join(str(ms) for ms in stair['ladder_ms'])} ms, "
            f"start {stair['start_ms']} ms; {_md(stair['rule'])}; {stair['masks']} backward "
            f"masks of {stair['mask_ms']} ms; threshold: {_md(stair['threshold'])}"
        )
    return lines


def render_markdown(document: dict[str, Any], sha256: str) -> str:
    d = document
    design, plan = d["design"], d["analysis_plan"]
    eq, mixed, pooled = plan["equivalence"], plan["mixed_models"], plan["pooled"]
    sample = d["planned_sample"]
    lines = [
        f"# Pre-registration: {_md(d['study']['name'])} (study {d['study']['id']})",
        "",
        f"Frozen {d['frozen_at']} when the study opened. SHA-256 of "
        f"`preregistration.json` (canonical JSON): `{sha256}`.",
        "",
        "## Hypotheses",
        "",
        *(["> " + line if line.strip() else ">" for line in d["hypotheses"].splitlines()] or []),
    ]
    if not d["hypotheses"].strip():
        lines.append("None stated.")
    w = design["wording"]
    lines += [
        "",
        "## Design",
        "",
        f"- Protocol: {_md(design.get('protocol_text', 'single image, Real or AI'))}; "
        f"statistic: {_md(design.get('statistic', 'fooling rate'))}",
        *_protocol_lines(design),
        f"- Design: {_md(design['design_text'])}",
        "- Conditions: "
        + "; ".join(f"{_md(c['label'])} (run {_md(c['run_name'])})" for c in d["conditions"]),
        f"- Images per participant: {design['images_per_participant']} "
        f"({design['real_per_participant']} real, {design['ai_per_participant']} AI), plus "
        f"{design['practice_trials']} practice, {design['attention_checks']} attention "
        f"check(s), {design['instructed_checks']} instructed check(s)",
        f"- Exposure: {_md(design['exposure_text'])}",
        f"- Language: {_md(design['language'])}; question “{_md(w['question'])}”, answers "
        f"“{_md(w['real_label'])}” (key {_md(w['real_key'])}) and “{_md(w['ai_label'])}” "
        f"(key {_md(w['ai_key'])})",
        f"- Stimuli: {_md(design['stimulus_format'])}",
        "",
        "## Planned sample",
        "",
        f"{sample['participants_per_condition']} included participants per condition "
        f"({sample['participants']} in all, {sample['conditions']} condition(s)), "
        f"{sample['judgements_per_participant']} judgements each; {_md(sample['note'])}.",
        "",
        "## Exclusion rules",
        "",
        *[f"- {_md(rule)}" for rule in d["exclusion"]["rules"]],
        "",
        "## Analysis plan",
        "",
        *(
            [f"- Protocol's statistic: {_md(plan['protocol_note'])}"]
            if "protocol_note" in plan
            else []
        ),
        f"- Outcome: {_md(plan['outcome'])}",
        f"- Pooled: {_md(pooled['fooling_rate'])}; intervals {_md(pooled['intervals'])}; "
        f"χ²: {_md(pooled['chi2'])}",
        f"- Signal detection per participant: {_md(pooled['signal_detection'])}",
        f"- Bootstrap: {_md(pooled['bootstrap'])}",
        f"- Mixed model per condition: `{mixed['per_condition']}`",
        f"- Signal-detection mixed model: `{mixed['signal_detection']}`",
        f"- Across conditions: `{mixed['across_conditions']}`",
        f"- Model intervals: {_md(mixed['intervals'])}; engine: {_md(mixed['engine'])}",
        f"- Equivalence: margin δ = {eq['margin']:g}, α = {eq['alpha']:g}, bounds "
        f"{eq['bounds'][0]:g}–{eq['bounds'][1]:g}; {_md(eq['exact_binomial_tost'])}; mixed "
        f"model: {_md(eq['mixed_model_tost'])}",
        "",
        "## Seeds",
        "",
        f"- Stimulus preparation and assignment: {_md(d['seeds']['note'])}",
        f"- Bootstrap seed: {d['seeds']['bootstrap']}",
        "",
        "## Model runs",
    ]
    for run in d["model_runs"]:
        lines += [
            "",
            f"### {_md(run['name'])} ({_md(run['kind'])}, {run['colour_space'].upper()})",
            "",
            f"Data set {_md(run['dataset']['name'])} (split seed {run['dataset']['seed']}); "
            f"run uid `{run['uid']}`.",
            "",
            "```json",
            json.dumps(run["config"], indent=2, sort_keys=True, ensure_ascii=False),
            "```",
            "",
        ]
        if "checkpoints" in run:
            lines += _files_table(run["checkpoints"], ["submodel", "artefact", "file"])
        else:
            lines += _files_table(run["uploaded_files"], ["image_id", "file"])
    lines += [
        "",
        "## Stimuli",
        "",
        *_files_table(
            d["stimuli"], ["stimulus", "condition", "truth", "role", "scene", "width", "height"]
        ),
        "",
    ]
    return "\n".join(lines)
