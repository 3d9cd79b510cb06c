"""A limit on starting a study from one client address, so that a bot cannot exhaust its
balanced lists: at most ``STUDY_START_LIMIT`` starts per ``STUDY_START_WINDOW_SECONDS`` per
study and address, counted in the shared cache (Redis). If the cache is unreachable the
start is allowed: losing a participant is worse than a window without a limit."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache

from studyplatform.client_address import client_address
from survey.models import Study

logger = logging.getLogger(__name__)


def start_allowed(request, study: Study) -> bool:
    """Count this start; False once the address has used up its starts in the window."""
    key = f"study-start:{study.pk}:{client_address(request)}"
    try:
        cache.add(key, 0, timeout=settings.STUDY_START_WINDOW_SECONDS)
        count = cache.incr(key)
    except Exception:
        logger.warning("start rate limit skipped: the cache is unreachable", exc_info=True)
        return True
    return count <= settings.STUDY_START_LIMIT
