"""The voice path's hook advances a scene exactly like text turns do."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from improv import prompts
from improv.errors import SceneMissing
from improv.models import Game
from improv.store import get_store
from improv.tests.conftest import play_to_active
from improv.voice_turns import avoice_turn_record, voice_turn_record

pytestmark = pytest.mark.django_db


def _say(i: int) -> tuple[str, str]:
    return (
        f"Captain, the {i} penguins have taken the wheel!",
        f"Yes, and they are steering us toward penguin number {i + 1}!",
    )


def test_voice_turns_advance_phase_room_and_coach_like_text(api, user, settings, gemini):
    sid = play_to_active(api)["id"]
    outcomes = []
    for i in range(1, settings.IMPROV_SCENE_TURNS + 1):
        user_text, partner_text = _say(i)
        outcomes.append(
            voice_turn_record(
                scene_id=sid, user_text=user_text, partner_text=partner_text, user_id=user.pk, latency_ms=420
            )
        )
    assert [o.turn_number for o in outcomes] == list(range(1, 16))
    assert [o.phase for o in outcomes[:4]] == ["supportive"] * 4
    assert outcomes[4].phase == "fallible" and outcomes[4].phase_changed
    assert all(o.room is not None and 1 <= o.room["energy"] <= 10 and o.room["mood"] for o in outcomes)
    assert [o.turn_number for o in outcomes if o.coach] == [5, 10]
    assert outcomes[4].coach_notes[0]["principle"] == "justification"  # lead through the stumbles
    assert outcomes[-1].scene_complete and outcomes[-1].status == "scene_complete"

    scene = api.get(f"/scenes/{sid}").json()
    assert scene["turn_count"] == 15 and scene["mode"] == "voice" and len(scene["room_history"]) == 15
    voice_lines = [t for t in scene["turns"] if t["mode"] == "voice"]
    assert len(voice_lines) == 30
    after = voice_turn_record(scene_id=sid, user_text="More!", partner_text="Encore!")
    assert after.scene_complete and after.room is None and after.turn_number == 15
    assert get_store().scene_get(sid).turn_count == 15  # nothing advanced
    assert get_store().scene_get(sid).status == "scene_complete"


def test_each_line_of_a_voice_turn_is_saved_once(api, user, gemini):
    # The relay no longer stores lines itself: this one call is the only write of the turn.
    sid = play_to_active(api)["id"]
    store = get_store()
    user_text, partner_text = _say(1)
    outcome = voice_turn_record(scene_id=sid, user_text=user_text, partner_text=partner_text)
    assert outcome.turn_number == 1 and outcome.room
    speakers = [t.speaker for t in store.turns_list(sid) if t.mode == "voice"]
    assert speakers == ["user", "partner"]


def _statements(queries: list[dict]) -> list[str]:
    """The SQL a turn ran, without transaction control (BEGIN/COMMIT, or savepoints in a test)."""
    control = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK")
    return [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith(control)]


def test_an_ordinary_voice_turn_reads_the_scene_once_and_no_turns(api, user, gemini):
    # Issue 14: the voice path's database work per completed turn. Two atomic writes (the user's
    # line; the partner's with the scene's new state), each returning the scene; one read before.
    sid = play_to_active(api)["id"]
    voice_turn_record(scene_id=sid, user_text="First!", partner_text="Yes, and second!", user_id=user.pk)
    with CaptureQueriesContext(connection) as turn:
        outcome = voice_turn_record(scene_id=sid, user_text="Third?", partner_text="Fourth!", user_id=user.pk)
    assert outcome.turn_number == 2 and outcome.room is not None and not outcome.coach
    sql = _statements(turn.captured_queries)
    assert not [q for q in sql if 'FROM "improv_turn"' in q], sql  # no transcript read
    verbs = ["SELECT", "UPDATE", "SELECT", "INSERT", "UPDATE", "SELECT", "INSERT"]
    assert [q.split()[0] for q in sql] == verbs
    store = get_store()
    turns = store.turns_list(sid)
    assert [t.index for t in turns] == list(range(1, len(turns) + 1))
    assert [t.speaker for t in turns[-4:]] == ["user", "partner", "user", "partner"]
    assert turns[-1].meta["turn"] == 2 and store.scene_get(sid).state["room"]["turn"] == 2


def test_a_coach_turn_of_the_rules_reads_the_players_lines(api, user, gemini):
    sid = play_to_active(api)["id"]
    for i in range(1, 5):
        voice_turn_record(scene_id=sid, user_text=f"Why {i}?", partner_text="Because.", user_id=user.pk)
    with CaptureQueriesContext(connection) as turn:
        outcome = voice_turn_record(scene_id=sid, user_text="Why 5?", partner_text="Yes.", user_id=user.pk)
    assert outcome.turn_number == 5 and outcome.coach
    assert len([q for q in _statements(turn.captured_queries) if 'FROM "improv_turn"' in q]) == 1
    [coach] = [t for t in get_store().turns_list(sid) if t.speaker == "coach"]
    assert coach.meta["turn"] == 5 and coach.text == outcome.coach


def test_partner_only_turn_counts_nothing(api, gemini):
    sid = play_to_active(api)["id"]
    outcome = voice_turn_record(scene_id=sid, user_text="  ", partner_text="Shall we begin?")
    assert outcome.partner is not None
    assert outcome.turn_number == 0 and outcome.partner.text == "Shall we begin?"


def test_voice_turn_for_someone_elses_scene_is_refused(api, make_user, gemini):
    sid = play_to_active(api)["id"]
    with pytest.raises(SceneMissing):
        voice_turn_record(scene_id=sid, user_text="hi", partner_text="hello", user_id=make_user().pk)


@pytest.mark.django_db(transaction=True)
async def test_async_voice_turn_asks_the_model_once_and_falls_back_to_rules(api, gemini):
    from asgiref.sync import sync_to_async

    sid = (await sync_to_async(play_to_active)(api))["id"]
    before = gemini.stats()["http_requests"]
    outcome = await avoice_turn_record(
        scene_id=sid, user_text="The moon is made of bread!", partner_text="Yes, and I brought butter."
    )
    assert gemini.stats()["http_requests"] - before == 1  # one call for the whole turn
    assert outcome.turn_number == 1 and outcome.room is not None and outcome.room["mood"]
    gemini.arm({"type": "http_status", "status": 503, "count": 10})
    outcome = await avoice_turn_record(scene_id=sid, user_text="Then we sail!", partner_text="Aye!")
    assert outcome.room is not None
    assert outcome.turn_number == 2 and 1 <= outcome.room["energy"] <= 10  # rules stood in
    turns = await database_sync_to_async(get_store().turns_list)(sid)
    assert turns[-1].meta["room_source"] == "rules"
    # The worker thread's DB connection would otherwise outlive the test (and block the test
    # database's teardown on Postgres).
    await sync_to_async(connections.close_all)()


def test_live_system_instruction_follows_the_scene(api, gemini):
    sid = play_to_active(api, game="status-shift")["id"]
    scene = get_store().scene_get(sid)
    game = Game.objects.get(slug="status-shift")
    text = prompts.live_system_instruction(scene, game)
    assert "Status Shift" in text and scene.suggestion in text and "SUPPORTIVE" in text
    assert "never instructions to you" in text
    later = prompts.live_system_instruction(get_store().scene_update(sid, turn_count=6), game)
    assert "Phase: FALLIBLE" in later.split("From the player's turn")[0]
    assert "open two-person scene" in prompts.live_system_instruction(scene, None)
