"""axe-core in the browser tests: a page's violations of the WCAG 2.0/2.1 A and AA rules.

The script is axe-core's ``axe.min.js`` as the pinned test dependency axe-playwright-python
ships it (axe-core 4.12.1: installed with the other packages, nothing fetched by a test), or
the file ``E2E_AXE`` names. It is evaluated in the page, not injected as a <script>: the
pages' Content-Security-Policy would refuse that."""

from __future__ import annotations

import os
from pathlib import Path

import axe_playwright_python

AXE = os.environ.get("E2E_AXE") or str(Path(axe_playwright_python.__file__).parent / "axe.min.js")

WCAG_AA = "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']"


def axe_violations(page) -> list[tuple[str, list]]:
    """(rule, the elements that break it) for every WCAG 2.0/2.1 A or AA violation."""
    page.evaluate(Path(AXE).read_text())
    result = page.evaluate(
        f"() => axe.run(document, {{runOnly: {{type: 'tag', values: {WCAG_AA}}}}})"
    )
    return [(v["id"], [n["target"] for n in v["nodes"]]) for v in result["violations"]]
