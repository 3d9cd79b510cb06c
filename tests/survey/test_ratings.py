"""survey.ratings and manage.py analyse_ratings: mean opinion scores with t intervals and
ITU-R BT.500 observer screening, against numbers worked out by hand."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from scipy.stats import kurtosis

from survey.ratings import (
    Rating,
    RatingsError,
    analyse_ratings,
    kurtosis_beta2,
    mean_opinion,
    read_ratings,
    screen_observers,
)

T_975_4 = 2.7764451051977987  # Student's t, 0.975 quantile, 4 degrees of freedom (tables)
T_975_14 = 2.1447866879169273  # … 14 degrees of freedom

GOOD = [f"good{i}" for i in range(5)]
BAD = [f"bad{i}" for i in range(5)]


def _panel(extra: dict[str, dict[str, int]] | None = None) -> list[Rating]:
    """Fifteen observers: on the good items five say 3, five 4, five 5; on the bad items
    five 3, five 2, five 1 (each item shown as one presentation). ``extra`` adds observers:
    name -> item -> score."""
    ratings = []
    for k in range(15):
        for item in GOOD:
            ratings.append(Rating(f"o{k:02d}", item, "", 3 + k // 5))
        for item in BAD:
            ratings.append(Rating(f"o{k:02d}", item, "", 3 - k // 5))
    for name, scores in (extra or {}).items():
        ratings += [Rating(name, item, "", score) for item, score in scores.items()]
    return ratings


CONTRARIAN = {**{i: 1 for i in GOOD}, **{i: 5 for i in BAD}}


def test_mean_opinion_score_and_t_interval_by_hand():
    # 1..5: mean 3, S² = (4+1+0+1+4)/4 = 2.5, δ = t(0.975, 4) · √2.5 / √5.
    r = mean_opinion([1, 2, 3, 4, 5])
    assert r["mos"] == 3 and r["n"] == 5
    assert r["sd"] == pytest.approx(math.sqrt(2.5))
    half = T_975_4 * math.sqrt(2.5) / math.sqrt(5)
    assert half == pytest.approx(1.9632, abs=1e-4)
    assert r["ci"] == pytest.approx([3 - half, 3 + half], abs=1e-12)
    assert mean_opinion([4])["ci"] is None
    assert mean_opinion([4, 4, 4])["ci"] == [4, 4]


def test_beta2_by_hand_and_as_scipy_defines_it():
    # 1..5: m2 = 10/5 = 2, m4 = (16+1+0+1+16)/5 = 6.8, β2 = 6.8/4 = 1.7 (not normal).
    assert kurtosis_beta2([1, 2, 3, 4, 5]) == pytest.approx(1.7)
    assert kurtosis_beta2([3, 3, 3]) is None
    rng = np.random.default_rng(5)
    for _ in range(5):
        x = rng.integers(1, 6, 17)
        if x.std() > 0:
            assert kurtosis_beta2(x) == pytest.approx(kurtosis(x, fisher=False, bias=True))


def test_an_observer_who_answers_the_opposite_of_everyone_is_rejected():
    screened = screen_observers(_panel({"contrarian": CONTRARIAN}))
    # A good item: 3,4,5 five times each and the contrarian's 1. Mean 61/16; deviations
    # (×16) −13, 3, 19, −45; Σd² = 4720/256, so S = √(18.4375/15) = 1.10868 and
    # β2 = 16 Σd⁴ / (Σd²)² = 16 · 4895440 / 4720² = 3.5158: normal, bounds ū ± 2 S.
    # The contrarian is 45/16 = 2.8125 > 2 S = 2.2174 below (Q); the others at most
    # 19/16 away. The bad items mirror it (P).
    good = next(p for p in screened["presentations"] if p["item"] == "good0")
    assert good["beta2"] == pytest.approx(16 * 4895440 / 4720**2)
    assert good["normal"] is True and good["bound"] == "2 S"
    assert good["sd"] == pytest.approx(math.sqrt(4720 / 256 / 15))
    by_name = {o["participant"]: o for o in screened["observers"]}
    c = by_name["contrarian"]
    # (P+Q)/(J·K) = 10/10 > 0.05 and |P−Q|/(P+Q) = 0 < 0.3: rejected.
    assert (c["P"], c["Q"], c["presentations"], c["ratio"], c["balance"]) == (5, 5, 10, 1.0, 0.0)
    assert c["rejected"] is True
    assert screened["rejected"] == ["contrarian"]
    assert all(o["P"] == o["Q"] == 0 for n, o in by_name.items() if n != "contrarian")


def test_a_consistently_harsh_observer_is_kept():
    # Far below on every good item (Q = 5) but never above (P = 0): |P−Q|/(P+Q) = 1.
    harsh = {**{i: 1 for i in GOOD}, **{i: 1 for i in BAD}}
    screened = screen_observers(_panel({"harsh": harsh}))
    h = next(o for o in screened["observers"] if o["participant"] == "harsh")
    assert (h["P"], h["Q"], h["balance"], h["rejected"]) == (0, 5, 1.0, False)
    assert screened["rejected"] == []


def test_a_peaked_panel_uses_the_wider_root_20_bound():
    # 4 seven times, 5 seven times, one 1. Mean 64/15; deviations (×15) −4, 11, −49;
    # β2 = 15 Σd⁴ / (Σd²)² = 15 · 5869080 / 3360² = 7.80 > 4: not normal, bounds ū ± √20 S
    # with S = √(3360/225/14) = 1.0328, √20 S = 4.619 > 49/15 = 3.267: not counted
    # (the 2 S rule, 2.066, would have counted it).
    ratings = [Rating(f"o{k}", "x", "", 4 if k < 7 else 5) for k in range(14)]
    ratings.append(Rating("odd", "x", "", 1))
    screened = screen_observers(ratings)
    (p,) = screened["presentations"]
    assert p["beta2"] == pytest.approx(15 * 5869080 / 3360**2)
    assert p["normal"] is False and p["bound"] == "√20 S"
    odd = next(o for o in screened["observers"] if o["participant"] == "odd")
    assert (odd["P"], odd["Q"], odd["rejected"]) == (0, 0, False)


def test_a_normal_panel_is_accepted():
    rng = np.random.default_rng(11)
    quality = rng.uniform(1.5, 4.5, 12)
    ratings = [
        Rating(f"o{k:02d}", f"item{j:02d}", "", int(np.clip(round(q + rng.normal(0, 0.7)), 1, 5)))
        for k in range(20)
        for j, q in enumerate(quality)
    ]
    screened = screen_observers(ratings)
    assert screened["rejected"] == []
    assert len(screened["observers"]) == 20
    # Not vacuous: some observers were beyond 2 S once (1 of 12 > 5 %), all on one side.
    assert any(o["ratio"] > 0.05 and o["balance"] == 1.0 for o in screened["observers"])


def test_unanimous_presentations_count_nobody():
    ratings = [Rating(f"o{k}", f"i{j}", "", 4) for k in range(6) for j in range(5)]
    screened = screen_observers(ratings)
    assert all(o["P"] == o["Q"] == 0 for o in screened["observers"])
    assert all(p["bound"] is None for p in screened["presentations"])


def test_rejected_observers_are_left_out_of_the_scores():
    result = analyse_ratings(_panel({"contrarian": CONTRARIAN}))
    assert result["screening"]["rejected"] == ["contrarian"]
    assert result["n_participants"] == 15 and result["n_participants_before_screening"] == 16
    good = next(r for r in result["items"] if r["item"] == "good0")
    # 3, 4, 5 five times each: MOS 4, S² = 10/14, δ = t(0.975, 14) · S / √15.
    half = T_975_14 * math.sqrt(10 / 14) / math.sqrt(15)
    assert good["mos"] == 4 and good["n"] == 15
    assert good["ci"] == pytest.approx([4 - half, 4 + half], abs=1e-12)
    kept = analyse_ratings(_panel({"contrarian": CONTRARIAN}), screening=False)
    good_all = next(r for r in kept["items"] if r["item"] == "good0")
    assert good_all["mos"] == pytest.approx(61 / 16) and good_all["n"] == 16


def test_items_pool_their_images_and_presentations_keep_them_apart():
    ratings = [
        Rating("a", "run1", "img1", 5),
        Rating("b", "run1", "img1", 4),
        Rating("a", "run1", "img2", 2),
        Rating("b", "run1", "img2", 3),
    ]
    result = analyse_ratings(ratings)
    (item,) = result["items"]
    assert (item["mos"], item["n"], item["n_images"], item["n_participants"]) == (3.5, 4, 2, 2)
    assert [(p["image"], p["mos"]) for p in result["presentations"]] == [
        ("img1", 4.5),
        ("img2", 2.5),
    ]


# ---------------------------------------------------------------------------------------
# Reading and the command
# ---------------------------------------------------------------------------------------


def test_reading_with_and_without_an_image_column():
    assert read_ratings(io.StringIO("Score,participant,item,other\n4,p,x,z\n\n5.0,q,x,\n")) == [
        Rating("p", "x", "", 4),
        Rating("q", "x", "", 5),
    ]
    assert read_ratings(io.StringIO("participant,item,image,score\np,x,i1,1\n")) == [
        Rating("p", "x", "i1", 1)
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the file is empty"),
        ("participant,score\np,3\n", "line 1: the header has no 'item' column"),
        ("participant,item,score\n", "no ratings"),
        ("participant,item,score\np,x,3\np,y,6\n", "line 3: score '6' is not on the five"),
        ("participant,item,score\np,x,good\n", "line 2: score 'good' is not"),
        ("participant,item,score\np,x,3.5\n", "line 2: score '3.5' is not"),
        ("participant,item,score\np,x,3\np,x,4\n", "line 3: participant 'p' rated item 'x'"),
        ("participant,item,score\np,,3\n", "line 2: the item is empty"),
        ("participant,item,image,score\np,x,,3\n", "line 2: the image is empty"),
    ],
)
def test_bad_files_are_named_by_line_or_column(text, message):
    with pytest.raises(RatingsError, match=message):
        read_ratings(io.StringIO(text))


def _write(path: Path, ratings: list[Rating]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["participant", "item", "image", "score"])
        writer.writerows([r.participant, r.item, r.image or "-", r.score] for r in ratings)
    return path


def _call(*args) -> str:
    out = io.StringIO()
    call_command("analyse_ratings", *map(str, args), stdout=out)
    return out.getvalue()


def test_the_command_screens_and_reports(tmp_path):
    path = _write(tmp_path / "ratings.csv", _panel({"contrarian": CONTRARIAN}))
    result = json.loads(_call(path, "--format", "json"))
    assert result["screening"]["rejected"] == ["contrarian"]
    assert {r["item"] for r in result["items"]} == set(GOOD + BAD)
    for r in result["items"]:
        assert set(r) >= {"item", "mos", "ci", "n", "sd"}
    text = _call(path)
    assert "rejected contrarian: P = 5, Q = 5 of 10 presentations" in text
    assert "good0   4.000" in text
    kept = json.loads(_call(path, "--format", "json", "--no-screening"))
    assert kept["n_participants"] == 16 and kept["screening"]["applied"] is False


def test_the_command_exits_with_2_on_bad_input(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("participant,item,score\np,x,0\n")
    with pytest.raises(CommandError, match="line 2: score '0'") as caught:
        _call(bad)
    assert caught.value.returncode == 2
    latin = tmp_path / "latin.csv"
    latin.write_bytes("participant,item,score\nJosé,x,3\n".encode("latin-1"))
    with pytest.raises(CommandError, match="line 2: byte 0xe9 is not UTF-8") as caught:
        _call(latin)
    assert caught.value.returncode == 2
    with pytest.raises(CommandError, match="no such file") as caught:
        _call(tmp_path / "nowhere.csv")
    assert caught.value.returncode == 2
