"""Pseudo-isochromatic plates for a colour-vision *screen* (pure: NumPy, Pillow and
scikit-image, no Django).

A plate is a disc of dots of random sizes; the dots whose centre falls inside a digit are
the figure. Figure and background colours lie on one **confusion line** of a protan or a
deutan observer: colours that differ only in the excitation of the cone class such an
observer lacks, so that they look alike to them while a normal trichromat sees two hues
(the principle of Ishihara's and of the HRR plates). A **control** plate, whose figure
differs from its background in lightness and along the blue–yellow axis, is read by every
observer with enough acuity and attention.

**Confusion lines.** In CIE 1931 chromaticity every protan (deutan) confusion line passes
through the protan (deutan) *copunctal point*, the chromaticity of the missing cone's own
primary. We use Smith & Pokorny's values (Smith & Pokorny 1975, Vision Res. 15:161–171;
as tabulated by Pokorny, Smith & Verriest 1979, *Congenital and acquired color vision
defects*, and used by Brettel, Viénot & Mollon 1997, JOSA A 14:2647):

* protan: (x, y) = (0.7465, 0.2535)
* deutan: (x, y) = (1.4000, −0.4000)

A colour on the confusion line through a background colour B is ``F = B + a·P`` in XYZ,
where ``P = (x_p, y_p, 1 − x_p − y_p)`` is the copunctal point as an XYZ direction: adding
it changes only the missing cone's excitation, so the dichromat's two remaining cone
signals, hence hue *and* brightness for them, stay as they were. A plate's figure and
background sit symmetrically about a beige centre colour, ``C ± (a/2 + e)·P``, each dot with
its own small shift ``e`` along the same line (shades the dichromat cannot tell apart).

**Luminance jitter.** Every dot's linear RGB is then multiplied by a factor drawn
uniformly from [:data:`JITTER_LOW`, :data:`JITTER_HIGH`], the same distribution for figure
and background: to the dichromat both are the same set of colours, and to everyone the
dot-to-dot lightness variation is larger than the mean lightness difference between
figure and background, so lightness alone does not draw the digit.

**Checking** (tests/survey/test_colour_screen.py): :func:`simulate_dichromacy` is the
dichromat simulation of Viénot, Brettel & Mollon 1999 (Color Res. Appl. 24:243–252): linear
sRGB to LMS with their matrix, the missing cone's signal replaced by the combination of
the other two that keeps their reference colours, and back. Its LMS basis is close to
Smith & Pokorny's (its own copunctal points, (0.751, 0.250) and (1.429, −0.429), differ from
the ones above by less than the spread between published estimates), which is why the
simulated figure and background come out *nearly*, not exactly, equal.

This is a screen, not a diagnosis: uncalibrated displays shift every colour, and the
plates are generated, not a validated clinical test. :func:`screen_passed` is the rule.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage import color

CONTROL, PROTAN, DEUTAN = "control", "protan", "deutan"
#: Copunctal points (CIE 1931 x, y), Smith & Pokorny 1975.
COPUNCTAL = {PROTAN: (0.7465, 0.2535), DEUTAN: (1.4000, -0.4000)}
#: The plates of one screen: the control first (it shows what a plate is), then three
#: protan and three deutan plates in a random order.
TEST_PLATES = 6
PLATES = TEST_PLATES + 1
#: Digits used (1 and 0 are left out: too thin, and too like the disc's outline).
DIGITS = (2, 3, 4, 5, 6, 7, 8, 9)
#: A screen is passed when the control plate is read right and at most one test plate is
#: missed (a slip is allowed; a red-green deficient observer misses most of them).
PASS_MIN_TEST_CORRECT = 5
JITTER_LOW, JITTER_HIGH = 0.5, 1.0
#: Linear-RGB centre colour of the test plates (a beige), and the step along the
#: confusion line between figure and background (in XYZ, per unit of the direction P).
CENTRE_SRGB = (0.60, 0.52, 0.36)
STEP = {PROTAN: 0.15, DEUTAN: 0.06}
#: The control plate: a dark slate-blue figure on a light sand background.
CONTROL_FIGURE_SRGB = (0.26, 0.33, 0.52)
CONTROL_BACKGROUND_SRGB = (0.86, 0.78, 0.52)

#: Viénot, Brettel & Mollon 1999: linear RGB -> LMS, and the dichromats' replacement of
#: the missing cone signal.
_RGB_TO_LMS = np.array(
    [
        [17.8824, 43.5161, 4.11935],
        [3.45565, 27.1554, 3.86714],
        [0.0299566, 0.184309, 1.46709],
    ]
)
_LMS_TO_RGB = np.linalg.inv(_RGB_TO_LMS)
_DICHROMAT = {
    PROTAN: np.array([[0.0, 2.02344, -2.52581], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    DEUTAN: np.array([[1.0, 0.0, 0.0], [0.494207, 0.0, 1.24827], [0.0, 0.0, 1.0]]),
}
_XYZ_TO_LINEAR_RGB = np.linalg.inv(
    np.array(
        [
            [0.412453, 0.357580, 0.180423],
            [0.212671, 0.715160, 0.072169],
            [0.019334, 0.119193, 0.950227],
        ]
    )
)


@dataclass(frozen=True)
class Plate:
    """One plate of a participant's screen: what it shows and the seed of its dots."""

    position: int  # 1-based
    kind: str  # CONTROL, PROTAN or DEUTAN
    digit: int
    seed: int

    @property
    def is_control(self) -> bool:
        return self.kind == CONTROL


