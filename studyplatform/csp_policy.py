"""django-csp's middleware with the site's policy built once per process instead of on
every response.

django-csp 4.0 builds the header from the settings twice per response (the policy and
the report-only one; ``dataclasses.asdict`` and ``build_policy`` each time): about a tenth
of the CPU of a participant's image or answer (bench/profile_participant_paths.py), for a
string that is the same on every response which neither carries a nonce nor was given its
own policy by a decorator (``csp_update``, ``csp_replace``, ``csp_exempt``…). Those
responses get the stored strings; any other goes to django-csp unchanged. The headers are
the same strings either way (tests/studyplatform/test_content_security_policy.py compares
them), set under the same conditions."""

from __future__ import annotations

import http.client

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

#: What a response may carry to be given a policy of its own (django-csp's decorators).
RESPONSE_PARTS = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
)
#: (header, report only, the response's exemption attribute, the setting)
HEADERS = (
    (HEADER, False, "_csp_exempt", "CONTENT_SECURITY_POLICY"),
    (HEADER_REPORT_ONLY, True, "_csp_exempt_ro", "CONTENT_SECURITY_POLICY_REPORT_ONLY"),
)
DEBUG_EXEMPT = (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND)

_policies: dict[bool, str] = {}


def site_policy(report_only: bool) -> str:
    """The header built from the settings alone (no nonce, no per-response part)."""
    policy = _policies.get(report_only)
    if policy is None:
        policy = _policies[report_only] = build_policy(report_only=report_only)
    return policy


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _policies.clear()


def _excluded(request, setting: str) -> bool:
    prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
    return request.path_info.startswith(tuple(prefixes))


class CSPMiddleware(BaseCSPMiddleware):
    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or any(
            getattr(response, name, None) is not None for name in RESPONSE_PARTS
        ):
            return super().process_response(request, response)
        # From here on django-csp's own steps, with the stored policies.
        if response.status_code in DEBUG_EXEMPT and settings.DEBUG:
            return response
        for header, report_only, exempt, setting in HEADERS:
            policy = site_policy(report_only)
            if (
                policy
                and header not in response
                and getattr(response, exempt, False) is False
                and not _excluded(request, setting)
            ):
                response[header] = policy
        # No nonce was taken (else django-csp built the header): one asked for from now on
        # could not be in the header, so asking raises, as django-csp has it.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
