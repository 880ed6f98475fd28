"""How a turn is played: the partner's reply, the room, coach notes, and the end-of-scene review.

Text turns (services) and voice turns (voice_turns) both finish through `turn_finish`, so the
turn count, partner phase, room vibe and coach notes advance the same way in both modes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from django.utils import timezone

from improv import ai, lifecycle, prompts
from improv.models import Game, Principle
from improv.store import NewTurn, SceneRecord, TurnRecord, get_store
from improv.timeline import Facts, facts_for_coach


@dataclass(frozen=True)
class TurnOutcome:
    """What one completed turn changed; the API, the pages and the voice relay all show this."""

    scene_id: str
    turn_number: int
    phase: str
    phase_changed: bool
    status: str
    scene_complete: bool
    room: dict[str, Any] | None
    partner: TurnRecord | None = None
    coach_notes: list[dict[str, Any]] = field(default_factory=list)
    coach: str = ""  # the newest coach note's text ("" if none): the voice relay's `coach` message


def principles_all() -> list[Principle]:
    return list(Principle.objects.all())


def principle_slugs(principles: list[Principle]) -> tuple[str, ...]:
    return tuple(p.slug for p in principles) or ("yes-and",)


def _history(turns: list[TurnRecord]) -> list[tuple[str, str]]:
    # The last 24 exchanges are plenty of context for a 15-turn scene and bound the prompt size.
    lines = [
        (("user" if t.speaker == "user" else "model"), t.text)
        for t in turns
        if t.speaker in ("user", "partner")
    ]
    lines = lines[-24:]
    while lines and lines[0][0] == "model":  # a conversation opens with the player's turn
        lines.pop(0)
    return lines


def partner_reply(scene: SceneRecord) -> TurnOutcome:
    store = get_store()
    turns = store.turns_list(scene.id)
    n = scene.turn_count
    phase = lifecycle.partner_phase(n)
    principles = principles_all()
    system = prompts.partner_system_instruction(
        game=Game.objects.by_slug(scene.game_slug),
        suggestion=scene.suggestion,
        phase=phase,
        turn_number=n,
        total_turns=lifecycle.scene_turns(),
    )
    schema: type[ai.PartnerTurn] = ai.PartnerTurn
    if lifecycle.coach_note_due(n):
        system += "\n\n" + prompts.coach_note_request(principles, turn_number=n)
        schema = ai.coach_schemas(principle_slugs(principles)).partner_turn
    started = timezone.now()
    reply = ai.generate(purpose="partner", system=system, messages=_history(turns), schema=schema)
    latency_ms = int((timezone.now() - started).total_seconds() * 1000)
    coach = getattr(reply, "coach", None)
    return turn_finish(
        scene,
        partner_text=reply.line.strip(),
        mode="text",
        room=reply.room.model_dump(),
        coach=coach_dict(coach) if coach else None,
        meta={"latency_ms": latency_ms},
    )


def coach_dict(note: Any) -> dict[str, Any]:
    slug = getattr(note.principle, "value", note.principle)
    return {"principle": slug, "text": note.note.strip()}


ROOM_HISTORY_MAX = 60


def turn_finish(
    scene: SceneRecord,
    *,
    partner_text: str,
    mode: str,
    room: dict[str, Any],
    coach: dict[str, Any] | None,
    meta: dict[str, Any],
) -> TurnOutcome:
    """Record the partner's answer to user turn `scene.turn_count` and advance the scene."""
    store = get_store()
    n = scene.turn_count
    phase = lifecycle.partner_phase(n)
    previous_phase = scene.state.get("phase", lifecycle.SUPPORTIVE)
    room = {
        "energy": int(room["energy"]),
        "engagement": int(room["engagement"]),
        "mood": str(room["mood"])[:40],
        "turn": n,
    }
    lines = [NewTurn("partner", partner_text, mode, {**meta, "turn": n, "phase": phase, "room": room})]
    notes: list[dict[str, Any]] = []
    if coach:
        lines.append(
            NewTurn("coach", coach["text"], meta={"turn": n, "principle": coach["principle"], "kind": "note"})
        )
        notes.append({"turn": n, **coach})
    complete = lifecycle.scene_is_complete(n)
    status = lifecycle.SCENE_COMPLETE if complete else scene.status
    if complete:
        lines.append(NewTurn("mc", prompts.mc_scene_over()))
    history = [*scene.state.get("room_history", []), room][-ROOM_HISTORY_MAX:]
    # The answer, its coach note, the MC's curtain and the scene's new state: one atomic write.
    written = store.turns_append(
        scene.id,
        lines,
        scene_fields={
            "status": status,
            "mode": mode,
            "state": {**scene.state, "phase": phase, "room": room, "room_history": history},
        },
    )
    partner = written.turns[0]
    return TurnOutcome(
        scene_id=scene.id,
        turn_number=n,
        phase=phase,
        phase_changed=phase != previous_phase,
        status=status,
        scene_complete=complete,
        room=room,
        partner=partner,
        coach_notes=notes,
        coach=notes[-1]["text"] if notes else "",
    )


def review_write(scene: SceneRecord, turns: list[TurnRecord], facts: Facts) -> dict[str, Any]:
    """The coach's full review, grounded in the transcript and the scene's measured facts."""
    principles = principles_all()
    names = {p.slug: p.name for p in principles}
    schema = ai.coach_schemas(principle_slugs(principles)).review
    review = cast(
        "ai.CoachReviewReply",
        ai.generate(
            purpose="review",
            system=prompts.review_system_instruction(
                principles, game=Game.objects.by_slug(scene.game_slug), suggestion=scene.suggestion
            ),
            messages=[("user", prompts.transcript_text(turns) + "\n\n" + facts_for_coach(facts))],
            schema=schema,
        ),
    )

    def notes(items: list[Any]) -> list[dict[str, str]]:
        out = []
        for item in items:
            slug = getattr(item.principle, "value", item.principle)
            out.append(
                {"principle": slug, "principle_name": names.get(slug, slug), "text": item.note.strip()}
            )
        return out

    return {
        "overall_feedback": review.overall_feedback.strip(),
        "strengths": notes(review.strengths),
        "growth": notes(review.growth),
        "next_tip": review.next_tip.strip(),
        "created_at": timezone.now().isoformat(),
    }
