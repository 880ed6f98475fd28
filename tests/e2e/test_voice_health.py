"""The daily voice budget in a real browser: a player's voice turn spends it, the next voice
start is refused and the stage carries on in text mode; an admin reads why on Voice health."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ai4joy.tests.serving import run_django
from tests.e2e.conftest import PASSWORD, VOICE_USER, Stack, _stack, open_page, start_active_scene
from tests.e2e.test_voice_stage import SNAPSHOT, start_voice, wait_state

pytestmark = pytest.mark.e2e
ADMIN = "ops-admin@example.com"
_SPENT = """
import json
from audio.budget import budget_state
state = budget_state(fresh=True)
print(json.dumps({"spent": state.spent_usd, "tripped": state.tripped}))
"""
_MAKE_ADMIN = """
import json
from django.contrib.auth import get_user_model
get_user_model().objects.create_superuser(username={email!r}, email={email!r}, password={password!r})
print(json.dumps({{"ok": True}}))
"""


@pytest.fixture(scope="module")
def budget_stack(tmp_path_factory: pytest.TempPathFactory, migrated_db: Path, emulator) -> Iterator[Stack]:
    """Voice for everyone, and a daily voice budget one spoken turn uses up."""
    stack = _stack(
        tmp_path_factory.mktemp("budget-stack"),
        migrated_db,
        emulator,
        rollout_percent=100,
        extra_env={"VOICE_DAILY_BUDGET_USD": "0.0002", "VOICE_BUDGET_CACHE_S": "0"},
    )
    run_django(_MAKE_ADMIN.format(email=ADMIN, password=PASSWORD), stack.env)
    yield stack
    stack.stop()


def test_spent_budget_refuses_new_voice_keeps_text_and_voice_health_says_why(budget_stack, browser, shot):
    context, page = open_page(browser, budget_stack.url, VOICE_USER)
    try:
        start_active_scene(page, budget_stack.url)
        start_voice(page)
        # One full spoken turn: the latency readout shows a number once the partner has answered.
        page.wait_for_function(
            "/\\d+ ms/.test(document.querySelector('[data-latency]').textContent)", timeout=60_000
        )
        # A turn the partner finished (not a barge-in) carries usage: then the budget is spent.
        deadline = time.monotonic() + 60
        while not (spent := run_django(_SPENT, budget_stack.env))["tripped"]:
            assert time.monotonic() < deadline, f"budget never spent: {spent}"
            time.sleep(1)
        # The live session is not cut off by it.
        assert page.locator("[data-voice-panel]").get_attribute("data-state") == "live"
        assert page.evaluate(SNAPSHOT)["framesSent"] > 0

        page.get_by_role("button", name="Switch to typing").click()
        wait_state(page, "idle")
        page.get_by_role("button", name=re.compile("Switch to voice")).click()
        notice = page.locator("[data-voice-panel] [data-notice]")
        notice.wait_for(state="visible", timeout=15_000)
        assert "Voice is paused for today" in notice.inner_text()
        assert "carry on by typing" in notice.inner_text()
        wait_state(page, "idle")  # the stage switched itself to text mode...
        assert page.locator("[data-say-form]").is_visible()
        # ...and offers no voice retry today (it could not help until the budget resets).
        assert not page.get_by_role("button", name=re.compile("voice", re.I)).is_visible()
        shot(page, "stage-voice-budget-reached")
    finally:
        context.close()

    # The live session kept talking after the trip (allowed), so read the final spend now.
    spent = run_django(_SPENT, budget_stack.env)
    context, admin = open_page(browser, budget_stack.url, None)
    try:
        admin.goto(f"{budget_stack.url}/admin/login/?next=/admin/")
        admin.fill("#id_username", ADMIN)
        admin.fill("#id_password", PASSWORD)
        admin.locator("input[type=submit]").click()
        admin.wait_for_url(f"{budget_stack.url}/admin/")
        admin.get_by_role("link", name="Voice health").click()
        admin.wait_for_url("**/admin/audio/voicehealth/")
        banner = admin.locator("#budget").inner_text()
        assert "Voice budget reached:" in banner
        assert f"${spent['spent']:.4f} of $0.0002 spent today" in banner
        assert "New voice sessions are refused" in banner
        assert admin.locator("#live-count").inner_text() == "0"
        table = admin.locator("#voice-health").inner_text()
        assert re.search(r"First audio p50 / p95 / p99\s+(\d+ / \d+ / \d+ ms)", table), table
        assert re.search(r"Sessions started\s+1\s+1\s+1", table), table
        assert admin.locator("#rollout-state").inner_text().startswith("100% (everyone)")
        assert "too few sessions" in admin.locator("#guard").inner_text()
        shot(admin, "admin-voice-health")
    finally:
        context.close()
