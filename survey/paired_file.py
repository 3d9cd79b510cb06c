"""A file of paired real-vs-fake judgements (the "Paired real vs fake, 2AFC" protocol,
survey.protocols) analysed for ``manage.py analyse_judgements``: the fooling rate P(chose
the fake) per condition with Wilson, bootstrap (over participants; over participants and
images) and mixed-model intervals, and no d′. Pure (no Django).

A paired file is the long format of :mod:`survey.inference` with one row per pair, written
as the judgement of its fake: ``truth`` ai, ``answer`` real when the fake was chosen as the
real photograph (fooled), ai when the photograph was. The platform's judgements.csv of a
paired study is one as it is: its ``protocol`` column says ``paired`` on every row, and the
file is then read as paired without ``--paired``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from survey.inference import (
    InferenceError,
    Row,
    StudyInference,
    analyse_rows,
    format_text,
    read_rows,
)
from survey.statistics import (
    BootstrapResult,
    Judgement,
    bootstrap_over_participants,
    bootstrap_two_way,
    to_jsonable,
)

PAIRED = "paired"
COUNTED = ("1", "1.0", "true", "True")
#: The bootstrap of the analysis page (survey.analysis.results.study_analysis's defaults).
N_BOOT, SEED = 2000, 0
STATISTIC = (
    "fooling rate: P(chose the fake as the real photograph) (0.5: the fake cannot be told "
    "from the photograph), with bootstrap and mixed-model intervals"
)


def file_protocol(lines: Sequence[str], *, paired: bool) -> bool:
    """Whether the file holds paired judgements: ``paired`` (``--paired``) or a
    ``protocol`` column saying ``paired`` on every row. Raises InferenceError naming the
    line of a row whose protocol differs from the first row's, of a protocol other than
    paired under ``--paired``, and, for a paired file, of a counted row whose truth is not
    ai (a pair is the judgement of its fake)."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if not header:
        return paired  # read_rows names the empty file
    names = [h.strip().lower().lstrip("\ufeff") for h in header]
    at = {c: names.index(c) for c in ("protocol", "truth", "counted") if c in names}
    first: tuple[int, str] | None = None
    records = []
    for number, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue
        records.append((number, record))
        if "protocol" not in at or len(record) <= at["protocol"]:
            continue
        protocol = record[at["protocol"]].strip().lower()
        if first is None:
            first = (number, protocol)
        elif protocol != first[1]:
            raise InferenceError(
                f"line {number}: protocol {protocol!r} where line {first[0]} has "
                f"{first[1]!r} (one protocol per file)"
            )
    if first is not None and first[1] != PAIRED and paired:
        raise InferenceError(
            f"line {first[0]}: protocol {first[1]!r}, not paired: --paired reads a file of "
            "paired real-vs-fake judgements"
        )
    paired = paired or (first is not None and first[1] == PAIRED)
    if paired and "truth" in at:
        for number, record in records:
            if len(record) <= max(at.values()):
                continue  # read_rows names the short row
            if "counted" in at and record[at["counted"]].strip() not in COUNTED:
                continue
            truth = record[at["truth"]].strip().lower()
            if truth != "ai":
                raise InferenceError(
                    f"line {number}: truth {record[at['truth']].strip()!r} in a paired file: "
                    "each pair is written as the judgement of its fake (truth ai; answer real "
                    "when the fake was chosen, ai when the photograph was)"
                )
    return paired


@dataclass
class PairedBootstrap:
    condition: str
    over_participants: BootstrapResult
    two_way: BootstrapResult


@dataclass
class PairedResult:
    inference: StudyInference
    bootstraps: list[PairedBootstrap]


def paired_bootstraps(
    rows: Sequence[Row], confidence: float, *, n_boot: int = N_BOOT, seed: int = SEED
) -> list[PairedBootstrap]:
    """Per condition (in order of first appearance) the percentile bootstrap of the
    fooling rate over participants, and over participants and images (crossed)."""
    grouped: dict[str, list[Row]] = {}
    for r in rows:
        grouped.setdefault(r.condition, []).append(r)
    found = []
    for name, own in grouped.items():
        judgements = [Judgement(r.participant, r.image, name, r.truth, r.answer) for r in own]
        found.append(
            PairedBootstrap(
                condition=name,
                over_participants=bootstrap_over_participants(
                    judgements, name, n_boot=n_boot, seed=seed, confidence=confidence
                ),
                two_way=bootstrap_two_way(
                    [r.participant for r in own],
                    [r.image for r in own],
                    [True] * len(own),
                    [bool(r.fooled) for r in own],
                    n_boot=n_boot,
                    seed=seed,
                    confidence=confidence,
                ),
            )
        )
    return found


def analyse_paired_lines(
    lines: Sequence[str], *, margin: float, alpha: float
) -> tuple[list[Row], PairedResult]:
    """Read and analyse a paired file (its text as lines)."""
    rows = read_rows(lines)
    inference = analyse_rows(rows, paired=True, margin=margin, alpha=alpha)
    return rows, PairedResult(inference, paired_bootstraps(rows, inference.confidence))


def paired_record(result: PairedResult) -> dict[str, Any]:
    """JSON values: the mixed-model analysis (survey.inference, ``sdt`` null) with, per
    condition, ``bootstrap``: the fooling rate's percentile intervals."""
    record = to_jsonable(result.inference)
    boots = {b.condition: b for b in result.bootstraps}
    for c in record["conditions"]:
        b = boots[c["condition"]]
        c["bootstrap"] = {
            "n_boot": b.over_participants.n_boot,
            "seed": b.over_participants.seed,
            "over_participants": _pair(b.over_participants),
            "two_way": _pair(b.two_way),
        }
    return {"protocol": PAIRED, "statistic": STATISTIC, **record}


def _pair(boot: BootstrapResult) -> list[float | None]:
    interval = boot.fooling_rate.interval
    return to_jsonable([interval.low, interval.high])


def _range(pair: Sequence[float | None]) -> str:
    if pair[0] is None or pair[1] is None:
        return "n/a"
    return f"{100 * pair[0]:.1f}–{100 * pair[1]:.1f} %"


def paired_text(result: PairedResult) -> str:
    """format_text of the mixed models, with each condition's bootstrap intervals after
    its pooled rate, under a heading naming the protocol and its statistic."""
    level = f"{100 * result.inference.confidence:g} %"
    boots = {b.condition: b for b in result.bootstraps}
    lines: list[str] = []
    current: PairedBootstrap | None = None
    for line in format_text(result.inference).split("\n"):
        lines.append(line)
        if line.startswith("Condition ") and ":" in line:
            name = line[len("Condition ") :].rsplit(": ", 1)[0]
            current = boots.get(name)
        elif line.startswith("  pooled fooling rate") and current is not None:
            lines.append(
                f"  bootstrap {level} (percentile, {current.over_participants.n_boot} "
                f"replicates, seed {current.over_participants.seed}): over participants "
                f"{_range(_pair(current.over_participants))}; over participants and images "
                f"{_range(_pair(current.two_way))}"
            )
    heading = [
        "Paired real vs fake, 2AFC (Zhang et al. 2016; pix2pix).",
        f"Statistic: {STATISTIC}; no d' (a yes/no d' needs real photographs judged alone).",
    ]
    return "\n".join(heading + lines)
