"""The LaTeX table of a preference study (survey.preference_protocol): one row per run, its
Bradley–Terry score (maximum-likelihood log-strength centred to mean 0) with its standard
error and Wald interval, then its wins and comparisons, highest score first; then the wins
per pair of runs. Needs ``\\usepackage{booktabs}``; the study's ``tables.tex`` for this
protocol and the bundle's ``tables/bradley-terry.tex``."""

from __future__ import annotations

from studyplatform.safe_text import one_line
from studyplatform.words import counted
from survey.statistics import latex_escape


def _number(value: float) -> str:
    return f"{value:.3f}".replace("-", "$-$")


def preference_latex(result: dict, *, study_id: int, study_name: str, alpha: float) -> str:
    """``result``: :func:`survey.preference_protocol.preference_analysis`'s record."""
    head = [
        f"% Study {study_id}: {one_line(study_name)}",
        "% Preference study: two runs' colourisations of one photograph side by side, "
        "“Which looks more natural?”; Bradley & Terry (1952).",
    ]
    fit = result["bradley_terry"]
    if fit is None:
        return "\n".join([*head, f"% No scores yet: {one_line(result['error'])}."]) + "\n"
    level = f"{100 * (1 - alpha):g}\\,\\%"
    name = latex_escape(one_line(study_name))
    judgements = counted(result["n_judgements"], "judgement")
    participants = counted(result["n_participants"], "participant")
    rows = [
        f"{rank} & {latex_escape(item['item'])} & {_number(item['score'])} & "
        f"{item['se']:.3f} & [{_number(item['ci'][0])}, {_number(item['ci'][1])}] & "
        f"{item['wins']} & {item['comparisons']} \\\\"
        for rank, item in enumerate(fit["items"], start=1)
    ]
    pairs = [
        f"{latex_escape(p['item_a'])} & {latex_escape(p['item_b'])} & {p['wins_a']} & "
        f"{p['wins_b']} & {p['comparisons']} \\\\"
        for p in result["run_pairs"]
    ]
    return (
        "\n".join(
            [
                *head,
                "\\begin{table}[t]",
                "\\centering",
                f"\\caption{{Bradley--Terry scores in study ``{name}'' ({judgements} of "
                f"{participants}): maximum-likelihood log-strength centred to mean 0 (a "
                "difference $d$: the first run preferred with probability "
                f"$1/(1+e^{{-d}})$), with its standard error and {level} Wald interval.}}",
                f"\\label{{tab:study{study_id}-bradley-terry}}",
                "\\begin{tabular}{rlrrcrr}",
                "\\toprule",
                f"Rank & Run & Score & SE & {level} interval & Wins & Comparisons \\\\",
                "\\midrule",
                *rows,
                "\\bottomrule",
                "\\end{tabular}",
                "\\end{table}",
                "",
                "\\begin{table}[t]",
                "\\centering",
                f"\\caption{{Wins per pair of runs in study ``{name}''.}}",
                f"\\label{{tab:study{study_id}-run-pairs}}",
                "\\begin{tabular}{llrrr}",
                "\\toprule",
                "Run A & Run B & A preferred & B preferred & Comparisons \\\\",
                "\\midrule",
                *pairs,
                "\\bottomrule",
                "\\end{tabular}",
                "\\end{table}",
            ]
        )
        + "\n"
    )