def screen_plates(seed: int) -> list[Plate]:
    """The :data:`PLATES` plates of the screen drawn from ``seed`` (the same seed, the same
    plates): the control first, then the test plates in a random order, digits at random
    with no digit twice in a row."""
    rng = np.random.default_rng([seed, 7919])
    kinds = [PROTAN] * (TEST_PLATES // 2) + [DEUTAN] * (TEST_PLATES - TEST_PLATES // 2)
    kinds = [CONTROL] + [kinds[i] for i in rng.permutation(len(kinds))]
    plates, last = [], None
    for position, kind in enumerate(kinds, start=1):
        digit = int(rng.choice([d for d in DIGITS if d != last]))
        last = digit
        plates.append(Plate(position, kind, digit, int(rng.integers(2**62))))
    return plates


def screen_passed(*, control_correct: bool, test_correct: int) -> bool:
    return control_correct and test_correct >= PASS_MIN_TEST_CORRECT


def answer_correct(plate: Plate, answer: str) -> bool:
    """Whether ``answer`` (the participant's text, "" for "I can't see a number") names the
    plate's digit; surrounding spaces and Unicode digits of any script are accepted."""
    text = answer.strip()
    return text.isdigit() and len(text) <= 2 and int(text) == plate.digit


# --- colours ---------------------------------------------------------------------------


def _srgb_to_linear(rgb) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=float)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(lin) -> np.ndarray:
    lin = np.clip(np.asarray(lin, dtype=float), 0.0, 1.0)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)


def _copunctal_direction(kind: str) -> np.ndarray:
    x, y = COPUNCTAL[kind]
    return np.array([x, y, 1.0 - x - y])


def confusion_colours(kind: str, offsets) -> np.ndarray:
    """Linear sRGB of the colours ``C + offset·P`` on the ``kind`` confusion line through
    the centre colour (``offsets`` in units of :data:`STEP`; +0.5 is the nominal figure,
    −0.5 the nominal background)."""
    centre = color.rgb2xyz(np.array([[CENTRE_SRGB]]))[0, 0]
    offsets = np.asarray(offsets, dtype=float)[..., None]
    xyz = centre + offsets * STEP[kind] * _copunctal_direction(kind)
    return xyz @ _XYZ_TO_LINEAR_RGB.T


