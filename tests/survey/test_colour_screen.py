"""The colour-vision screen's plates (survey.colour_screen): deterministic, built on
protan/deutan confusion lines, checked with Viénot, Brettel & Mollon's 1999 dichromat
simulation (an independent model: its LMS basis is not the copunctal points the plates
are built from) and CIEDE2000 (skimage.color)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from skimage import color

from survey import colour_screen as cs

SEEDS = [0, 1, 12345, 2**40 + 3]


def _lab(srgb):
    return color.rgb2lab(np.asarray(srgb, dtype=float).reshape(-1, 1, 3)).reshape(-1, 3)


def _figure_background(drawing, seen_by=None):
    """Mean CIELAB of the figure's and of the background's dots (as a dichromat sees
    them when ``seen_by`` names one), and the spread of the background's lightness."""
    colours = drawing.colours
    if seen_by is not None:
        colours = cs.simulate_dichromacy(colours, seen_by)
    lab = _lab(colours)
    return lab[drawing.figure].mean(0), lab[~drawing.figure].mean(0), lab[~drawing.figure, 0].std()


def test_the_module_imports_no_django():
    code = "import sys, survey.colour_screen; print('django' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_screen_is_the_control_then_three_protan_and_three_deutan_plates(seed):
    plates = cs.screen_plates(seed)
    assert [p.position for p in plates] == list(range(1, cs.PLATES + 1))
    assert plates[0].kind == cs.CONTROL
    assert sorted(p.kind for p in plates[1:]) == [cs.DEUTAN] * 3 + [cs.PROTAN] * 3
    assert all(p.digit in cs.DIGITS for p in plates)
    assert all(a.digit != b.digit for a, b in zip(plates, plates[1:], strict=False))


def test_the_same_seed_gives_the_same_plates_and_images_and_another_seed_others():
    assert cs.screen_plates(99) == cs.screen_plates(99)
    plate = cs.screen_plates(99)[1]
    assert cs.plate_png(plate, size=200) == cs.plate_png(plate, size=200)
    assert cs.screen_plates(99) != cs.screen_plates(100)
    digits = {tuple(p.digit for p in cs.screen_plates(s)) for s in range(40)}
    assert len(digits) > 35


@pytest.mark.parametrize("kind", [cs.PROTAN, cs.DEUTAN])
def test_nominal_colours_are_far_apart_for_normal_vision_and_alike_for_the_dichromat(kind):
    figure, background = cs.nominal_colours(kind)
    assert cs.delta_e(figure, background)[0] > 20
    seen_f, seen_b = cs.simulate_dichromacy(figure, kind), cs.simulate_dichromacy(background, kind)
    assert cs.delta_e(seen_f, seen_b)[0] < 1.0


def test_the_control_plate_colours_stay_far_apart_for_every_observer():
    figure, background = cs.nominal_colours(cs.CONTROL)
    assert cs.delta_e(figure, background)[0] > 40
    for kind in (cs.PROTAN, cs.DEUTAN):
        seen = cs.delta_e(
            cs.simulate_dichromacy(figure, kind), cs.simulate_dichromacy(background, kind)
        )
        assert seen[0] > 40, kind


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_drawn_plates_figure_visible_to_normal_vision_hidden_from_the_dichromat(seed):
    for plate in cs.screen_plates(seed):
        drawing = cs.plate_drawing(plate, size=320)
        assert 0.08 < drawing.figure.mean() < 0.4  # the digit has dots of its own
        figure, background, spread = _figure_background(drawing)
        assert color.deltaE_ciede2000(figure, background) > 20
        if plate.is_control:
            for kind in (cs.PROTAN, cs.DEUTAN):
                f, b, _ = _figure_background(drawing, seen_by=kind)
                assert color.deltaE_ciede2000(f, b) > 40
            continue
        # Lightness alone draws no digit: the mean lightness difference between figure
        # and background is smaller than the dot-to-dot spread of lightness.
        assert abs(figure[0] - background[0]) < spread
        f, b, spread_seen = _figure_background(drawing, seen_by=plate.kind)
        assert color.deltaE_ciede2000(f, b) < 1.5
        assert abs(f[0] - b[0]) < 0.25 * spread_seen


def test_dots_do_not_overlap_and_stay_in_the_disc():
    dots = cs.pack_dots(np.random.default_rng(3), 300)
    x, y, r = dots.T
    assert len(dots) > 300
    assert (np.hypot(x - 150, y - 150) + r <= 300 * 0.47 + 1e-9).all()
    d = np.hypot(x[:, None] - x, y[:, None] - y)
    np.fill_diagonal(d, np.inf)
    assert (d >= r[:, None] + r).all()


def test_the_image_is_a_png_of_the_size_asked():
    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(cs.plate_png(cs.screen_plates(5)[0], size=240)))
    assert image.format == "PNG" and image.size == (240, 240)


@pytest.mark.parametrize(
    ("answer", "right"),
    [("5", True), (" 5 ", True), ("05", True), ("٥", True), ("6", False), ("", False)]
    + [("five", False), ("5.0", False), ("-5", False), ("555", False)],
)
def test_answers_are_read_as_numbers(answer, right):
    plate = cs.Plate(position=2, kind=cs.PROTAN, digit=5, seed=1)
    assert cs.answer_correct(plate, answer) is right


def test_the_pass_rule_needs_the_control_and_five_of_six():
    assert cs.screen_passed(control_correct=True, test_correct=6)
    assert cs.screen_passed(control_correct=True, test_correct=5)
    assert not cs.screen_passed(control_correct=True, test_correct=4)
    assert not cs.screen_passed(control_correct=False, test_correct=6)
