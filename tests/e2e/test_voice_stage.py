"""The voice stage in a real browser: fake microphone -> Daphne -> emulator -> the player's ears."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import SCREENSHOTS, VOICE_USER, open_page, start_active_scene

pytestmark = pytest.mark.e2e

SNAPSHOT = "window.ai4joyVoice && window.ai4joyVoice.snapshot()"
PARTNER = "[data-voice-panel] [data-transcript] li[data-role='partner']"


def snapshot(page) -> dict:
    return page.evaluate(SNAPSHOT)


def wait_state(page, state: str, timeout: float = 30_000) -> None:
    page.wait_for_selector(f"[data-voice-panel][data-state='{state}']", timeout=timeout)


def partner_lines(page) -> list[str]:
    return page.locator(
        "[data-voice-panel] [data-transcript] li[data-role='partner'] .vp-said"
    ).all_inner_texts()


def start_voice(page) -> None:
    try:
        page.get_by_role("button", name=re.compile("Start voice|Switch to voice")).click()
        wait_state(page, "live")
    except Exception:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "failure-start-voice.png"), full_page=True)
        raise


def test_voice_scene_partner_speaks_plays_and_is_interrupted(voice_stack, browser, shot):
    console: list[str] = []
    context, page = open_page(browser, voice_stack.url, VOICE_USER, console)
    try:
        start_active_scene(page, voice_stack.url)
        panel = page.locator("[data-voice-panel]")
        assert panel.is_visible()
        assert page.locator("[data-conn-label]").inner_text() == "Voice is off"
        assert page.get_by_role("button", name=re.compile("Start voice|Switch to voice")).is_visible()
        assert page.locator("[data-say-form]").is_visible()  # typing works until voice starts
        shot(page, "stage-voice-idle")

        start_voice(page)
        assert page.locator("[data-say-form]").is_hidden()  # one input path at a time
        assert page.locator("[data-conn-label]").inner_text() == "Live"
        assert page.get_by_role("button", name="Switch to typing").is_visible()
        # A brand-new scene's first connection is no reconnect: nothing may claim otherwise.
        captions = page.locator("[data-voice-panel] [data-transcript]")
        assert "Reconnected" not in captions.inner_text()
        assert snapshot(page)["reconnects"] == 0
        shot(page, "stage-voice-live")

        # The partner's words arrive as captions...
        page.wait_for_function(
            f'document.querySelector("{PARTNER} .vp-said")?.textContent.length > 3',
            timeout=30_000,
        )
        # ...and its voice is audible inside the page (RMS measured on the player's output).
        page.wait_for_function(f"({SNAPSHOT}).player.audibleBlocks > 50", timeout=30_000)
        stats = snapshot(page)
        assert stats["framesSent"] > 20, stats
        assert stats["micRms"] >= 0
        assert page.locator(PARTNER).first.is_visible()
        assert page.locator(f"{PARTNER} .vp-who").first.text_content() == "Partner: "
        shot(page, "stage-voice-partner-speaking")

        # The second line of the WAV talks over the partner: the server says `interrupted` and the
        # player's buffer is emptied at once.
        page.wait_for_function(
            f"({SNAPSHOT}).interrupts >= 1 && ({SNAPSHOT}).player.clears >= 1", timeout=40_000
        )
        cut = page.locator("[data-transcript] li.interrupted[data-role='partner']")
        assert cut.count() >= 1 and cut.first.is_visible()
        # The "— cut off" marker is CSS-generated text: read it as a person sees it.
        marker = page.evaluate(
            "getComputedStyle(document.querySelector('[data-transcript] li.interrupted .vp-said'), '::after')"
            ".content"
        )
        assert "cut off" in marker, marker
        shot(page, "stage-voice-barge-in")

        # A full turn later the latency readout shows a number.
        page.wait_for_function(
            "/\\d+ ms/.test(document.querySelector('[data-latency]').textContent)", timeout=40_000
        )
        user_lines = page.locator("[data-transcript] li[data-role='user']").count()
        assert user_lines >= 1
        # After a completed turn the room reacts: its mood is named and the stage glows in its hue.
        page.wait_for_function(f"({SNAPSHOT}).rooms >= 1", timeout=30_000)
        mood = page.locator("[data-voice-panel] [data-room]").get_attribute("data-mood")
        assert mood
        assert page.locator("[data-voice-panel] [data-mood-label]").inner_text().lower() == mood
        assert re.fullmatch(r"\d+ ms", page.locator("[data-latency]").inner_text())
        hue = page.evaluate(
            "getComputedStyle(document.querySelector('#stage')).getPropertyValue('--mood-hue')"
        )
        assert hue.strip().isdigit(), hue
        shot(page, "stage-voice-room-mood")
        assert not [line for line in console if line.startswith(("pageerror", "error"))], console
    finally:
        context.close()


def test_server_restart_mid_scene_reconnects_and_the_scene_carries_on(voice_stack, browser, shot):
    context, page = open_page(browser, voice_stack.url, VOICE_USER)
    try:
        start_active_scene(page, voice_stack.url)
        start_voice(page)
        page.wait_for_function(
            f'document.querySelectorAll("{PARTNER}").length >= 1',
            timeout=30_000,
        )
        before = len(partner_lines(page))

        # Cloud Run's rollout: SIGTERM drains (reconnect message + 4012), then a new process
        # comes up on the same address.
        assert voice_stack.sigterm() == 0
        wait_state(page, "reconnecting", timeout=10_000)
        assert page.locator("[data-conn-label]").inner_text().startswith("Reconnecting")
        notice = page.locator("[data-voice-panel] [data-notice]")
        assert notice.is_visible() and "Connection lost" in notice.inner_text()
        shot(page, "stage-voice-reconnecting")
        voice_stack.start()

        wait_state(page, "live", timeout=40_000)
        assert snapshot(page)["reconnects"] >= 1
        page.wait_for_function(
            f"document.querySelectorAll(\"[data-transcript] li[data-role='partner']\").length > {before}",
            timeout=40_000,
        )
        assert "carries on" in page.locator("[data-transcript]").inner_text()  # ready.resumed was true
        ended = [e for e in voice_stack.events("audio_session_ended") if e.get("reason") == "server_restart"]
        resumed = [e for e in voice_stack.events("audio_session_started") if e.get("resumed_from")]
        assert ended and resumed, voice_stack.log()[-3000:]
        assert resumed[-1]["resumed_from"] == ended[-1]["session_id"]  # the same session, resumed
        assert page.locator("[data-conn-label]").inner_text() == "Live"
        assert page.locator("[data-voice-panel] [data-notice]").is_hidden()
        shot(page, "stage-voice-resumed")
    finally:
        context.close()
        if voice_stack.process is None or voice_stack.process.poll() is not None:
            voice_stack.start()


def test_switching_to_typing_ends_voice_and_brings_back_the_text_form(voice_stack, browser, shot):
    context, page = open_page(browser, voice_stack.url, VOICE_USER)
    try:
        start_active_scene(page, voice_stack.url)
        start_voice(page)
        page.get_by_role("button", name="Switch to typing").click()
        wait_state(page, "idle")
        assert page.locator("[data-say-form]").is_visible()
        assert page.get_by_role("button", name="Switch to voice").is_visible()
        page.fill("[data-say-form] textarea", "Yes, and the moon bakery needs a night shift.")
        page.locator("[data-say-form] button[type=submit]").click()
        page.wait_for_load_state()
        assert "night shift" in page.locator(".scene-card").inner_text()
        shot(page, "stage-voice-back-to-text")
    finally:
        context.close()


def test_a_second_tab_takes_over_voice_and_the_first_says_what_happened(voice_stack, browser, shot):
    context, first = open_page(browser, voice_stack.url, VOICE_USER)
    try:
        stage_url = start_active_scene(first, voice_stack.url)
        start_voice(first)
        second = context.new_page()
        second.goto(stage_url)
        start_voice(second)

        # The first tab was superseded (4009): a policy close, so no reconnect loop, but guidance.
        notice = first.locator("[data-voice-panel] [data-notice]")
        notice.wait_for(state="visible", timeout=15_000)
        assert "another tab" in notice.inner_text()
        assert first.get_by_role("button", name="Use voice here").is_visible()
        assert first.locator("[data-say-form]").is_visible()
        assert first.locator("[data-voice-panel]").get_attribute("data-state") == "ended"
        shot(first, "stage-voice-superseded")
        assert second.locator("[data-voice-panel]").get_attribute("data-state") == "live"
    finally:
        context.close()


def test_ending_the_scene_while_live_closes_voice_cleanly_first(voice_stack, browser, shot):
    context, page = open_page(browser, voice_stack.url, VOICE_USER)
    try:
        start_active_scene(page, voice_stack.url)
        start_voice(page)
        scene_id = page.locator("#stage").get_attribute("data-scene-id")
        with page.expect_navigation(timeout=30_000):
            page.get_by_role("button", name=re.compile("End scene|Leave this scene")).click()
        page.wait_for_load_state()
        assert "review" in page.url or page.locator("#stage").get_attribute("data-status") == "closed"
        assert page.locator("[data-voice-panel]").count() == 0  # a closed scene offers no voice
        ended = [e for e in voice_stack.events("audio_session_ended") if e.get("scene_id") == scene_id]
        assert ended and ended[-1]["reason"] == "client_close", ended
        if "review" in page.url:
            assert page.get_by_role("heading", name="Coaching review").is_visible()
        else:
            assert "Closed" in page.locator("main").inner_text()
        shot(page, "scene-ended")
    finally:
        context.close()


def test_a_dropped_connection_reconnects_with_backoff_and_the_scene_goes_on(voice_stack, browser, shot):
    context, page = open_page(browser, voice_stack.url, VOICE_USER)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    try:
        start_active_scene(page, voice_stack.url)
        start_voice(page)
        page.wait_for_function(f'document.querySelectorAll("{PARTNER}").length >= 1', timeout=30_000)
        before = len(partner_lines(page))
        first_session = voice_stack.events("audio_session_started")[-1]["session_id"]

        # SIGKILL: no drain, no close frame; the browser sees what a dead network looks like (1006).
        voice_stack.process.kill()
        voice_stack.process.wait(10)
        wait_state(page, "reconnecting", timeout=10_000)
        voice_stack.start()

        wait_state(page, "live", timeout=40_000)
        assert snapshot(page)["reconnects"] >= 1
        page.wait_for_function(f'document.querySelectorAll("{PARTNER}").length > {before}', timeout=40_000)
        # The browser asked to resume its session; a killed server left nothing to resume, so the
        # scene goes on in a fresh Live session (a drained one resumes: see the restart test).
        assert f"resume={first_session}" in sockets[-1], sockets
        assert "Reconnected" in page.locator("[data-transcript]").inner_text()
        assert page.locator("[data-conn-label]").inner_text() == "Live"
        shot(page, "stage-voice-after-drop")
    finally:
        context.close()
        if voice_stack.process is None or voice_stack.process.poll() is not None:
            voice_stack.start()