def nominal_colours(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(figure, background) of a plate kind as sRGB in [0, 1], before any jitter."""
    if kind == CONTROL:
        return np.array(CONTROL_FIGURE_SRGB), np.array(CONTROL_BACKGROUND_SRGB)
    figure, background = confusion_colours(kind, [0.5, -0.5])
    return _linear_to_srgb(figure), _linear_to_srgb(background)


def simulate_dichromacy(srgb, kind: str) -> np.ndarray:
    """sRGB (… × 3, in [0, 1]) as a protanope or deuteranope sees it (Viénot, Brettel &
    Mollon 1999)."""
    lin = _srgb_to_linear(srgb)
    lms = lin @ _RGB_TO_LMS.T
    seen = lms @ _DICHROMAT[kind].T
    return _linear_to_srgb(seen @ _LMS_TO_RGB.T)


def delta_e(srgb_a, srgb_b) -> np.ndarray:
    """CIEDE2000 colour difference between sRGB colours (skimage.color)."""
    lab_a = color.rgb2lab(np.asarray(srgb_a, dtype=float).reshape(-1, 1, 3))
    lab_b = color.rgb2lab(np.asarray(srgb_b, dtype=float).reshape(-1, 1, 3))
    return color.deltaE_ciede2000(lab_a, lab_b).reshape(-1)


# --- drawing ---------------------------------------------------------------------------


def digit_mask(digit: int, size: int) -> np.ndarray:
    """A boolean ``size``×``size`` mask of a bold digit centred on the plate."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    font = ImageFont.load_default(size=int(size * 0.74))
    stroke = max(1, int(size * 0.012))
    draw.text(
        (size / 2, size / 2),
        str(digit),
        fill=255,
        font=font,
        anchor="mm",
        stroke_width=stroke,
        stroke_fill=255,
    )
    return np.asarray(mask) > 127


def pack_dots(rng: np.random.Generator, size: int) -> np.ndarray:
    """Non-overlapping dots (x, y, r) in the plate's disc, largest first: random
    positions tried in batches, a candidate kept when clear of every dot kept before it."""
    centre, radius = size / 2, size * 0.47
    r_max = size * 0.021
    gap = size * 0.0025
    xs, ys, rs = np.empty(0), np.empty(0), np.empty(0)
    for r_tier, batches in ((r_max, 24), (r_max * 0.78, 24), (r_max * 0.58, 28), (r_max * 0.4, 32)):
        for _ in range(batches):
            n = 150
            dist = (radius - r_tier) * np.sqrt(rng.uniform(0, 1, n))
            angle = rng.uniform(0, 2 * np.pi, n)
            cx, cy = centre + dist * np.cos(angle), centre + dist * np.sin(angle)
            cr = r_tier * rng.uniform(0.85, 1.0, n)
            if len(xs):
                d2 = (cx[:, None] - xs) ** 2 + (cy[:, None] - ys) ** 2
                clear = (d2 >= (cr[:, None] + rs + gap) ** 2).all(axis=1)
                cx, cy, cr = cx[clear], cy[clear], cr[clear]
            # Among the batch's survivors, keep those that overlap no other one.
            d2 = (cx[:, None] - cx) ** 2 + (cy[:, None] - cy) ** 2
            overlap = d2 < (cr[:, None] + cr + gap) ** 2
            np.fill_diagonal(overlap, False)
            keep = ~overlap.any(axis=1)
            xs, ys, rs = np.r_[xs, cx[keep]], np.r_[ys, cy[keep]], np.r_[rs, cr[keep]]
    return np.column_stack([xs, ys, rs])


@dataclass
class PlateDrawing:
    """A plate's dots and their colours (sRGB in [0, 1]); ``figure`` marks the digit's."""

    size: int
    dots: np.ndarray
    figure: np.ndarray
    colours: np.ndarray


def plate_drawing(plate: Plate, size: int = 480) -> PlateDrawing:
    rng = np.random.default_rng([plate.seed, plate.digit])
    dots = pack_dots(rng, size)
    mask = digit_mask(plate.digit, size)
    ix = np.clip(dots[:, 0].astype(int), 0, size - 1)
    iy = np.clip(dots[:, 1].astype(int), 0, size - 1)
    figure = mask[iy, ix]
    n = len(dots)
    if plate.is_control:
        base = np.where(
            figure[:, None],
            _srgb_to_linear(CONTROL_FIGURE_SRGB),
            _srgb_to_linear(CONTROL_BACKGROUND_SRGB),
        )
    else:
        shade = rng.uniform(-0.12, 0.12, n)
        base = confusion_colours(plate.kind, np.where(figure, 0.5 + shade, -0.5 - shade))
    jitter = rng.uniform(JITTER_LOW, JITTER_HIGH, n)[:, None]
    return PlateDrawing(size, dots, figure, _linear_to_srgb(base * jitter))


def plate_image(plate: Plate, size: int = 480) -> Image.Image:
    """The plate drawn at twice its size and reduced (smooth edges), on white."""
    drawing = plate_drawing(plate, size)
    scale = 2
    image = Image.new("RGB", (size * scale, size * scale), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    rgb = np.round(drawing.colours * 255).astype(int)
    for (x, y, r), (cr, cg, cb) in zip(drawing.dots, rgb, strict=True):
        box = [(x - r) * scale, (y - r) * scale, (x + r) * scale, (y + r) * scale]
        draw.ellipse(box, fill=(int(cr), int(cg), int(cb)))
    return image.resize((size, size), Image.Resampling.LANCZOS)


def plate_png(plate: Plate, size: int = 480) -> bytes:
    buffer = io.BytesIO()
    plate_image(plate, size).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()
