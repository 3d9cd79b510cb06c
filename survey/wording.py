"""The language a study speaks to its participants, and the words of its question.

Every fixed text of the participants' pages goes through Django's translations; a study's
language (``Study.language``, one of ``settings.LANGUAGES``) is made active for its pages by
:func:`speak`, never taken from the browser. The researcher may replace the question, the
two answers' labels and their keys; what is left blank is the language's default (the
catalogues under ``locale/`` choose the keys: R/A in English, E/K in German (Echt/KI), R/I
in French (Réelle/IA) and Spanish (Real/IA)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.utils import translation
from django.utils.translation import gettext, pgettext

from survey.models import Study


@dataclass(frozen=True)
class Wording:
    """What the trial page asks and how it is answered, in the study's language."""

    question: str
    real_label: str
    ai_label: str
    #: One character each, upper case for display; the script compares case-insensitively.
    real_key: str
    ai_key: str


def key_display(key: str) -> str:
    """A key as shown: upper case, unless that is not one character (ß → SS)."""
    upper = key.upper()
    return upper if len(upper) == len(key) else key


def default_wording(language: str) -> Wording:
    """The language's own question, labels and keys."""
    with translation.override(language):
        return Wording(
            question=gettext("Real photograph, or colourised by AI?"),
            real_label=gettext("Real"),
            ai_label=gettext("AI"),
            real_key=pgettext("keyboard key that answers Real", "R"),
            ai_key=pgettext("keyboard key that answers AI", "A"),
        )


def wording_for(
    *,
    language: str,
    question_text: str = "",
    real_label: str = "",
    ai_label: str = "",
    real_key: str = "",
    ai_key: str = "",
) -> Wording:
    """The researcher's words where given, else the language's."""
    default = default_wording(language)
    return Wording(
        question=question_text.strip() or default.question,
        real_label=real_label.strip() or default.real_label,
        ai_label=ai_label.strip() or default.ai_label,
        real_key=key_display(real_key.strip() or default.real_key),
        ai_key=key_display(ai_key.strip() or default.ai_key),
    )


def study_wording(study: Study) -> Wording:
    return wording_for(
        language=study.language,
        question_text=study.question_text,
        real_label=study.real_label,
        ai_label=study.ai_label,
        real_key=study.real_key,
        ai_key=study.ai_key,
    )


@dataclass(frozen=True)
class PairWording:
    """What a paired study's trial page asks (survey.protocols) and its two answers. The
    keys are places on the keyboard, not letters of a word: F and J (the home row's
    index-finger keys, the same place on QWERTY, QWERTZ and AZERTY) and the arrows."""

    question: str
    left_label: str
    right_label: str
    left_key: str = "F"
    right_key: str = "J"


def pair_wording(study: Study) -> PairWording:
    """The researcher's question where given, else the language's (a preference study's:
    "Which looks more natural?"); in the active language (the participant views make the
    study's active)."""
    with translation.override(study.language):
        default = (
            gettext("Which looks more natural?")
            if study.preference
            else gettext("Which one is the real photograph?")
        )
        return PairWording(
            question=study.question_text.strip() or default,
            left_label=pgettext("side of the screen", "Left"),
            right_label=pgettext("side of the screen", "Right"),
        )


def speak(request, study: Study) -> None:
    """Make the study's language the active one for the rest of this request (the view
    must be wrapped by :func:`in_study_language`, which restores the previous one). The
    error page of a failure later in the request reads ``request.study_language``."""
    translation.activate(study.language)
    request.LANGUAGE_CODE = study.language
    request.study_language = study.language


def in_study_language(view: Callable) -> Callable:
    """A view that calls :func:`speak` gives the language back when it returns or fails:
    a thread serving the next request starts from the site's language again."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        with translation.override(translation.get_language()):
            return view(request, *args, **kwargs)

    return wrapped
