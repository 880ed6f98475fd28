"""The one write path of a voice turn, called by the voice relay once per completed exchange
(never per audio frame).

While the scene is `active` it saves the turn's lines and advances the scene exactly
like a text turn (turn count, partner phase, room vibe, coach notes at turn 5 and every 5th
turn, scene_complete at the last turn) and returns a TurnOutcome whose `room` and `coach` the
relay sends to the browser.

- `avoice_turn_record` (async, the relay's): ONE generate_content per completed turn (room vibe,
  plus the coach note when one is due), falling back to the rules if the model is unavailable.
  Store calls cross through `improv.store.store_call` (database_sync_to_async), as everywhere
  on the voice path.
- `voice_turn_record` (sync): the same writes with the deterministic rules (improv.room_rules)
  only, no model call.

Only an `active` scene takes voice lines: outside it nothing is saved or advanced (the outcome
has `room=None`, and `scene_complete=True` once the scene is over), and nothing is raised, so a
live relay keeps running. The partner speaking on its own (no user line) is saved and counts
nothing. The user's line is saved before the model is asked; the partner's with the turn's
result (turn, phase, room), as for text turns.
Another user's scene (when `user_id` is given) raises SceneMissing before anything is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from improv import ai, lifecycle, prompts, room_rules
from improv.errors import GeminiUnavailable, SceneMissing
from improv.play import TurnOutcome, coach_dict, principle_slugs, principles_all, turn_finish
from improv.store import NewTurn, SceneRecord, get_store, store_call

log = logging.getLogger(__name__)

_MAX_VOICE_CHARS = 4000  # a long monologue is kept, but bounded


def _line(text: str) -> str:
    """A line as stored: as transcribed (the browser showed it so), trimmed and bounded."""
    return (text or "").strip()[:_MAX_VOICE_CHARS]


def _norm(text: str) -> str:
    """A line as the prompts and rules read it: whitespace collapsed."""
    return " ".join(text.split())


@dataclass(frozen=True)
class _Exchange:
    """One voice exchange as said, and what to store with each line."""

    user_text: str
    partner_text: str
    user_meta: dict[str, Any]
    partner_meta: dict[str, Any]
    interrupted: bool


@dataclass(frozen=True)
class _Prepared:
    scene: SceneRecord  # after the user's line was saved


_Request = tuple[str, list[tuple[str, str]], type[ai.RoomOnly]]  # system, messages, schema


def _exchange(
    user_text: str,
    partner_text: str,
    *,
    meta: dict[str, Any] | None,
    user_meta: dict[str, Any] | None,
    partner_meta: dict[str, Any] | None,
    latency_ms: int | None,
    interrupted: bool | None,
) -> _Exchange:
    common = dict(meta or {})
    if latency_ms is not None:
        common["latency_ms"] = int(latency_ms)
    if interrupted:
        common["interrupted"] = True
    return _Exchange(
        user_text=_line(user_text),
        partner_text=_line(partner_text),
        # The relay's own meta for the user's line is all it gets (latency and interruption
        # belong to the partner's); without one, the line gets the common meta.
        user_meta={**(meta or {}), **user_meta} if user_meta is not None else common,
        partner_meta={**common, **(partner_meta or {})},
        interrupted=bool(interrupted),
    )


def _save_lines(scene_id: str, user_id: int | None, said: _Exchange) -> _Prepared | TurnOutcome:
    """Store what was said; return what advancing needs, or the outcome when nothing advances."""
    store = get_store()
    scene = store.scene_get(scene_id)  # SceneNotFound (a StoreError): the relay logs it unsaved
    if user_id is not None and scene.user_id != user_id:
        raise SceneMissing("No such scene.")
    if scene.status != lifecycle.ACTIVE:
        # Talk before the suggestion or after the last turn is not part of the scene: nothing is
        # saved or advanced; saying so (instead of raising) keeps a live voice relay running.
        return TurnOutcome(
            scene_id=scene.id,
            turn_number=scene.turn_count,
            phase=scene.state.get("phase", lifecycle.SUPPORTIVE),
            phase_changed=False,
            status=scene.status,
            scene_complete=scene.status in (lifecycle.SCENE_COMPLETE, lifecycle.COACHING),
            room=None,
        )
    if not said.user_text:
        # The partner spoke on its own (an opening line, say): keep it, count nothing.
        partner = None
        if said.partner_text:
            partner = store.turn_append(
                scene.id,
                speaker="partner",
                text=said.partner_text,
                mode="voice",
                meta={**said.partner_meta, "turn": scene.turn_count},
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
    # The partner's line is saved by turn_finish, with the turn, phase and room it belongs to. The
    # write returns the scene as it is now (its turn_count counts this line): no second read.
    written = store.turns_append(scene.id, [NewTurn("user", said.user_text, "voice", said.user_meta)])
    return _Prepared(written.scene)


def _rules(prep: _Prepared, said: _Exchange) -> tuple[dict, dict | None]:
    scene = prep.scene
    room = room_rules.room_from_exchange(
        _norm(said.user_text),
        _norm(said.partner_text),
        previous=scene.state.get("room"),
        interrupted=said.interrupted,
    )
    coach = None
    if lifecycle.coach_note_due(scene.turn_count):
        # Only a coach note reads the scene's lines: the rules weigh all the player's lines so far.
        lines = [t.text for t in get_store().turns_list(scene.id) if t.speaker == "user"]
        coach = room_rules.coach_pick(principles_all(), turn_number=scene.turn_count, user_lines=lines)
    return room, coach


def _request(scene: SceneRecord, said: _Exchange) -> _Request:
    n = scene.turn_count
    system = prompts.room_system_instruction(suggestion=scene.suggestion, phase=lifecycle.partner_phase(n))
    schema: type[ai.RoomOnly] = ai.RoomOnly
    if lifecycle.coach_note_due(n):
        principles = principles_all()
        system += "\n\n" + prompts.coach_note_request(principles, turn_number=n)
        schema = ai.coach_schemas(principle_slugs(principles)).room
    return system, [("user", f"PLAYER: {_norm(said.user_text)}\nPARTNER: {_norm(said.partner_text)}")], schema


def _finish(prep: _Prepared, said: _Exchange, room: dict, coach: dict | None, source: str) -> TurnOutcome:
    return turn_finish(
        prep.scene,
        partner_text=said.partner_text or "…",
        mode="voice",
        room=room,
        coach=coach,
        meta={**said.partner_meta, "room_source": source},
    )


def _finish_by_rules(prep: _Prepared, said: _Exchange) -> TurnOutcome:
    room, coach = _rules(prep, said)
    return _finish(prep, said, room, coach, "rules")


def _save_and_ask(
    scene_id: str, user_id: int | None, said: _Exchange
) -> tuple[_Prepared, _Request] | TurnOutcome:
    """The lines saved and the model's request made, in one crossing onto the store's thread (the
    request reads the principles when a coach note is due)."""
    prep = _save_lines(scene_id, user_id, said)
    if isinstance(prep, TurnOutcome):
        return prep
    return prep, _request(prep.scene, said)


def voice_turn_record(
    *,
    scene_id: str,
    user_text: str,
    partner_text: str,
    meta: dict[str, Any] | None = None,
    user_meta: dict[str, Any] | None = None,
    partner_meta: dict[str, Any] | None = None,
    user_id: int | None = None,
    latency_ms: int | None = None,
    interrupted: bool | None = None,
) -> TurnOutcome:
    said = _exchange(
        user_text,
        partner_text,
        meta=meta,
        user_meta=user_meta,
        partner_meta=partner_meta,
        latency_ms=latency_ms,
        interrupted=interrupted,
    )
    prep = _save_lines(scene_id, user_id, said)
    if isinstance(prep, TurnOutcome):
        return prep
    return _finish_by_rules(prep, said)


async def avoice_turn_record(
    *,
    scene_id: str,
    user_text: str,
    partner_text: str,
    meta: dict[str, Any] | None = None,
    user_meta: dict[str, Any] | None = None,
    partner_meta: dict[str, Any] | None = None,
    user_id: int | None = None,
    latency_ms: int | None = None,
    interrupted: bool | None = None,
) -> TurnOutcome:
    said = _exchange(
        user_text,
        partner_text,
        meta=meta,
        user_meta=user_meta,
        partner_meta=partner_meta,
        latency_ms=latency_ms,
        interrupted=interrupted,
    )
    # Two crossings onto the store's thread per turn: the user's line (before the model is asked),
    # then the partner's with the turn's result.
    saved = await store_call(_save_and_ask)(scene_id, user_id, said)
    if isinstance(saved, TurnOutcome):
        return saved
    prep, (system, messages, schema) = saved
    try:
        reply = await ai.agenerate(purpose="voice_room", system=system, messages=messages, schema=schema)
    except GeminiUnavailable:
        return await store_call(_finish_by_rules)(prep, said)
    note = getattr(reply, "coach", None)
    coach = coach_dict(note) if note else None
    return await store_call(_finish)(prep, said, reply.room.model_dump(), coach, "model")
