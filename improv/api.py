"""REST endpoints for games, principles and scenes (mounted at /api/v1; OpenAPI at /api/v1/openapi.json).

Each endpoint parses, calls one service or selector, and serialises. Domain errors become
JSON {"error", "detail", ...} with 404/409/422/429/503; a 503 carries Retry-After.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from ninja import Router, Schema, Status

from improv import selectors, services
from improv.errors import ImprovError
from improv.services import TurnOutcome
from improv.store import TurnRecord

router = Router(tags=["improv"])


class ErrorOut(Schema):
    error: str
    detail: Any


ERRORS: dict[int, type[Schema]] = {c: ErrorOut for c in (400, 404, 409, 422, 429, 503)}


class GameOut(Schema):
    slug: str
    name: str
    description: str
    rules: list[str]
    difficulty: str
    energy: str
    skills: list[str]
    duration_minutes: int
    suggestion_prompt: str


class PrincipleOut(Schema):
    slug: str
    name: str
    summary: str
    examples: list[str]
    common_mistakes: list[str]
    coaching_tips: list[str]


class RoomOut(Schema):
    energy: int
    engagement: int
    mood: str
    turn: int | None = None


class TurnOut(Schema):
    index: int
    speaker: str
    text: str
    mode: str
    turn: int | None = None
    created_at: dt.datetime | None = None


class CoachNoteOut(Schema):
    turn: int | None
    principle: str
    principle_name: str = ""
    text: str


class SegmentOut(Schema):
    """One line on the scene's timeline; `index` is the turn's index in `turns`."""

    index: int
    role: str
    start_s: float
    end_s: float
    cut_off: bool
    response_ms: int | None
    estimated: bool


class SceneFactsOut(Schema):
    user_lines: int
    partner_lines: int
    user_talk_s: float
    partner_talk_s: float
    user_share: float
    partner_cut_off_by_user: int
    user_cut_off_by_partner: int
    partner_cut_offs_second_half: int
    longest_silence_s: float
    average_response_ms: int | None
    duration_s: float


class TimelineOut(Schema):
    """Who spoke when (seconds from the scene's first line), and the facts measured from it."""

    facts: SceneFactsOut
    segments: list[SegmentOut]


class SceneSummaryOut(Schema):
    id: str
    status: str
    game: str
    suggestion: str
    mode: str
    turn_count: int
    created_at: dt.datetime | None
    last_activity_at: dt.datetime | None
    ended_at: dt.datetime | None
    url: str


class SceneOut(SceneSummaryOut):
    status_label: str
    game_name: str
    turns_total: int
    phase: str
    pending_reply: bool
    actions: list[str]
    room: RoomOut | None
    room_history: list[RoomOut]
    coach_notes: list[CoachNoteOut]
    review: dict[str, Any] | None
    turns: list[TurnOut]
    timeline: TimelineOut


class TurnResultOut(Schema):
    turn_number: int
    phase: str
    phase_changed: bool
    status: str
    scene_complete: bool
    partner: TurnOut | None
    room: RoomOut | None
    coach_notes: list[CoachNoteOut]
    scene: SceneOut


class SceneCreateIn(Schema):
    game: str = ""


class ChooseGameIn(Schema):
    game: str


class LineIn(Schema):
    text: str


def _errors(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return view(request, *args, **kwargs)
        except ImprovError as exc:
            response = JsonResponse(exc.as_json(), status=exc.status)
            if "retry_after" in exc.extra:
                response["Retry-After"] = str(exc.extra["retry_after"])
            return response

    return wrapper


def _turn(t: TurnRecord) -> dict[str, Any]:
    return {
        "index": t.index,
        "speaker": t.speaker,
        "text": t.text,
        "mode": t.mode,
        "turn": t.meta.get("turn"),
        "created_at": t.created_at,
    }


def _summary(scene: Any) -> dict[str, Any]:
    return {
        "id": scene.id,
        "status": scene.status,
        "game": scene.game_slug,
        "suggestion": scene.suggestion,
        "mode": scene.mode,
        "turn_count": scene.turn_count,
        "created_at": scene.created_at,
        "last_activity_at": scene.last_activity_at,
        "ended_at": scene.ended_at,
        "url": reverse("scene-stage", args=[scene.id]),
    }


def _scene(scene: Any) -> dict[str, Any]:
    view = selectors.scene_view(scene)
    return {
        **_summary(scene),
        "status_label": view.status_label,
        "game_name": view.game.name if view.game else "",
        "turns_total": view.turns_total,
        "phase": view.phase,
        "pending_reply": view.pending_reply,
        "actions": sorted(view.actions),
        "room": view.room,
        "room_history": view.room_history,
        "coach_notes": view.coach_notes,
        "review": view.review,
        "turns": [_turn(t) for t in view.transcript],
        "timeline": {
            "facts": view.timeline.facts.as_dict(),
            "segments": [
                {
                    "index": seg.index,
                    "role": seg.role,
                    "start_s": seg.start_s,
                    "end_s": seg.end_s,
                    "cut_off": seg.cut_off,
                    "response_ms": seg.response_ms,
                    "estimated": seg.estimated,
                }
                for seg in view.timeline.segments
            ],
        },
    }


def _result(outcome: TurnOutcome, user: Any) -> dict[str, Any]:
    names = selectors.principle_names()
    scene = selectors.scene_for_user(scene_id=outcome.scene_id, user=user)
    return {
        "turn_number": outcome.turn_number,
        "phase": outcome.phase,
        "phase_changed": outcome.phase_changed,
        "status": outcome.status,
        "scene_complete": outcome.scene_complete,
        "partner": _turn(outcome.partner) if outcome.partner else None,
        "room": outcome.room,
        "coach_notes": [{**n, "principle_name": names.get(n["principle"], "")} for n in outcome.coach_notes],
        "scene": _scene(scene),
    }


@router.get("/games", response=list[GameOut], summary="Improv games")
def games(request: HttpRequest) -> Any:
    return selectors.games_list()


@router.get("/principles", response=list[PrincipleOut], summary="Improv principles with coaching tips")
def principles(request: HttpRequest) -> Any:
    return selectors.principles_list()


@router.get("/scenes", response=list[SceneSummaryOut], summary="My scenes, newest first")
def scene_list(request: HttpRequest, limit: int = 20, offset: int = 0) -> Any:
    limit, offset = max(1, min(limit, 100)), max(0, offset)
    return [_summary(s) for s in selectors.scenes_history(user=request.user, limit=limit, offset=offset)]


@router.post("/scenes", response={201: SceneOut, **ERRORS}, summary="Start a scene (the MC welcomes you)")
@_errors
def scene_create(request: HttpRequest, body: SceneCreateIn) -> Any:
    return Status(201, _scene(services.scene_start(user=request.user, game_slug=body.game.strip())))


@router.get("/scenes/{scene_id}", response={200: SceneOut, **ERRORS}, summary="A scene: turns, room, coach")
@_errors
def scene_detail(request: HttpRequest, scene_id: str) -> Any:
    return _scene(selectors.scene_for_user(scene_id=scene_id, user=request.user))


@router.post("/scenes/{scene_id}/game", response={200: SceneOut, **ERRORS}, summary="Choose the game")
@_errors
def scene_game(request: HttpRequest, scene_id: str, body: ChooseGameIn) -> Any:
    return _scene(
        services.scene_choose_game(user=request.user, scene_id=scene_id, game_slug=body.game.strip())
    )


@router.post(
    "/scenes/{scene_id}/suggestion",
    response={200: SceneOut, **ERRORS},
    summary="Take the audience's suggestion and start the scene",
)
@_errors
def scene_suggestion(request: HttpRequest, scene_id: str) -> Any:
    return _scene(services.scene_take_suggestion(user=request.user, scene_id=scene_id))


@router.post("/scenes/{scene_id}/turns", response={200: TurnResultOut, **ERRORS}, summary="Say a line")
@_errors
def scene_turn(request: HttpRequest, scene_id: str, body: LineIn) -> Any:
    return _result(
        services.turn_text_record(user=request.user, scene_id=scene_id, text=body.text), request.user
    )


@router.post(
    "/scenes/{scene_id}/turns/retry",
    response={200: TurnResultOut, **ERRORS},
    summary="Ask the partner again for a reply that failed",
)
@_errors
def scene_turn_retry(request: HttpRequest, scene_id: str) -> Any:
    return _result(services.turn_retry(user=request.user, scene_id=scene_id), request.user)


@router.post(
    "/scenes/{scene_id}/end",
    response={200: SceneOut, **ERRORS},
    summary="End the scene and get the coach's review",
)
@_errors
def scene_finish(request: HttpRequest, scene_id: str) -> Any:
    return _scene(services.scene_end(user=request.user, scene_id=scene_id))
