"""What the browser tests measure about widths."""

from __future__ import annotations

#: Each table that is wider than the box it sits in (its scrolling region, else its card),
#: named by its caption or its section's heading, with the two widths.
_TOO_WIDE = """() => Object.fromEntries([...document.querySelectorAll('table')].flatMap((t, i) => {
  const box = t.closest('.scroll-x') || t.closest('.card') || t.parentElement;
  if (box.scrollWidth <= box.clientWidth) return [];
  const heading = t.closest('section, .card')?.querySelector('h2, h3');
  const name = (t.caption || heading || {}).textContent || '';
  return [[`${i}: ${name.trim().slice(0, 60)}`, `${t.scrollWidth} px in ${box.clientWidth} px`]];
}))"""


def too_wide_tables(page) -> dict[str, str]:
    """The tables on ``page`` that overflow their box (empty when every one fits)."""
    return page.evaluate(_TOO_WIDE)
