"""Exports (survey.analysis.exports): the tables as CSV, JSON and LaTeX equal the answers given; the
LaTeX is booktabs-shaped and names the χ² variant; the long-format CSV has one row per
answered trial with the flags a mixed-effects model needs."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from survey.analysis import exports
from survey.analysis.results import study_analysis
from survey.models import Trial
from tests.survey.analysis_helpers import expected_cells, make_study, take_part, withdraw
from worker.models import ModelRun
from worker.run_results import run_results

pytestmark = pytest.mark.django_db


@pytest.fixture
def answered(tmp_path):
    """A study with 6 included participants, one who failed the attention check and one
    who stopped early."""
    study = make_study(tmp_path)
    kept = [take_part(study, i) for i in range(6)]
    failed = take_part(study, 6, attention="real")
    unfinished = take_part(study, 7, stop_after=3)
    return study, kept, failed, unfinished


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_tables_csv_equals_the_answers(answered):
    study, kept, *_ = answered
    analysis = study_analysis(study=study)
    rows = _csv(exports.tables_csv(analysis))
    assert list(rows[0]) == list(exports.TABLE_COLUMNS)
    assert "chi2_pearson_uncorrected" in rows[0] and "chi2_yates" in rows[0]
    expected = expected_cells(kept)
    assert [r["condition"] for r in rows] == ["warm", "cool & co_1"]
    for row, c in zip(rows, analysis.conditions, strict=True):
        cells = tuple(int(row[x]) for x in ("real_real", "real_ai", "ai_real", "ai_ai"))
        assert cells == expected[c.condition_id]
        assert int(row["n"]) == sum(cells) == 12
        assert int(row["participants"]) == 3
        assert float(row["fooling_rate"]) == pytest.approx((cells[1] + cells[2]) / sum(cells))
        # χ² and p from SciPy on the answers given, not from the analysis exported.
        chi2, p, _, _ = chi2_contingency(np.array(cells).reshape(2, 2), correction=False)
        assert float(row["chi2_pearson_uncorrected"]) == pytest.approx(chi2, rel=1e-12)
        assert float(row["p_pearson_uncorrected"]) == pytest.approx(p, rel=1e-9)
        low, high = float(row["fooling_rate_wilson_low"]), float(row["fooling_rate_wilson_high"])
        assert low <= float(row["fooling_rate"]) <= high
        stored = ModelRun.objects.get(conditions__pk=c.condition_id).metrics["test"]
        assert float(row["l1"]) == stored["l1"]
        assert float(row["ssim"]) == stored["ssim"]
        assert row["colour_space"] == "LAB"


def test_tables_json_is_strict_json_with_the_rule(answered):
    study, kept, *_ = answered
    analysis = study_analysis(study=study)
    text = exports.tables_json(analysis)
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["exclusion_rule"] == analysis.exclusion_rule
    assert "no continuity correction" in data["chi2"]
    expected = expected_cells(kept)
    for record in data["conditions"]:
        cells = record["cells"]
        assert (
            tuple(cells[x] for x in ("real_real", "real_ai", "ai_real", "ai_ai"))
            == (expected[record["condition_id"]])
        )
        assert record["table"]["dof"] == 1
        assert record["participants"]["included"] == 3
    assert data["participants"]["failed_attention"] == 1
    assert data["participants"]["unfinished"] == 1


def test_tables_json_has_the_mixed_models_and_equivalence_tests(answered):
    study, kept, *_ = answered
    analysis = study_analysis(study=study)
    data = json.loads(exports.tables_json(analysis))
    mixed = data["mixed_models"]
    assert mixed["computed"] is True and mixed["margin"] == 0.05
    tables = {c["label"]: c["table"] for c in data["conditions"]}
    assert sorted(c["condition"] for c in mixed["conditions"]) == sorted(tables)
    for c in mixed["conditions"]:
        # The same judgements as the tables: the exclusion rule applies.
        assert c["n_judgements"] == tables[c["condition"]]["n"]
        assert c["fooling_rate"] == pytest.approx(tables[c["condition"]]["fooling_rate"])
        assert {"intercept", "intercept_se", "converged", "singular", "warnings"} <= set(c["glmm"])
        # A fit that failed or is singular says so in words, never only a number.
        if c["glmm"]["intercept"] is None or c["glmm"]["singular"]:
            assert c["glmm"]["warnings"]
        assert {"margin", "p", "equivalent", "verdict", "reason"} <= set(c["tost"])
        assert c["verdict"] and c["verdict_reason"]
    assert len(mixed["contrasts"]) == 1


def test_a_study_too_large_for_a_download_names_the_command(answered, monkeypatch):
    study, *_ = answered
    monkeypatch.setattr(exports, "MIXED_MODEL_LIMIT", 5)
    mixed = json.loads(exports.tables_json(study_analysis(study=study)))["mixed_models"]
    assert mixed == {
        "computed": False,
        "reason": "not computed here: more than 5 judgements; run manage.py "
        "analyse_judgements on judgements.csv",
    }


def _tabular_rows(block: str) -> list[str]:
    body = block.split("\\midrule", 1)[1].split("\\bottomrule", 1)[0]
    return [line for line in body.splitlines() if line.strip().endswith("\\\\")]


def test_tables_latex_is_booktabs_like_the_paper(answered):
    study, kept, *_ = answered
    analysis = study_analysis(study=study)
    tex = exports.tables_latex(analysis)
    blocks = re.findall(r"\\begin\{table\}.*?\\end\{table\}", tex, flags=re.S)
    assert len(blocks) == 3  # one per condition, then all conditions in one
    for block in blocks:
        for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
            assert rule in block
        assert block.count("\\begin{tabular}") == block.count("\\end{tabular}") == 1
        assert block.count("{") == block.count("}")
        assert "\\hline" not in block
    expected = expected_cells(kept)
    first = blocks[0]
    c = analysis.conditions[0]
    rr, ra, ar, aa = expected[c.condition_id]
    assert f"Actual Real & {rr} & {ra} & {rr + ra} \\\\" in first
    assert f"Actual AI & {ar} & {aa} & {ar + aa} \\\\" in first
    assert "Pearson, no continuity correction" in first
    participants = c.sdt.n_participants + c.sdt_skipped
    noun = "participant" if participants == 1 else "participants"
    assert f"judgements by {participants} {noun})" in first
    assert "\\label{tab:study" in first and "\\caption{" in first
    everything = blocks[2]
    assert "cool \\& co\\_1" in everything  # labels escaped
    columns = everything.split("\\begin{tabular}{", 1)[1].split("}", 1)[0]
    for line in _tabular_rows(everything)[1:]:
        assert len(re.findall(r"(?<!\\)&", line)) == len(columns) - 1  # \& is text
    assert "% Needs \\usepackage{booktabs}." in tex
    assert "Pearson chi-square test of independence, df = 1, no continuity correction" in tex


def test_runs_latex_is_table_4_shaped(answered):
    study, *_ = answered
    analysis = study_analysis(study=study)
    tex = exports.runs_latex(analysis)
    assert tex.count("\\begin{table}") == 1 and "\\toprule" in tex and "\\bottomrule" in tex
    assert "Model & Colour space & L1 distance & SSIM \\\\" in tex
    for c in analysis.conditions:
        assert f"& LAB & {c.metrics['l1']:.3f} & {c.metrics['ssim']:.3f} \\\\" in tex
    analysis.conditions[0].metrics["ssim"] = None
    assert "& ---" in exports.runs_latex(analysis)


def test_runs_latex_shows_no_colour_beside_the_models_and_marks_who_does_not_beat_it(answered):
    study, *_ = answered
    analysis = study_analysis(study=study)
    references = [run_results(ModelRun.objects.get(pk=c.run_id)) for c in analysis.conditions]
    no_colour = references[0].no_colour.test
    assert all(r.no_colour.test.l1 == no_colour.l1 for r in references)  # the same images
    tex = exports.runs_latex(analysis)
    row = f"No colour (grayscale input) & LAB & {no_colour.l1:.3f} & {no_colour.ssim:.3f} \\\\"
    assert tex.count(row) == 1  # once for the conditions measured on the same images
    assert tex.count("Category mean chroma & LAB & ") == 1
    assert tex.index("\\midrule", tex.index("\\midrule") + 1) < tex.index(row)

    analysis.conditions[0].beats_no_colour = False
    analysis.conditions[1].beats_no_colour = True
    tex = exports.runs_latex(analysis)
    assert "warm\\textsuperscript{\\dag} & LAB" in tex and "co\\_1 & LAB" in tex
    assert "% \\dag: the model's test L1 distance is not lower" in tex
    footnote = "\\par\\footnotesize \\textsuperscript{\\dag} Does not beat predicting no colour"
    assert tex.count(footnote) == 1 and "learned little beyond grey" in tex
    assert tex.index(footnote) > tex.index("\\end{tabular}")  # printed under the table
    for c in analysis.conditions:  # runs evaluated before the references: no rows
        c.references, c.beats_no_colour = {}, None
    tex = exports.runs_latex(analysis)
    assert "No colour" not in tex and "\\dag" not in tex


def test_tables_csv_gives_the_references_beside_each_run(answered):
    study, *_ = answered
    analysis = study_analysis(study=study)
    rows = _csv(exports.tables_csv(analysis))
    for row, c in zip(rows, analysis.conditions, strict=True):
        results = run_results(ModelRun.objects.get(pk=c.run_id))
        assert float(row["no_colour_l1"]) == pytest.approx(results.no_colour.test.l1)
        assert float(row["no_colour_ssim"]) == pytest.approx(results.no_colour.test.ssim)
        mean_chroma = results.category_mean_chroma.test
        assert float(row["category_mean_chroma_l1"]) == pytest.approx(mean_chroma.l1)
        assert row["beats_no_colour"] == {True: "yes", False: "no"}[results.beats_no_colour]
    for c in analysis.conditions:  # runs evaluated before the references: empty cells
        c.references, c.beats_no_colour = {}, None
    rows = _csv(exports.tables_csv(analysis))
    assert {row["no_colour_l1"] for row in rows} == {""} == {r["beats_no_colour"] for r in rows}


def test_runs_latex_marks_a_run_tested_on_part_of_the_test_split(answered):
    study, *_ = answered
    condition = study.conditions.order_by("pk").first()
    run = condition.run
    run.config = run.config | {"manifest": {"rows": 40, "test_images": 50}}
    run.save()
    analysis = study_analysis(study=study)
    tex = exports.runs_latex(analysis)
    first, second = analysis.conditions[0], analysis.conditions[1]
    assert first.partial_coverage == "40 / 50 test images" and second.partial_coverage == ""
    assert f"{first.label}$^\\ddagger$ & LAB" in tex and f"{second.label}$^\\ddagger$" not in tex
    assert "Tested on part of the test split" in tex and "40 / 50 test images" in tex
    assert tex.index("40 / 50 test images") < tex.index("\\end{table}")


def test_judgements_csv_is_long_format_and_flags_everything(answered):
    study, kept, failed, unfinished = answered
    gone = take_part(study, 8)
    withdraw(study, gone)
    text = "".join(exports.judgements_csv_chunks(study=study, rows_per_chunk=7))
    rows = _csv(text)
    assert list(rows[0]) == list(exports.JUDGEMENT_COLUMNS)
    assert {"participant", "condition", "model_run", "image", "truth", "answer"} <= set(rows[0])
    assert {"rt_ms", "position", "practice", "attention"} <= set(rows[0])
    answered_trials = Trial.objects.filter(participant__study=study, answer__isnull=False)
    assert len(rows) == answered_trials.count()  # practice and attention rows included
    assert not [r for r in rows if int(r["participant"]) == gone.pk]  # withdrawn: no data
    analysis = study_analysis(study=study)
    assert sum(int(r["counted"]) for r in rows) == analysis.judgements == 24
    by_participant = {}
    for r in rows:
        by_participant.setdefault(int(r["participant"]), []).append(r)
        assert r["correct"] == str(int(r["truth"] == r["answer"]))
        assert r["is_ai"] == str(int(r["truth"] == "ai"))
        assert int(r["practice"]) + int(r["attention"]) <= 1
        if r["counted"] == "1":
            assert r["practice"] == r["attention"] == "0" and r["excluded"] == ""
    assert {r["excluded"] for r in by_participant[failed.pk]} == {"failed attention check"}
    assert {r["excluded"] for r in by_participant[unfinished.pk]} == {"unfinished"}
    assert [int(r["position"]) for r in by_participant[kept[0].pk]] == list(range(1, 7))
    first = Trial.objects.select_related("stimulus__condition").get(participant=kept[0], position=2)
    row = by_participant[kept[0].pk][1]
    assert row["answer"] == first.answer and int(row["rt_ms"]) == first.rt_ms
    assert (
        int(row["stimulus"]) == first.stimulus_id and int(row["image"]) == first.stimulus.scene_id
    )
    if first.kind == "main":
        assert row["condition"] == first.stimulus.condition.label
        assert int(row["model_run"]) == first.stimulus.condition.run_id
    attention = [r for r in by_participant[kept[0].pk] if r["attention"] == "1"]
    assert len(attention) == 1 and attention[0]["truth"] == "ai" and attention[0]["condition"] == ""
    widened = _csv("".join(exports.judgements_csv_chunks(study=study, include_unfinished=True)))
    assert sum(int(r["counted"]) for r in widened) > 24


def test_every_export_records_the_study_language_and_wording(answered):
    study, *_ = answered
    study.language = "fr"
    study.ai_label = "Machine"
    study.save()
    analysis = study_analysis(study=study)
    record = json.loads(exports.tables_json(analysis))["study"]
    assert record["language"] == "fr"
    assert record["wording"] == {
        "question": "Photo réelle, ou colorisée par une IA\u00a0?",
        "real_label": "Réelle",
        "ai_label": "Machine",
        "real_key": "R",
        "ai_key": "I",
    }
    assert {row["language"] for row in _csv(exports.tables_csv(analysis))} == {"fr"}
    assert "% Participants' language: fr." in exports.tables_latex(analysis)
    judgements = _csv("".join(exports.judgements_csv_chunks(study=study)))
    assert judgements and {row["language"] for row in judgements} == {"fr"}
