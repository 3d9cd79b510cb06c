"""Texts of the participants' pages that wrap markup around translated words."""

from __future__ import annotations

from django import template
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.translation import gettext

register = template.Library()


@register.simple_tag
def trial_progress(trial, paired: bool = False) -> str:
    """'Image 4 of 27' ('Pair 4 of 54' in a paired study) in the active language, numbers
    formatted for it, each number in the element the participant's script updates."""
    return format_html(
        gettext("Pair {number} of {total}") if paired else gettext("Image {number} of {total}"),
        number=format_html('<span data-f="number">{}</span>', number_format(trial.position)),
        total=format_html('<span data-f="total">{}</span>', number_format(trial.total)),
    )
