"""studyplatform.figures: the house style's outputs. Every kind of figure renders to an SVG
that parses as XML and a PDF, the same spec gives the same bytes, and the inline SVG is fit
for a page (ids of its own, an accessible name, no fixed size, no <style>)."""

from __future__ import annotations

import re

import matplotlib
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from studyplatform.figures import (
    STYLE,
    EmptyFigure,
    draw,
    figure_html,
    inline_svg,
    render,
    svg_file,
)
from survey.analysis.figures import HistogramFigure, ImageRatesFigure, MetricFigure, RatesFigure
from tests.figure_helpers import parse_svg, svg_ids, svg_texts
from worker.figures import TRAIN, VAL, CurveFigure, Line, Mark

RATES = RatesFigure(
    "Rates per condition",
    ("warm", "cool & co_1, a label long enough to wrap"),
    ("fooling rate", "P(judged Real | AI)"),
    (((0.45, 0.40, 0.50), (0.50, 0.42, 0.58)), ((0.30, 0.25, 0.36), None)),
    "rate (95 % Wilson interval)",
)
METRIC = MetricFigure(
    "Fooling rate against L1 distance",
    "L1 distance of the run (test split)",
    (("warm", 0.083, (0.45, 0.40, 0.50)), ("cool & co_1", 0.12, (0.30, 0.25, 0.36))),
)
ACCURACY = HistogramFigure(
    "Participants' accuracy",
    "accuracy (share of right answers)",
    tuple(i / 10 for i in range(11)),
    (("participants", (0, 0, 1, 3, 5, 8, 3, 2, 1, 0)),),
    marker=(0.5, "chance"),
)
TIMES = HistogramFigure(
    "Participants' response times",
    "geometric mean response time (s)",
    tuple(range(0, 5001, 250)),
    (("real photographs", tuple(range(20))), ("AI images", tuple(range(20, 0, -1)))),
    unit="seconds",
)
CURVES = CurveFigure(
    "generator: L1 loss",
    "L1 loss (λ·mean |Δ|)",
    (
        Line("train L1", tuple((e, 10 / e) for e in range(1, 31)), TRAIN),
        Line("val L1", tuple((e, 5 + (e - 12) ** 2 / 50) for e in range(1, 31)), VAL, True),
    ),
    (Mark(12, "best"), Mark(30, "stopped")),
)
ONE_EPOCH = CurveFigure("generator: L1 loss", "L1 loss", (Line("train L1", ((1, 3.0),), TRAIN),))

SIX = tuple(f"condition {i} with a rather long name" for i in range(6))
MANY_RATES = RatesFigure(
    "Rates per condition",
    SIX,
    ("fooling rate", "P(judged Real | AI)"),
    tuple(((0.4, 0.3, 0.5), (0.45, 0.35, 0.55)) for _ in SIX),
    "rate (95 % Wilson interval)",
)
MANY_POINTS = MetricFigure(
    "Fooling rate against SSIM",
    "SSIM of the run (test split)",
    tuple((label, 0.8 + i / 50, (0.4, 0.3, 0.5)) for i, label in enumerate(SIX)),
)

FIGURES = {
    "rates": (RATES, {"rate (95 % Wilson interval)", "warm", "chance", "fooling rate"}),
    "metric": (METRIC, {"L1 distance of the run (test split)", "fooling rate", "cool & co_1"}),
    "accuracy": (ACCURACY, {"accuracy (share of right answers)", "participants", "chance"}),
    "times": (TIMES, {"geometric mean response time (s)", "real photographs", "AI images"}),
    "curves": (CURVES, {"epoch", "L1 loss (λ·mean |Δ|)", "best epoch (12)", "stopped epoch (30)"}),
    "one epoch": (ONE_EPOCH, {"epoch", "L1 loss", "train L1"}),
    "six conditions": (MANY_RATES, {"rate (95 % Wilson interval)"}),
    "six points": (MANY_POINTS, {"SSIM of the run (test split)"}),
    "empty": (EmptyFigure("Rates", "No judgements yet."), {"No judgements yet."}),
    "per image": (
        ImageRatesFigure(
            "Per-image fooling rate",
            (("AI images", ((1.0, 0.34, 1.0), (0.5, 0.2, 0.8))), ("real photographs", ())),
            "fooling rate (95 % Wilson interval, a long label)",
        ),
        {"images, ranked by fooling rate", "AI images"},
    ),
}


