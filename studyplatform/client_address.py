"""The address a request came from, for rate limits and login throttling.

Behind ``TRUSTED_PROXIES`` reverse proxies (``USE_X_FORWARDED_FOR`` on), each proxy appends
the address it received the request from to ``X-Forwarded-For``, so the client's address is
the entry the outermost trusted proxy added: the ``TRUSTED_PROXIES``-th from the right.
Entries left of it were written by the client and prove nothing; taking the left-most one
would let anyone choose their own address and step around every per-address limit.
"""

from __future__ import annotations

from django.conf import settings


def forwarded_client(header: str, trusted_proxies: int) -> str | None:
    """The client address in an ``X-Forwarded-For`` value written through
    ``trusted_proxies`` proxies, or None when the header is empty.

    >>> forwarded_client("6.6.6.6, 203.0.113.7", 1)
    '203.0.113.7'
    >>> forwarded_client("6.6.6.6, 203.0.113.7, 10.0.0.2", 2)
    '203.0.113.7'
    """
    entries = [entry.strip() for entry in header.split(",") if entry.strip()]
    if not entries:
        return None
    # Fewer entries than proxies: every entry was added by a trusted proxy; the first
    # one is the closest to the client.
    return entries[-min(trusted_proxies, len(entries))]


def client_address(request) -> str:
    if settings.USE_X_FORWARDED_FOR:
        forwarded = forwarded_client(
            request.META.get("HTTP_X_FORWARDED_FOR", ""), max(1, settings.TRUSTED_PROXIES)
        )
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR", "")
