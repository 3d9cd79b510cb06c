"""The study protocols: what a trial shows and asks, where the design comes from, the
preset that reproduces it, and the statistic its analysis reports.

**Single image, real or AI** (``single``, the platform's first): one image at a time,
"Real photograph, or colourised by AI?"; HYPE∞-like when exposure is unlimited. Statistic:
the fooling rate (wrong answers / all answers) with the 2×2 table, d′ and the mixed models.

**Paired real vs fake, 2AFC** (``paired``), as Zhang, Isola & Efros (2016, "Colorful Image
Colorization", §3.1 "colorization Turing test") and Isola et al. (2017, pix2pix, §4.2 "AMT
perceptual studies") ran it: the real photograph and a colourisation of the *same*
photograph side by side, left and right at random (balanced per participant: half of a
participant's pairs have the fake on the left), "Which one is the real photograph?". The
preset: each pair shown 1 s then hidden (unlimited time to answer), 10 practice pairs with
feedback, 40 test pairs, one model per participant (between subjects), and vigilance pairs
(10 % of the test pairs: 4) in which the fake is the photograph with random colours: its
hue turned by a random angle between 90° and 270° (HSV, saturation and value kept:
:func:`survey.services.stimuli.vigilance_image`), so that skies go orange or purple and
skin green; choosing it as the real photograph fails the vigilance pair, and the study's
exclusion rule excludes the participant as for a failed attention check. Instructed-response
checks (``instructed_checks``, for Prolific's rejection policy) are pairs of reserved
scenes with "For this pair, please answer Left" (or Right, at random) in place of the
question. (pix2pix asked
"which is fake"; the brief's and Zhang's wording asks for the real one: the same choice.)

*Statistic*: the fooling rate, P(chose the fake as the real photograph), per condition;
0.5 means the participants could not tell. A pair is stored as the judgement of its fake
(``Trial.stimulus``) with ``answer`` "real" when the fake was chosen (fooled), "ai" when
the photograph was, and ``chosen_side``; every count, bootstrap (over participants; over
participants and images) and the mixed model ``fooled ~ 1 + (1|participant) + (1|image)``
then apply unchanged to rows of truth "ai" (:func:`survey.inference.analyse_rows` with
``paired=True``, which fits no signal-detection model: a yes/no d′ needs real photographs
judged on their own).

**Model vs model preference, 2AFC** (``preference``): two runs' colourisations of the
same photograph side by side, "Which looks more natural?"; pairs balanced across the
pairs of runs; Bradley–Terry scores per run. Its rules, pairs and analysis:
:mod:`survey.preference_protocol`.
**Rating, ACR** (``rating``), ITU-T P.910's absolute category rating: one image at a time,
rated on the five-point scale (5 excellent, 4 good, 3 fair, 2 poor, 1 bad), keys 1–5. The
images are the single protocol's: half the runs' colourisations and half the real
photographs, which serve as the hidden reference (P.910's ACR-HR: the reference is rated
like any other image, unannounced), so the photographs' MOS is the ceiling a colourisation
can reach. *Statistic*: the mean opinion score per run and of the photographs, with t
intervals, after the screening of observers that ITU-R BT.500 describes
(:mod:`survey.ratings`, :mod:`survey.rating_protocol`).
**HYPE_time** (``hype_time``), as Zhou et al. (NeurIPS 2019, §3.1) describe it: one image
at a time, "Real or AI?", its exposure set by a 3-up/1-down staircase on the ladder 100,
200, …, 1000 ms, each image followed by four backward noise masks. *Statistic*: the
exposure threshold per participant (mean exposure at the last six reversals) and per
condition (mean over participants, bootstrap over participants). survey.hype describes
the staircase and the details HYPE leaves open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from survey.models import Study

SINGLE, PAIRED = Study.Protocol.SINGLE, Study.Protocol.PAIRED
PREFERENCE = Study.Protocol.PREFERENCE
RATING = Study.Protocol.RATING
HYPE_TIME = Study.Protocol.HYPE_TIME


#: The protocols whose images are half real photographs and half AI images.
HALF_REAL = frozenset({SINGLE, RATING, HYPE_TIME})


def images_per_participant_problem(protocol: str, n: int) -> str | None:
    """Why ``n`` images per participant cannot be used with ``protocol``, or None. Half
    real and half AI needs an even number; a paired or preference study counts pairs (a
    paired study's odd one out takes its side at random), so any number from 2 will do."""
    if n < 2:
        return "Must be at least 2."
    if protocol in HALF_REAL and n % 2:
        return "Must be an even number (half real, half AI) for this protocol."
    return None


@dataclass(frozen=True)
class ProtocolInfo:
    name: str
    title: str
    source: str
    statistic: str
    #: The study form's values that reproduce the published design.
    preset: dict = field(default_factory=dict)

    @property
    def form_values(self) -> dict:
        """The study form's fields that choosing this protocol's preset sets."""
        return {"protocol": self.name, **self.preset}


PROTOCOLS = {
    SINGLE: ProtocolInfo(
        name=SINGLE,
        title="Single image, real or AI",
        source="one image at a time, as the paper's study (HYPE∞-like without an exposure "
        "limit: Zhou et al., NeurIPS 2019)",
        statistic="fooling rate: wrong answers / all answers (0.5: chance), with the 2×2 "
        "table, d′ and the mixed models",
    ),
    PAIRED: ProtocolInfo(
        name=PAIRED,
        title="Paired real vs fake, 2AFC",
        source="Zhang, Isola & Efros 2016 (colorization Turing test) and Isola et al. 2017 "
        "(pix2pix AMT perceptual study): the photograph and its colourisation side by side",
        statistic="fooling rate: P(chose the fake as the real photograph) (0.5: the fake "
        "cannot be told from the photograph), with bootstrap and mixed-model intervals",
        preset={
            "design": Study.Design.BETWEEN,
            "images_per_participant": 40,
            "practice_trials": 10,
            "attention_checks": 4,
            "exposure_ms": 1000,
        },
    ),
    PREFERENCE: ProtocolInfo(
        name=PREFERENCE,
        title="Model vs model preference, 2AFC",
        source="pairwise comparison as in image-quality studies (ITU-T P.910 pair "
        "comparison; Mantiuk et al. 2012), scored by Bradley & Terry 1952: two runs' "
        "colourisations of one photograph side by side, “Which looks more natural?”",
        statistic="Bradley–Terry score per run: maximum-likelihood log-strength centred to "
        "mean 0 (a difference d: the first run preferred with probability 1/(1+exp(−d))), "
        "with Wald intervals; wins / comparisons per pair of runs",
        preset={
            "design": Study.Design.WITHIN,
            "images_per_participant": 30,
            "practice_trials": 0,
            "attention_checks": 0,
            "exposure_ms": None,
        },
    ),
    RATING: ProtocolInfo(
        name=RATING,
        title="Rating, ACR",
        source="ITU-T P.910 absolute category rating with a hidden reference (the real "
        "photographs rated among the colourisations); observer screening of ITU-R BT.500",
        statistic="mean opinion score (MOS, 1 bad … 5 excellent) per run and of the real "
        "photographs, with t intervals, after BT.500 observer screening",
        preset={
            "design": Study.Design.WITHIN,
            "images_per_participant": 24,
            "practice_trials": 4,
            "attention_checks": 0,
            "exposure_ms": None,
        },
    ),
    HYPE_TIME: ProtocolInfo(
        name=HYPE_TIME,
        title="HYPE_time, exposure staircase",
        source="Zhou et al. 2019 (HYPE, NeurIPS, HYPE_time): one image at a time, its "
        "exposure set by a 3-up/1-down staircase between 100 and 1000 ms, then backward "
        "masks",
        statistic="exposure threshold (ms): per participant the mean exposure at the last "
        "6 reversals of the staircase; per condition the mean over participants with a "
        "bootstrap interval over participants (longer: the model's images are harder to "
        "tell from photographs)",
        preset={
            "design": Study.Design.BETWEEN,
            "images_per_participant": 100,
            "practice_trials": 4,
            "attention_checks": 2,
            "exposure_ms": None,
        },
    ),
}


def protocol_info(study_or_name) -> ProtocolInfo:
    name = getattr(study_or_name, "protocol", study_or_name)
    return PROTOCOLS[name]


def analysis_plan(study: Study) -> str:
    """The study page's analysis plan in a line: the equivalence test of the fooling rate
    where the protocol has one (single image, paired), else the protocol's own statistic."""
    if study.protocol in (SINGLE, PAIRED):
        return f"equivalence to chance within 0.5 ± {study.equivalence_margin}, α = {study.alpha}"
    return f"{PROTOCOLS[study.protocol].statistic}; intervals at 1 − α, α = {study.alpha}"
