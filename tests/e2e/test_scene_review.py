"""The review shows the scene's shape: a voice scene with a barge-in and a typed scene, in Chromium."""

from __future__ import annotations

import re

import pytest

from ai4joy.tests.serving import run_django
from tests.e2e.conftest import TEXT_USER, VOICE_USER, open_page, start_active_scene
from tests.e2e.test_voice_stage import SNAPSHOT, start_voice

pytestmark = pytest.mark.e2e

SAVED_SHAPE = """
import json
from improv.store import get_store
from improv.timeline import scene_timeline
timeline = scene_timeline(get_store().turns_list({scene_id!r}))
print(json.dumps({{"facts": timeline.facts.as_dict(),
                  "segments": [[s.role, s.start_s, s.end_s, s.cut_off, s.response_ms]
                               for s in timeline.segments]}}))
"""


def saved_shape(stack, scene_url: str) -> dict:
    scene_id = scene_url.rstrip("/").rsplit("/", 1)[-1]
    return run_django(SAVED_SHAPE.format(scene_id=scene_id), stack.env)


def end_scene_and_open_review(page) -> None:
    page.get_by_role("button", name=re.compile("End scene and get coaching")).click()
    page.wait_for_url("**/review/", timeout=60_000)


def table_rows(page, role: str):
    return page.locator(f"[data-testid=timeline-table] tbody tr[data-role='{role}']")


def test_a_voice_scenes_review_draws_two_lines_and_the_partner_cut_off(voice_stack, browser, shot):
    context, page = open_page(browser, voice_stack.url, VOICE_USER)
    try:
        scene_url = start_active_scene(page, voice_stack.url)
        start_voice(page)
        # The fake microphone says line A, then line B over the partner's reply (a barge-in);
        # two saved exchanges later (the room reacts to each), the scene ends.
        page.wait_for_function(f"({SNAPSHOT}).interrupts >= 1 && ({SNAPSHOT}).rooms >= 2", timeout=60_000)
        end_scene_and_open_review(page)

        saved = saved_shape(voice_stack, scene_url)
        roles = [seg[0] for seg in saved["segments"]]
        assert roles == ["user", "partner", "user", "partner"], saved
        user1, partner1, user2, partner2 = saved["segments"]
        (_, u1s, u1e, _, _), (_, p1s, p1e, p1cut, p1rt) = user1, partner1
        (_, u2s, u2e, _, _), (_, p2s, _, p2cut, _) = user2, partner2
        # Measured, not guessed: the partner answers after the line ends, and line B starts before
        # the partner has finished (that is what cut it off).
        assert u1s < u1e <= p1s < p1e and p1cut and not p2cut, saved
        assert p1s < u2s <= p1e and u2e <= p2s, saved
        assert p1rt is not None and p1rt >= 0

        assert page.get_by_role("heading", name="The shape of your scene").is_visible()
        page.get_by_text("The same as tables").click()  # the figures as tables, for screen readers too
        assert table_rows(page, "user").count() == 2
        partner_rows = table_rows(page, "partner")
        assert partner_rows.count() == 2
        assert [partner_rows.nth(i).locator("td").nth(2).inner_text() for i in range(2)] == ["yes", "no"]
        share = page.locator("[data-fact=user_share]").inner_text()
        assert share == f"{saved['facts']['user_share']:.0%}", (share, saved["facts"])
        assert page.locator("[data-fact=partner_cut_off_by_user]").inner_text() == "1"
        assert page.locator("svg.timeline rect[data-cut-off=true]").count() == 1
        shot(page, "review-voice-timeline")
    finally:
        context.close()


def test_a_typed_scenes_review_draws_its_timeline_too(text_stack, browser, shot):
    context, page = open_page(browser, text_stack.url, TEXT_USER)
    try:
        scene_url = start_active_scene(page, text_stack.url)
        for line in ("The submarine's book club meets tonight.", "Bring the map you borrowed!"):
            page.fill("[data-say-form] textarea", line)
            page.locator("[data-say-form] button[type=submit]").click()
            page.wait_for_load_state()
        end_scene_and_open_review(page)

        saved = saved_shape(text_stack, scene_url)
        assert [seg[0] for seg in saved["segments"]] == ["user", "partner", "user", "partner"]
        assert page.get_by_role("heading", name="The shape of your scene").is_visible()
        assert table_rows(page, "user").count() == 2 and table_rows(page, "partner").count() == 2
        assert page.locator("svg.timeline rect.tl-seg").count() == 4
        assert page.locator("[data-fact=user_share]").inner_text() == f"{saved['facts']['user_share']:.0%}"
        caption = page.locator(".scene-shape figcaption").first.inner_text()
        assert "Typed lines are drawn at speaking pace." in caption
        # The coach's review cites one of the measured facts.
        overall = page.locator(".review .lede").inner_text()
        cited = r"You spoke (only )?\d+% of the time|Your longest silence was [\d.]+ s"
        assert re.search(cited, overall), overall
        shot(page, "review-text-timeline")
    finally:
        context.close()
