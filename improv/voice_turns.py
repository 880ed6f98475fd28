"""The voice path's hook, called once per completed voice exchange (never per audio frame).

It advances the scene exactly like a text turn (turn count, partner phase, room vibe, coach
notes at turn 5 and every 5th turn, scene_complete at the last turn) and returns a TurnOutcome
whose `room` and `coach` the relay sends to the browser.

- `voice_turn_record` (sync): deterministic rules (improv.room_rules) for the room and the coach
  note. DB writes only, no model call, so it is safe behind `sync_to_async` in a consumer.
- `avoice_turn_record` (async): ONE generate_content per completed turn (room vibe, plus the
  coach note when one is due), falling back to the same rules if the model is unavailable.

If the relay already stored the exchange (the newest user and partner turns are these texts, in
voice mode), they are not stored twice; otherwise they are stored here. Outside the `active`
status nothing advances: the outcome has `room=None` (and `scene_complete=True` once the scene
is over), and nothing is raised, so a live relay keeps running. Another user's scene (when
`user_id` is given) raises SceneMissing.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async

from improv import ai, lifecycle, prompts, room_rules
from improv.errors import GeminiUnavailable, SceneMissing
from improv.play import TurnOutcome, coach_dict, principle_slugs, principles_all, turn_finish
from improv.store import SceneNotFound, SceneRecord, TurnRecord, get_store

log = logging.getLogger(__name__)

_MAX_VOICE_CHARS = 4000  # a long monologue is kept, but bounded


def _norm(text: str) -> str:
    return " ".join((text or "").split())[:_MAX_VOICE_CHARS]


class _Prepared:
    def __init__(self, scene: SceneRecord, turns: list[TurnRecord], partner_saved: TurnRecord | None) -> None:
        self.scene, self.turns, self.partner_saved = scene, turns, partner_saved


def _already_saved(
    turns: list[TurnRecord], user_text: str, partner_text: str
) -> tuple[bool, TurnRecord | None]:
    tail = [t for t in turns if t.speaker in ("user", "partner")][-2:]
    users = [t for t in tail if t.speaker == "user"]
    if not users or _norm(users[-1].text) != user_text or users[-1].mode != "voice":
        return False, None
    partner = tail[-1] if tail[-1].speaker == "partner" and _norm(tail[-1].text) == partner_text else None
    return (partner is not None or not partner_text), partner


def _prepare(
    scene_id: str, user_id: int | None, user_text: str, partner_text: str, meta: dict[str, Any]
) -> _Prepared | TurnOutcome:
    store = get_store()
    try:
        scene = store.scene_get(scene_id)
    except SceneNotFound:
        raise SceneMissing("No such scene.") from None
    if user_id is not None and scene.user_id != user_id:
        raise SceneMissing("No such scene.")
    if scene.status != lifecycle.ACTIVE:
        # Talk before the suggestion or after the last turn advances nothing; saying so (instead
        # of raising) keeps a live voice relay running. The relay's own transcript rows stay.
        return TurnOutcome(
            scene_id=scene.id,
            turn_number=scene.turn_count,
            phase=scene.state.get("phase", lifecycle.SUPPORTIVE),
            phase_changed=False,
            status=scene.status,
            scene_complete=scene.status in (lifecycle.SCENE_COMPLETE, lifecycle.COACHING),
            room=None,
        )
    turns = store.turns_list(scene.id)
    if not user_text:
        # The partner spoke on its own (an opening line, say): keep it, count nothing.
        partner = None
        if partner_text and not (
            turns and turns[-1].speaker == "partner" and _norm(turns[-1].text) == partner_text
        ):
            partner = store.turn_append(
                scene.id,
                speaker="partner",
                text=partner_text,
                mode="voice",
                meta={**meta, "turn": scene.turn_count},
            )
        return TurnOutcome(
            scene_id=scene.id,
            turn_number=scene.turn_count,
            phase=lifecycle.partner_phase(scene.turn_count),
            phase_changed=False,
            status=scene.status,
            scene_complete=False,
            room=scene.state.get("room"),
            partner=partner,
        )
    saved, partner_saved = _already_saved(turns, user_text, partner_text)
    if not saved:
        store.turn_append(scene.id, speaker="user", text=user_text, mode="voice", meta=meta)
        scene = store.scene_get(scene.id)
        turns = store.turns_list(scene.id)
    return _Prepared(scene, turns, partner_saved)


def _rules(prep: _Prepared, user_text: str, partner_text: str, interrupted: bool) -> tuple[dict, dict | None]:
    scene = prep.scene
    room = room_rules.room_from_exchange(
        user_text, partner_text, previous=scene.state.get("room"), interrupted=interrupted
    )
    coach = None
    if lifecycle.coach_note_due(scene.turn_count):
        lines = [t.text for t in prep.turns if t.speaker == "user"]
        coach = room_rules.coach_pick(principles_all(), turn_number=scene.turn_count, user_lines=lines)
    return room, coach


def _request(
    scene: SceneRecord, user_text: str, partner_text: str
) -> tuple[str, list[tuple[str, str]], type[ai.RoomOnly]]:
    n = scene.turn_count
    system = prompts.room_system_instruction(suggestion=scene.suggestion, phase=lifecycle.partner_phase(n))
    schema: type[ai.RoomOnly] = ai.RoomOnly
    if lifecycle.coach_note_due(n):
        principles = principles_all()
        system += "\n\n" + prompts.coach_note_request(principles, turn_number=n)
        schema = ai.coach_schemas(principle_slugs(principles))[2]
    return system, [("user", f"PLAYER: {user_text}\nPARTNER: {partner_text}")], schema


def _finish(
    prep: _Prepared, partner_text: str, meta: dict[str, Any], room: dict, coach: dict | None, source: str
) -> TurnOutcome:
    return turn_finish(
        prep.scene,
        partner_text=partner_text or "…",
        mode="voice",
        room=room,
        coach=coach,
        meta={**meta, "room_source": source},
        partner_saved=prep.partner_saved,
    )


def _meta(meta: dict[str, Any] | None, latency_ms: int | None, interrupted: bool | None) -> dict[str, Any]:
    out = dict(meta or {})
    if latency_ms is not None:
        out["latency_ms"] = int(latency_ms)
    if interrupted:
        out["interrupted"] = True
    return out


def voice_turn_record(
    *,
    scene_id: str,
    user_text: str,
    partner_text: str,
    meta: dict[str, Any] | None = None,
    user_id: int | None = None,
    latency_ms: int | None = None,
    interrupted: bool | None = None,
) -> TurnOutcome:
    meta = _meta(meta, latency_ms, interrupted)
    user_text, partner_text = _norm(user_text), _norm(partner_text)
    prep = _prepare(scene_id, user_id, user_text, partner_text, meta)
    if isinstance(prep, TurnOutcome):
        return prep
    room, coach = _rules(prep, user_text, partner_text, bool(interrupted))
    return _finish(prep, partner_text, meta, room, coach, "rules")


async def avoice_turn_record(
    *,
    scene_id: str,
    user_text: str,
    partner_text: str,
    meta: dict[str, Any] | None = None,
    user_id: int | None = None,
    latency_ms: int | None = None,
    interrupted: bool | None = None,
) -> TurnOutcome:
    meta = _meta(meta, latency_ms, interrupted)
    user_text, partner_text = _norm(user_text), _norm(partner_text)
    prep = await sync_to_async(_prepare)(scene_id, user_id, user_text, partner_text, meta)
    if isinstance(prep, TurnOutcome):
        return prep
    system, messages, schema = await sync_to_async(_request)(prep.scene, user_text, partner_text)
    try:
        reply = await ai.agenerate(purpose="voice_room", system=system, messages=messages, schema=schema)
    except GeminiUnavailable:
        room, coach = await sync_to_async(_rules)(prep, user_text, partner_text, bool(interrupted))
        return await sync_to_async(_finish)(prep, partner_text, meta, room, coach, "rules")
    note = getattr(reply, "coach", None)
    coach = coach_dict(note) if note else None
    return await sync_to_async(_finish)(prep, partner_text, meta, reply.room.model_dump(), coach, "model")
