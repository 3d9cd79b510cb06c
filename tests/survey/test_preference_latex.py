"""The preference study's LaTeX table (survey.analysis.preference_latex): labels escaped,
even one that starts like an optional argument, scores highest first, no table without a
fit."""

from __future__ import annotations

from survey.analysis.preference_latex import preference_latex

FIT = {
    "n_judgements": 24,
    "n_participants": 2,
    "error": "",
    "run_pairs": [
        {"item_a": "[ours] warm", "item_b": "A_B & 50%", "wins_a": 9, "wins_b": 3,
         "comparisons": 12}
    ],
    "bradley_terry": {
        "items": [
            {"item": "[ours] warm", "score": 0.5493, "se": 0.3, "ci": [-0.04, 1.14], "wins": 9,
             "comparisons": 12},
            {"item": "A_B & 50%", "score": -0.5493, "se": 0.3, "ci": [-1.14, 0.04], "wins": 3,
             "comparisons": 12},
        ]
    },
}  # fmt: skip


def _rows(tex: str) -> list[str]:
    return [line for line in tex.splitlines() if line.endswith("\\\\") and " & " in line]


def test_labels_are_escaped_and_no_row_starts_with_a_bracket():
    tex = preference_latex(FIT, study_id=7, study_name="Study [1]", alpha=0.05)
    rows = _rows(tex)
    assert rows[1].startswith("1 & {[}ours{]} warm & 0.549 & 0.300 & [$-$0.040, 1.140] & 9 & 12")
    assert rows[2].startswith("2 & A\\_B \\& 50\\% & $-$0.549")
    assert rows[4] == "{[}ours{]} warm & A\\_B \\& 50\\% & 9 & 3 & 12 \\\\"
    assert not any(row.startswith("[") for row in rows)
    assert "Study {[}1{]}" in tex and "95\\,\\% Wald interval" in tex


def test_without_a_fit_there_is_only_the_reason():
    tex = preference_latex(
        {**FIT, "bradley_terry": None, "error": "'x' never lost"},
        study_id=7,
        study_name="S",
        alpha=0.05,
    )
    assert "\\begin{table}" not in tex and "% No scores yet: 'x' never lost." in tex
