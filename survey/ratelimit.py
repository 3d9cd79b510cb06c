"""A limit on starting a study from one client address, so that a bot cannot exhaust its
balanced lists: at most ``STUDY_START_LIMIT`` starts per ``STUDY_START_WINDOW_SECONDS`` per
study and address (an IPv6 address's /64: :func:`address_key`), counted in the shared
cache (Redis). If the cache is unreachable the start is allowed: losing a participant is
worse than a window without a limit."""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from studyplatform.client_address import client_address
from survey.models import Study

logger = logging.getLogger(__name__)


def address_key(address: str) -> str:
    """What the limit counts per: an IPv4 address, or an IPv6 address's /64 network (one
    machine's or home's: its provider gives it a whole /64, so counting single addresses
    would let it start from 2⁶⁴ of them)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is 192.0.2.1
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def start_allowed(request, study: Study) -> bool:
    """Count this start; False once the address has used up its starts in the window."""
    key = f"study-start:{study.pk}:{address_key(client_address(request))}"
    try:
        count = _count(key, settings.STUDY_START_WINDOW_SECONDS)
    except Exception:
        logger.warning("start rate limit skipped: the cache is unreachable", exc_info=True)
        return True
    return count <= settings.STUDY_START_LIMIT


def _count(key: str, window: int) -> int:
    """Start the key's window unless started, count one: on Redis one round trip on one
    client (``cache.add`` then ``cache.incr`` make a client and a round trip each), the
    same key and value as theirs."""
    backend = caches["default"]  # ``cache`` is a proxy: it is no RedisCache
    if not isinstance(backend, RedisCache):
        cache.add(key, 0, timeout=window)
        return cache.incr(key)
    key = backend.make_and_validate_key(key)
    pipe = backend._cache.get_client(key, write=True).pipeline()
    pipe.set(key, 0, ex=window, nx=True)
    pipe.incr(key)
    return pipe.execute()[1]
