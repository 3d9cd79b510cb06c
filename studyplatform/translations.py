"""The participants' translations: ``locale/<lang>/LC_MESSAGES/django.po`` are the source,
the ``.mo`` files Django reads are made from them here (with polib, so no system gettext is
needed) whenever one is missing or older than its ``.po``. Called at start-up
(:meth:`studyplatform.apps.StudyPlatformConfig.ready`), so a fresh clone, the tests and every
process of the platform speak the languages without a build step; ``.mo`` files are never
committed."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import polib

log = logging.getLogger(__name__)


def stale_catalogues(locale_dir: Path) -> list[Path]:
    """The ``.po`` files under ``locale_dir`` whose ``.mo`` is missing or older."""
    stale = []
    for po in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            stale.append(po)
    return stale


def compile_catalogue(po: Path) -> Path:
    """Write ``po``'s ``.mo`` beside it, atomically (several processes may start at once).
    Fuzzy entries are left out, as msgfmt does."""
    mo = po.with_suffix(".mo")
    catalogue = polib.pofile(str(po))
    handle, temporary = tempfile.mkstemp(dir=po.parent, suffix=".mo.tmp")
    os.close(handle)
    try:
        catalogue.save_as_mofile(temporary)
        os.replace(temporary, mo)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return mo


def compile_stale_catalogues(locale_dirs) -> list[Path]:
    """Compile every stale catalogue; a read-only checkout keeps what it has (and says so)."""
    compiled = []
    for locale_dir in locale_dirs:
        for po in stale_catalogues(Path(locale_dir)):
            try:
                compiled.append(compile_catalogue(po))
            except OSError as exc:
                log.warning("Cannot compile the translations %s: %s", po.parent.parent.name, exc)
    return compiled
