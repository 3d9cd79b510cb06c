"""What the browser tests check of the keyboard hints on a participant's pages: a device
whose main input is a finger (no hover, a coarse pointer: a phone, as ``PHONE`` emulates it)
is told to answer with the buttons and nothing of keys; one with a mouse also reads the keys
and sees their badges on the answer buttons."""

from __future__ import annotations

from playwright.sync_api import expect

TOUCH_ONLY = "(hover: none) and (pointer: coarse)"


def touch_only(page) -> bool:
    """Whether ``page``'s device answers by touch only (the participant CSS's query)."""
    return page.evaluate(f"matchMedia('{TOUCH_ONLY}').matches")


def assert_instruction_hints(page, buttons: str) -> None:
    """The instructions on screen: their sentence ``buttons`` (answer with the buttons) is
    read on every device, the sentence naming the keys only off a touch-only one."""
    sentence = page.locator("#instructions p", has_text=buttons)
    expect(sentence).to_be_visible()
    keys = sentence.locator(".keyboard-hint")
    expect(keys).to_have_count(1)
    if touch_only(page):
        expect(keys).to_be_hidden()
        assert sentence.inner_text().strip().startswith(buttons)
    else:
        expect(keys).to_be_visible()
        expect(keys.locator("kbd").first).to_be_visible()


def assert_button_badges(page) -> None:
    """The trial on screen: the answer buttons' key badges are seen only off a touch-only
    device (a rating study's buttons have none)."""
    badges = page.locator("#answer-form kbd")
    hidden = touch_only(page)
    for i in range(badges.count()):
        expect(badges.nth(i)).to_be_hidden() if hidden else expect(badges.nth(i)).to_be_visible()
