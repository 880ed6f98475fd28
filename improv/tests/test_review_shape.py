"""The scene's shape through the app: API timeline, the coach's review grounded in measured facts,
the review page's figures and tables, and the history sparkline (Gemini on the emulator)."""

from __future__ import annotations

import re

import pytest

from improv.store import get_store
from improv.tests.conftest import play_to_active

pytestmark = pytest.mark.django_db


def play_text_scene(api, lines: int = 3) -> str:
    sid = play_to_active(api)["id"]
    for n in range(lines):
        r = api.post(f"/scenes/{sid}/turns", {"text": f"Line {n}: the moon bakery needs a new oven today"})
        assert r.status_code == 200, r.content
    return sid


def test_scene_detail_exposes_the_timeline_and_the_schema_documents_it(api, gemini, client):
    sid = play_text_scene(api)
    scene = api.get(f"/scenes/{sid}").json()
    timeline = scene["timeline"]
    roles = [s["role"] for s in timeline["segments"]]
    assert roles == ["user", "partner"] * 3
    turn_indexes = {t["index"] for t in scene["turns"]}
    assert all(s["index"] in turn_indexes for s in timeline["segments"])
    assert all(s["estimated"] for s in timeline["segments"])  # typed: placed at speaking pace
    assert all(s["response_ms"] is not None for s in timeline["segments"] if s["role"] == "partner")
    facts = timeline["facts"]
    assert facts["user_lines"] == 3 and facts["partner_lines"] == 3
    assert 0 < facts["user_share"] < 1 and facts["average_response_ms"] is not None

    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert "timeline" in schema["SceneOut"]["properties"]
    assert set(schema["SegmentOut"]["properties"]) == {
        "index", "role", "start_s", "end_s", "cut_off", "response_ms", "estimated"}
    assert {"user_share", "partner_cut_off_by_user", "longest_silence_s", "average_response_ms"} <= set(
        schema["SceneFactsOut"]["properties"])


def test_the_coachs_review_cites_a_measured_fact(api, gemini):
    sid = play_text_scene(api)
    facts = api.get(f"/scenes/{sid}").json()["timeline"]["facts"]
    closed = api.post(f"/scenes/{sid}/end").json()
    feedback = closed["review"]["overall_feedback"]
    # The emulator, like the real model, is handed the facts and asked to cite one.
    share = round(facts["user_share"] * 100)
    cited = [f"You spoke {share}% of the time", f"You spoke only {share}% of the time",
             f"Your longest silence was {facts['longest_silence_s']:.1f} s"]
    assert any(c in feedback for c in cited), feedback
    saved = get_store().scene_get(sid).state["shape"]
    assert saved["facts"] == closed["timeline"]["facts"] and len(saved["segments"]) == 6


def test_review_page_draws_the_timeline_with_its_table_and_history_has_a_sparkline(api, gemini):
    sid = play_text_scene(api, lines=2)
    api.post(f"/scenes/{sid}/end")
    page = api.client.get(f"/scenes/{sid}/review/").content.decode()
    assert "The shape of your scene" in page
    assert len(re.findall(r'<rect class="tl-seg', page)) == 4
    table = page[page.index('data-testid="timeline-table"'):]
    table = table[: table.index("</table>")]
    assert table.count('<tr data-role="user">') == 2 and table.count('<tr data-role="partner">') == 2
    assert re.search(r'data-fact="user_share">\d+%<', page)
    history = api.client.get("/scenes/").content.decode()
    assert 'class="sparkline"' in history and "you spoke" in history
