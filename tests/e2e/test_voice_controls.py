"""The voice stage's player controls in a real browser: mute, partner volume, microphone picker,
screen wake lock. Each is driven from the keyboard and found by its accessible name."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import VOICE_USER, open_page, start_active_scene
from tests.e2e.test_colour_schemes import CONTRAST
from tests.e2e.test_voice_stage import SNAPSHOT, snapshot, start_voice, wait_state

pytestmark = pytest.mark.e2e


def count_binary_frames(page) -> dict[str, int]:
    """Binary frames as they leave the page on any of its WebSockets (Chromium's own count)."""
    sent = {"binary": 0, "sockets": 0}

    def on_socket(ws) -> None:
        sent["sockets"] += 1
        ws.on("framesent", lambda payload: count(payload))

    def count(payload) -> None:
        sent["binary"] += not isinstance(payload, str)

    page.on("websocket", on_socket)
    return sent


def test_muting_stops_every_audio_frame_and_the_meter_and_state_say_muted(voice_stack, browser, shot):
    context, page = open_page(browser, voice_stack.url, VOICE_USER)
    sent = count_binary_frames(page)
    try:
        start_active_scene(page, voice_stack.url)
        start_voice(page)
        page.wait_for_function(f"({SNAPSHOT}).framesSent > 10")

        mute = page.get_by_role("button", name="Mute microphone")
        assert mute.get_attribute("aria-pressed") == "false"
        mute.focus()
        page.keyboard.press("Space")
        assert mute.get_attribute("aria-pressed") == "true"
        muted = snapshot(page)
        assert muted["muted"] is True
        assert page.locator("[data-conn-label]").inner_text() == "Live · Muted"
        meter = page.get_by_role("meter", name="Your microphone")
        assert meter.get_attribute("aria-valuetext") == "Muted"
        assert meter.get_attribute("aria-valuenow") == "0"
        assert page.locator("[data-level-muted]").inner_text().strip().lower() == "muted"
        # The pressed toggle stays readable (its label on the red it turns), by night and by day.
        for scheme in ("dark", "light"):
            page.emulate_media(color_scheme=scheme)
            ratio = page.evaluate(CONTRAST, [["mute", "[data-action=mute]", "color"]])["mute"]
            assert ratio >= 4.5, (scheme, ratio)

        # 1.6 s more of captured audio (40 frames of 40 ms) while muted: not one frame sent.
        page.wait_for_function(f"({SNAPSHOT}).micFrames >= {muted['micFrames'] + 40}", timeout=20_000)
        later = snapshot(page)
        assert later["framesSent"] == muted["framesSent"], (muted, later)
        assert sent["sockets"] == 1
        assert sent["binary"] == later["framesSent"]  # the page's counter is what went over the wire
        assert page.locator("[data-voice-panel] [data-notice]").is_hidden()
        shot(page, "stage-voice-muted")

        page.keyboard.press("Enter")  # the toggle still has focus
        assert mute.get_attribute("aria-pressed") == "false"
        assert page.locator("[data-conn-label]").inner_text() == "Live"
        assert page.locator("[data-level-muted]").is_hidden()
        page.wait_for_function(f"({SNAPSHOT}).framesSent > {later['framesSent'] + 10}", timeout=20_000)
    finally:
        context.close()


def test_partner_volume_drives_the_players_gain_and_is_remembered(voice_stack, browser, shot):
    context, page = open_page(browser, voice_stack.url, VOICE_USER)
    try:
        stage_url = start_active_scene(page, voice_stack.url)
        start_voice(page)
        slider = page.get_by_role("slider", name="Partner volume")
        assert slider.input_value() == "100"
        page.wait_for_function(f"Math.abs(({SNAPSHOT}).partnerGain - 1) < 0.01")
        slider.focus()
        for _ in range(10):  # step 5: 100 -> 50
            page.keyboard.press("ArrowLeft")
        assert slider.input_value() == "50"
        assert slider.get_attribute("aria-valuetext") == "50%"
        # The GainNode itself, after its short ramp (no jump, no click).
        page.wait_for_function(f"Math.abs(({SNAPSHOT}).partnerGain - 0.5) < 0.01", timeout=5_000)
        assert page.evaluate("localStorage.getItem('ai4joy.partnerVolume')") == "50"
        shot(page, "stage-voice-volume-half")

        page.get_by_role("button", name="Switch to typing").click()
        wait_state(page, "idle")
        page.goto(stage_url)
        start_voice(page)
        assert page.get_by_role("slider", name="Partner volume").input_value() == "50"
        page.wait_for_function(f"Math.abs(({SNAPSHOT}).partnerGain - 0.5) < 0.01", timeout=5_000)
    finally:
        context.close()


def test_switching_microphones_mid_scene_keeps_the_socket_and_is_remembered(voice_stack, browser, shot):
    context, page = open_page(browser, voice_stack.url, VOICE_USER)
    sent = count_binary_frames(page)
    try:
        stage_url = start_active_scene(page, voice_stack.url)
        # A remembered headset that is unplugged today: voice starts on the default microphone.
        page.evaluate("localStorage.setItem('ai4joy.microphone', 'a-headset-that-is-not-plugged-in')")
        start_voice(page)
        assert snapshot(page)["micDeviceId"] == "default"
        picker = page.get_by_role("combobox", name="Microphone")
        page.wait_for_function("document.querySelectorAll('[data-mic-select] option').length >= 2")
        before = snapshot(page)
        options = page.evaluate(
            "[...document.querySelectorAll('[data-mic-select] option')].map((o) => [o.value, o.textContent])"
        )
        assert picker.input_value() == before["micDeviceId"]
        chosen, label = next((value, text) for value, text in options if value != before["micDeviceId"])

        picker.focus()
        picker.select_option(chosen)
        page.wait_for_function(f"({SNAPSHOT}).micDeviceId === {chosen!r}", timeout=10_000)
        after = snapshot(page)
        assert after["micLabel"] == label
        assert page.locator("[data-mic-name]").inner_text() == label
        assert after["micSwitches"] == 1
        # The same scene on the same socket: no reconnect, and audio keeps flowing from the new mic.
        assert page.locator("[data-voice-panel]").get_attribute("data-state") == "live"
        assert after["reconnects"] == 0 and sent["sockets"] == 1
        page.wait_for_function(f"({SNAPSHOT}).framesSent > {after['framesSent'] + 20}", timeout=20_000)
        assert page.evaluate("localStorage.getItem('ai4joy.microphone')") == chosen
        assert page.locator("[data-voice-panel] [data-notice]").is_hidden()
        shot(page, "stage-voice-mic-switched")

        page.get_by_role("button", name="Switch to typing").click()
        wait_state(page, "idle")
        page.goto(stage_url)
        start_voice(page)
        page.wait_for_function(f"({SNAPSHOT}).micDeviceId === {chosen!r}", timeout=10_000)
        page.wait_for_function(f"document.querySelector('[data-mic-select]').value === {chosen!r}")
    finally:
        context.close()


# How a browser can refuse a wake lock: not implemented at all (older Safari, Firefox before
# 126), or implemented but refused (battery saver, a policy). Headless Chromium itself grants it.
REFUSALS = {
    "granted": "",
    "unsupported": "delete Navigator.prototype.wakeLock;",
    "denied": (
        "Object.defineProperty(WakeLock.prototype, 'request', { value: () =>"
        " Promise.reject(new DOMException('Wake Lock permission request denied', 'NotAllowedError')) });"
    ),
}


@pytest.mark.parametrize("browser_says", ["granted", "unsupported", "denied"])
def test_the_screen_stays_awake_while_voice_is_live_and_released_after(
    voice_stack, browser, shot, browser_says
):
    context, page = open_page(browser, voice_stack.url, VOICE_USER)
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    try:
        if REFUSALS[browser_says]:
            context.add_init_script(REFUSALS[browser_says])
        start_active_scene(page, voice_stack.url)
        assert page.evaluate("window.ai4joyVoice.snapshot().wakeLock") == (
            "unsupported" if browser_says == "unsupported" else "off"
        )
        start_voice(page)
        expected = {"granted": "held", "unsupported": "unsupported", "denied": "denied"}[browser_says]
        page.wait_for_function(f"({SNAPSHOT}).wakeLock === {expected!r}", timeout=10_000)
        # Refused or not, voice goes on and nobody is bothered with a notice about the screen.
        assert page.locator("[data-conn-label]").inner_text() == "Live"
        assert page.locator("[data-voice-panel] [data-notice]").is_hidden()
        shot(page, f"stage-voice-wake-lock-{browser_says}")
        page.get_by_role("button", name="Switch to typing").click()
        wait_state(page, "idle")
        assert snapshot(page)["wakeLock"] == ("released" if browser_says == "granted" else expected)
        assert page.locator("[data-say-form]").is_visible()
        assert not [line for line in console if line.startswith(("pageerror", "error"))], console
    finally:
        context.close()
