"""The review's scene shape in a real browser: a scripted voice scene (the fake microphone says two
lines, the second over the partner) and a typed one, each drawn as a timeline with its tables."""

from __future__ import annotations

import re

import pytest

from ai4joy.tests.serving import run_django
from tests.e2e.conftest import TEXT_USER, VOICE_USER, open_page, start_active_scene
from tests.e2e.test_voice_stage import SNAPSHOT, start_voice

pytestmark = pytest.mark.e2e

SAVED_TURNS = """
import json
from improv.store import get_store
lines = [t for t in get_store().turns_list({scene_id!r}) if t.speaker in ("user", "partner")]
print(json.dumps([{{"speaker": t.speaker, "meta": t.meta}} for t in lines]))
"""


def saved_turns(stack, scene_id: str) -> list[dict]:
    return run_django(SAVED_TURNS.format(scene_id=scene_id), stack.env)


def table_rows(page) -> list[dict[str, str]]:
    """The accessible table under the chart, one dict per line, keyed by its column headers."""
    table = page.locator("[data-testid=timeline-table]")
    headers = [h.text_content().strip() for h in table.locator("thead th").all()]
    return [
        dict(zip(headers, [c.text_content().strip() for c in row.locator("th, td").all()], strict=True))
        for row in table.locator("tbody tr").all()
    ]


def fact(page, name: str) -> str:
    return page.locator(f"[data-fact={name}]").inner_text().strip()


def test_a_voice_scene_with_a_barge_in_is_drawn_from_its_saved_timings(voice_stack, browser, shot):
    context, page = open_page(browser, voice_stack.url, VOICE_USER)
    try:
        start_active_scene(page, voice_stack.url)
        scene_id = page.locator("#stage").get_attribute("data-scene-id")
        start_voice(page)
        # Line A, the partner's answer cut off by line B, then the answer to B in full: end the
        # scene as that second turn completes, before the microphone's recording loops.
        page.wait_for_function(
            f"({SNAPSHOT}).interrupts >= 1 && ({SNAPSHOT}).latencies.server.length >= 2", timeout=60_000
        )
        page.get_by_role("button", name=re.compile("End scene")).click()
        page.wait_for_url("**/review/", timeout=40_000)

        turns = saved_turns(voice_stack, scene_id)
        timed = [t for t in turns if "started_at" in t["meta"] and "ended_at" in t["meta"]]
        assert len(timed) == len(turns), turns  # every voice line was saved with its timing
        talk = {
            role: sum(t["meta"]["ended_at"] - t["meta"]["started_at"] for t in timed if t["speaker"] == role)
            for role in ("user", "partner")
        }
        share = talk["user"] / (talk["user"] + talk["partner"])
        # Measured, not guessed: the partner answers after line A ends, and line B starts before
        # the partner has finished (that is what cut it off).
        assert [t["speaker"] for t in timed] == ["user", "partner", "user", "partner"], turns
        (u1s, u1e), (p1s, p1e), (u2s, u2e), (p2s, _) = [
            (t["meta"]["started_at"], t["meta"]["ended_at"]) for t in timed
        ]
        assert u1s < u1e <= p1s < p1e and p1s < u2s <= p1e and u2e <= p2s, timed

        shape = page.get_by_role("region", name="The shape of your scene")
        assert shape.is_visible()
        assert fact(page, "user_lines") == "2"
        assert fact(page, "partner_cut_off_by_user") == "1"
        assert fact(page, "user_share") == f"{share:.0%}"  # the page's share is the saved timings'
        chart = shape.get_by_role("img", name="Scene timeline")
        assert chart.is_visible()
        assert page.locator("svg.timeline .tl-user").count() == 2
        assert page.locator("svg.timeline .tl-partner.tl-cut").count() == 1

        shape.get_by_text("The same as tables").click()
        rows = table_rows(page)
        assert [r["Who"] for r in rows].count("You") == 2
        cut = [r for r in rows if r["Who"] == "Partner" and r["Cut off"] == "yes"]
        assert len(cut) == 1, rows
        assert all(re.fullmatch(r"\d+ ms", r["Response time"]) for r in rows if r["Who"] == "Partner"), rows
        # The table's seconds are the saved wall-clock times, relative to the first line.
        origin = min(t["meta"]["started_at"] for t in timed)
        for row, turn in zip(rows, timed, strict=True):
            assert float(row["From (s)"]) == pytest.approx(turn["meta"]["started_at"] - origin, abs=0.06)
            assert float(row["To (s)"]) == pytest.approx(turn["meta"]["ended_at"] - origin, abs=0.06)
        desktop_label = page.locator("svg.timeline .tl-label", has_text="Partner").bounding_box()
        shot(page, "review-voice-timeline")

        page.set_viewport_size({"width": 390, "height": 844})  # a phone: the page never scrolls sideways
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # ...and the chart's lettering keeps a legible scale (the chart scrolls inside its figure
        # instead of being squeezed to a third of its width).
        label = page.locator("svg.timeline .tl-label", has_text="Partner").bounding_box()
        assert label["width"] >= 0.7 * desktop_label["width"], (label, desktop_label)
        scroller = shape.get_by_role("group", name="Scene timeline")
        assert scroller.get_attribute("tabindex") == "0"  # reachable by keyboard to scroll it
        shot(page, "review-voice-timeline-phone")
    finally:
        context.close()


def test_a_typed_scene_gets_its_timeline_too(text_stack, browser, shot):
    context, page = open_page(browser, text_stack.url, TEXT_USER)
    try:
        start_active_scene(page, text_stack.url)
        for line in ("The museum's dinosaur wants a day off.", "Then we'll cover its shift, in costume."):
            page.fill("[data-say-form] textarea", line)
            page.locator("[data-say-form] button[type=submit]").click()
            page.wait_for_load_state()
        page.get_by_role("button", name="End scene and get coaching").click()
        page.wait_for_url("**/review/", timeout=30_000)
        shape = page.get_by_role("region", name="The shape of your scene")
        assert shape.is_visible()
        assert fact(page, "user_lines") == "2"
        assert fact(page, "partner_cut_off_by_user") == "0"
        assert re.fullmatch(r"\d+%", fact(page, "user_share"))
        assert shape.get_by_role("img", name="Scene timeline").is_visible()
        assert "Typed lines are drawn at speaking pace" in shape.inner_text()
        shape.get_by_text("The same as tables").click()
        rows = table_rows(page)
        assert [r["Who"] for r in rows] == ["You", "Partner", "You", "Partner"]
        # The coach's review cites one of the measured facts.
        overall = page.locator(".review .lede").inner_text()
        cited = r"You spoke (only )?\d+% of the time|Your longest silence was [\d.]+ s"
        assert re.search(cited, overall), overall
        shot(page, "review-text-timeline")
    finally:
        context.close()
