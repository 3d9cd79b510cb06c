"""The participants' translations are complete: every text marked for translation in the
templates and the code has a non-empty, non-fuzzy translation in each shipped language,
keeping its placeholders and markup, and each language's answer keys differ."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.utils.translation.template import templatize

from studyplatform.translations import compile_catalogue, stale_catalogues
from survey.wording import default_wording

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [code for code, _ in settings.LANGUAGES if code != "en"]
GETTEXT_NAMES = {
    "_",
    "gettext",
    "gettext_lazy",
    "ngettext",
    "ngettext_lazy",
    "pgettext",
    "pgettext_lazy",
    "npgettext",
    "npgettext_lazy",
}
CALL = re.compile(r"\b(?:n?p?gettext(?:_lazy)?|_)\(")
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|\{[a-z_]+\}|</?kbd>")


def _marked(call: ast.Call) -> tuple[str | None, str] | None:
    """(context, msgid) of a gettext call with literal arguments."""
    name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
    if name not in GETTEXT_NAMES:
        return None
    args = [a.value if isinstance(a, ast.Constant) else None for a in call.args]
    if name.startswith(("pgettext", "npgettext")):
        return (args[0], args[1]) if len(args) > 1 and args[1] else None
    return (None, args[0]) if args and isinstance(args[0], str) else None


def _from_python(path: Path) -> set[tuple[str | None, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {m for node in ast.walk(tree) if isinstance(node, ast.Call) if (m := _marked(node))}


def _from_template(path: Path) -> set[tuple[str | None, str]]:
    """What makemessages would extract: Django turns the template into gettext calls."""
    code = templatize(path.read_text(), origin=str(path))
    found = set()
    for match in CALL.finditer(code):
        closes = [i for i, ch in enumerate(code[match.start() :], match.start()) if ch == ")"]
        for end in closes:
            try:
                node = ast.parse(code[match.start() : end + 1], mode="eval").body
            except SyntaxError:
                continue
            if isinstance(node, ast.Call) and (marked := _marked(node)):
                found.add(marked)
            break
    return found


def marked_texts() -> set[tuple[str | None, str]]:
    texts = set()
    for package in ("survey", "studyplatform"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                texts |= _from_python(path)
    for path in (ROOT / "templates").rglob("*.html"):
        texts |= _from_template(path)
    return texts


def test_the_participant_texts_are_marked_for_translation():
    texts = {msgid for _, msgid in marked_texts()}
    for expected in (
        "Start the study",
        "Real photograph, or colourised by AI?",
        "Image {number} of {total}",
        "This study is full",
        "Correct: that image was colourised by AI.",
        "Briefly unavailable",
        "Your answer could not be saved (the connection may have dropped). Nothing is lost: "
        "please try again.",
    ):
        assert expected in texts


@pytest.mark.parametrize("language", SHIPPED)
def test_every_marked_text_has_a_translation(language):
    """A new participant text without a translation fails here (run ``makemessages`` and
    translate it)."""
    po = polib.pofile(str(ROOT / "locale" / language / "LC_MESSAGES" / "django.po"))
    entries = {(e.msgctxt, e.msgid): e for e in po if not e.obsolete}
    missing = marked_texts() - set(entries)
    assert not missing, f"not in locale/{language}: {sorted(m[1] for m in missing)}"
    for key, entry in entries.items():
        assert "fuzzy" not in entry.flags, key
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        assert translations and all(t.strip() for t in translations), key
        for translation in translations:
            # The same placeholders and markup; a plural's singular may leave its number out.
            wanted = set(PLACEHOLDER.findall(entry.msgid_plural or entry.msgid))
            got = set(PLACEHOLDER.findall(translation))
            assert got <= wanted and (got == wanted or entry.msgid_plural), (key, translation)


@pytest.mark.parametrize("language", [code for code, _ in settings.LANGUAGES])
def test_each_language_answers_with_two_different_labels_and_keys(language):
    wording = default_wording(language)
    assert wording.real_key.casefold() != wording.ai_key.casefold()
    assert wording.real_label != wording.ai_label
    assert len(wording.real_key) == len(wording.ai_key) == 1
    # A language's default key is the first letter of its label, so the hint reads well.
    assert wording.real_label[0].upper() == wording.real_key
    assert wording.ai_label[0].upper() == wording.ai_key


def test_the_keys_chosen_per_language():
    keys = {code: default_wording(code) for code, _ in settings.LANGUAGES}
    assert {c: (w.real_label, w.ai_label, w.real_key, w.ai_key) for c, w in keys.items()} == {
        "en": ("Real", "AI", "R", "A"),
        "de": ("Echt", "KI", "E", "K"),
        "fr": ("Réelle", "IA", "R", "I"),
        "es": ("Real", "IA", "R", "I"),
    }


def test_catalogues_are_compiled_when_missing_or_older_than_their_source(tmp_path):
    po_path = tmp_path / "xx" / "LC_MESSAGES" / "django.po"
    po_path.parent.mkdir(parents=True)
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Language": "xx"}
    po.append(polib.POEntry(msgid="Begin", msgstr="Anfangen"))
    po.append(polib.POEntry(msgid="Real", msgstr="Wirklich", flags=["fuzzy"]))
    po.save(str(po_path))
    assert stale_catalogues(tmp_path) == [po_path]
    mo = compile_catalogue(po_path)
    assert stale_catalogues(tmp_path) == []
    compiled = {e.msgid: e.msgstr for e in polib.mofile(str(mo))}
    assert compiled.get("Begin") == "Anfangen"
    assert "Real" not in compiled  # fuzzy entries are left out, as msgfmt does