def _drawn_texts(fig) -> list[Text]:
    """The texts a figure shows: axis labels, tick labels inside the axis's range, legend
    entries and the figure's own texts (matplotlib keeps tick labels it does not draw)."""
    texts = list(fig.texts) + [t for legend in fig.legends for t in legend.get_texts()]
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            texts.append(axis.label)
            low, high = sorted(axis.get_view_interval())
            texts += [t.label1 for t in axis.get_major_ticks() if low <= t.get_loc() <= high]
    return [t for t in texts if t.get_visible() and t.get_text()]


@pytest.mark.parametrize("spec", [spec for spec, _ in FIGURES.values()], ids=FIGURES.keys())
def test_no_text_runs_off_the_figure(spec):
    """Labels are not cut (every text shown lies inside what the file keeps) and do not
    overlap one another."""
    with matplotlib.rc_context(STYLE):
        fig = draw(spec)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        # What savefig keeps (bbox "tight"), in pixels.
        edge = fig.get_tightbbox(canvas.get_renderer()).transformed(fig.dpi_scale_trans)
        texts = _drawn_texts(fig)
        assert texts
        for text in texts:
            box = text.get_window_extent()
            assert box.x0 >= edge.x0 - 1 and box.x1 <= edge.x1 + 1, text.get_text()
            assert box.y0 >= edge.y0 - 1 and box.y1 <= edge.y1 + 1, text.get_text()
        boxes = [(t.get_text(), t.get_window_extent()) for t in texts]
        for i, (one, a) in enumerate(boxes):
            for other, b in boxes[i + 1 :]:
                assert not a.overlaps(b), (one, other)


@pytest.mark.parametrize(("spec", "texts"), FIGURES.values(), ids=FIGURES.keys())
def test_each_figure_renders_its_labels_to_svg_and_pdf_the_same_every_time(spec, texts):
    svg = render(spec, "svg")
    root = parse_svg(svg.decode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}title").text == spec.title
    assert texts <= svg_texts(svg.decode())
    assert b"<dc:date>" not in svg  # no date: reproducible
    pdf = render(spec, "pdf")
    assert pdf.startswith(b"%PDF-")
    assert render(spec, "svg") == svg and render(spec, "pdf") == pdf


def test_the_pdf_embeds_its_font_as_truetype():
    pdf = render(CURVES, "pdf")  # pdf.fonttype 42: TrueType outlines in a CID font
    assert b"/FontFile2" in pdf and b"/CIDFontType2" in pdf and b"DejaVuSans" in pdf


def test_a_long_condition_label_is_wrapped_not_cut():
    texts = svg_texts(render(RATES, "svg").decode())
    assert "cool & co_1, a label long enough to wrap" not in texts  # not on one line
    assert {"cool & co_1, a", "label long enough", "to wrap"} <= texts


def test_the_inline_svg_has_its_own_ids_a_name_and_no_fixed_size():
    page = "".join(str(inline_svg(spec, f"figure-{i}")) for i, spec in enumerate((RATES, CURVES)))
    ids = svg_ids(page)
    assert len(ids) == len(set(ids))  # no id twice on the page
    assert all(re.match(r"figure-[01]-", i) for i in ids)
    refs = re.findall(r'(?:href="#|url\(#)([^")]+)', page)
    assert refs and set(refs) <= set(ids)  # every reference finds its own figure's element
    for svg in re.findall(r"<svg\b.*?</svg>", page, flags=re.S):
        root = parse_svg(svg)
        assert root.get("role") == "img" and root.get("aria-label")
        assert root.get("width") == "100%" and root.get("height") is None
        assert root.get("viewBox")
        assert "<style" not in svg and "<?xml" not in svg and "<metadata" not in svg


def test_the_same_data_is_drawn_once():
    svg_file.cache_clear()
    first = svg_file(RATES)
    again = RatesFigure(**{f: getattr(RATES, f) for f in RATES.__dataclass_fields__})
    assert svg_file(again) is first and svg_file.cache_info().hits == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: render(RATES, "png"), "an SVG or a PDF"),
        (lambda: inline_svg(RATES, "1 bad key"), "letters, digits and hyphens"),
    ],
    ids=["another format", "a key that is no id"],
)
def test_bad_requests_are_refused_in_words(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_an_empty_figure_says_why_in_words_on_the_page():
    html = str(figure_html(None, "figure-x", title="Rates", empty="No judgements yet."))
    assert "No judgements yet." in html and "<svg" not in html and "Download" not in html
