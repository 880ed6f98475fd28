"""Text mode for players outside the rollout, the denied-microphone guidance, and every page."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import PASSWORD, TEXT_USER, VOICE_USER, launch, open_page, start_active_scene

pytestmark = pytest.mark.e2e

LINE = "Captain, the submarine's book club has read every map on board."
PRESSED = "document.querySelector('[data-action=talk]').getAttribute('aria-pressed') === "


def test_a_player_outside_the_rollout_plays_in_text_mode(text_stack, browser, shot):
    console: list[str] = []
    context, page = open_page(browser, text_stack.url, TEXT_USER, console)
    try:
        start_active_scene(page, text_stack.url)
        assert page.locator("[data-voice-panel]").count() == 0  # no voice panel, no dead buttons
        assert page.locator("#stage").get_attribute("data-mode") == "text"
        page.fill("[data-say-form] textarea", LINE)
        page.locator("[data-say-form] button[type=submit]").click()
        page.wait_for_load_state()
        transcript = page.locator(".scene-card .transcript")
        assert "every map on board" in transcript.inner_text()
        assert transcript.locator(".line-partner").count() >= 1
        shot(page, "stage-text-mode")
        assert not [line for line in console if line.startswith(("pageerror", "error"))], console
    finally:
        context.close()


def test_a_denied_microphone_shows_what_to_do_and_typing_still_works(voice_stack, playwright_driver, shot):
    # No fake-UI flag: the permission request is refused, as when a player clicks "Block".
    chromium = launch(playwright_driver)
    try:
        context, page = open_page(chromium, voice_stack.url, VOICE_USER)
        start_active_scene(page, voice_stack.url)
        page.get_by_role("button", name=re.compile("Start voice|Switch to voice")).click()
        notice = page.locator("[data-voice-panel] [data-notice]")
        notice.wait_for(state="visible", timeout=15_000)
        assert "blocked" in notice.inner_text().lower()
        assert notice.get_attribute("role") == "alert"
        assert page.locator("[data-notice-steps] li").count() >= 2
        assert page.locator("[data-voice-panel]").get_attribute("data-state") == "idle"
        shot(page, "stage-mic-denied")

        notice.get_by_role("button", name="Continue by typing").click()
        assert page.locator("[data-say-form] textarea").is_visible()
        assert page.evaluate("document.activeElement.matches('[data-say-form] textarea')")
        assert page.get_by_role("button", name="Switch to voice").is_visible()
        context.close()
    finally:
        chromium.close()


def test_the_voice_panel_is_keyboard_operable_and_labelled(voice_stack, browser, shot):
    context, page = open_page(browser, voice_stack.url, VOICE_USER)
    try:
        start_active_scene(page, voice_stack.url)
        ids = page.evaluate("[...document.querySelectorAll('[id]')].map((node) => node.id)")
        duplicate_ids = sorted({i for i in ids if ids.count(i) > 1})
        assert duplicate_ids == []  # labels must point at exactly one element
        log = page.locator("[data-voice-panel] [data-transcript]")
        assert log.get_attribute("role") == "log"
        assert log.get_attribute("aria-live") == "polite"
        assert page.get_by_role("checkbox", name="Push to talk").count() == 1
        page.get_by_role("checkbox", name="Push to talk").focus()
        page.keyboard.press("Space")
        talk = page.get_by_role("button", name="Hold to talk")
        assert talk.is_visible()
        assert page.evaluate("localStorage.getItem('ai4joy.pushToTalk')") == "1"
        page.get_by_role("button", name=re.compile("Start voice|Switch to voice")).focus()
        page.keyboard.press("Enter")
        page.wait_for_selector("[data-voice-panel][data-state='live']", timeout=30_000)
        assert page.get_by_role("meter", name="Your microphone").count() == 1
        talk.focus()
        page.keyboard.down("Space")
        page.wait_for_function(PRESSED + "'true'")
        page.keyboard.up("Space")
        page.wait_for_function(PRESSED + "'false'")
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: everything still reachable
        assert talk.is_visible() and talk.inner_text() == "Hold to talk"
        assert page.locator("[data-conn-label]").inner_text() == "Live"
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width  # nothing pushes the page sideways
        shot(page, "stage-voice-phone-ptt")
        page.get_by_role("checkbox", name="Push to talk").uncheck()
        assert talk.is_hidden()
    finally:
        context.close()


def test_every_page_renders_in_the_house_style(voice_stack, browser, shot):
    console: list[str] = []
    context, page = open_page(browser, voice_stack.url, None, console)
    try:
        # Each page: its heading and the one thing a person came to it for.
        for path, name, heading, action in (
            ("/", "home-signed-out", "Step on stage.", ("link", "Sign in to play")),
            ("/accounts/login/", "sign-in", "Sign in", ("button", "Sign in")),
            ("/accounts/signup/", "sign-up", "Create an account", ("button", re.compile("Sign up|Create"))),
        ):
            response = page.goto(f"{voice_stack.url}{path}")
            assert response is not None and response.status == 200, path
            assert page.locator("link[href$='css/app.css']").count() == 1
            assert page.get_by_role("heading", level=1).inner_text() == heading, path
            assert page.get_by_role(action[0], name=action[1]).first.is_visible(), path
            shot(page, name)
        page.goto(f"{voice_stack.url}/accounts/login/")
        page.fill("#id_login", VOICE_USER)
        page.fill("#id_password", "not-the-password")
        page.click("form.stacked button[type=submit]")
        error = page.locator("[role=alert], .error").first
        assert error.is_visible()
        assert "not correct" in error.inner_text().lower() or "incorrect" in error.inner_text().lower()
        shot(page, "sign-in-error")
        page.fill("#id_password", PASSWORD)
        page.click("form.stacked button[type=submit]")
        page.wait_for_url(f"{voice_stack.url}/")
        for path, name, heading, text in (
            ("/", "home", "Step on stage.", "Choose your game"),
            ("/scenes/", "history", "Your scenes", ""),
            ("/profile/", "profile", "Your profile", VOICE_USER),
        ):
            response = page.goto(f"{voice_stack.url}{path}")
            assert response is not None and response.status == 200, path
            assert page.locator("header.topbar nav").is_visible()
            assert page.get_by_role("heading", level=1).inner_text() == heading, path
            assert text in page.locator("main").inner_text(), path
            shot(page, name)
        assert not [line for line in console if line.startswith(("pageerror", "error"))], console
    finally:
        context.close()


def test_without_javascript_the_stage_still_plays_in_text_and_shows_no_dead_voice_controls(
    voice_stack, browser, shot
):
    context = browser.new_context(base_url=voice_stack.url, java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto("/accounts/login/")
        page.fill("#id_login", VOICE_USER)
        page.fill("#id_password", PASSWORD)
        page.click("form.stacked button[type=submit]")
        page.wait_for_url(f"{voice_stack.url}/")
        start_active_scene(page, voice_stack.url)
        panel = page.locator("[data-voice-panel]")
        assert "needs JavaScript" in panel.inner_text()
        visible_controls = [c for c in panel.locator("button, input").all() if c.is_visible()]
        assert visible_controls == []
        page.fill("[data-say-form] textarea", "Yes, and we bake by moonlight.")
        page.locator("[data-say-form] button[type=submit]").click()
        page.wait_for_load_state()
        assert "bake by moonlight" in page.locator(".scene-card").inner_text()
        shot(page, "stage-no-javascript")
    finally:
        context.close()
