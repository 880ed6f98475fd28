"""Writes: start a scene, choose a game, take the audience's suggestion, play turns, end, expire.

Text and voice turns finish through the same `play.turn_finish`, so turn count, partner phase,
room vibe and coach notes advance identically in both modes.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from typing import Any

from django.conf import settings
from django.utils import timezone

from improv import ai, lifecycle, prompts, telemetry
from improv.errors import LimitReached, UnknownGame, WrongState
from improv.expiry import scene_expire, scenes_expire_stale
from improv.guard import clean_line
from improv.models import AudienceArchetype, Game
from improv.play import TurnOutcome, partner_reply, review_write
from improv.selectors import pending_reply, scene_for_user
from improv.store import SceneRecord, get_store
from improv.timeline import scene_timeline, shape

log = logging.getLogger(__name__)


# --- scene lifecycle -----------------------------------------------------------------------------


def scene_start(*, user: Any, game_slug: str = "") -> SceneRecord:
    """A new scene: the MC welcomes the player; with a game it goes straight to the suggestion."""
    game = Game.objects.by_slug(game_slug) if game_slug else None
    if game_slug and (game is None or not game.is_active):
        raise UnknownGame(f"There is no game called {game_slug!r}.")
    scenes_expire_stale()
    store = get_store()
    day_limit, open_limit = int(settings.IMPROV_SCENES_PER_DAY), int(settings.IMPROV_MAX_OPEN_SCENES)
    if store.scenes_started_since(user.pk, timezone.now() - dt.timedelta(days=1)) >= day_limit:
        raise LimitReached(
            f"You have started {day_limit} scenes in the last 24 hours. Take a bow and come back tomorrow.",
            limit="scenes_per_day",
            max=day_limit,
        )
    if store.scenes_open_count(user.pk) >= open_limit:
        raise LimitReached(
            f"You already have {open_limit} scenes open. Finish or end one first.",
            limit="open_scenes",
            max=open_limit,
        )
    scene = store.scene_create(
        user_id=user.pk, status=lifecycle.MC_WELCOME, state={"phase": lifecycle.SUPPORTIVE}
    )
    store.turn_append(scene.id, speaker="mc", text=prompts.mc_welcome(user.first_name or ""))
    scene = store.scene_update(scene.id, status=lifecycle.GAME_SELECTION)
    log.info("scene started", extra={"event": "scene_started", "scene_id": scene.id})
    if game is not None:
        scene = scene_choose_game(user=user, scene_id=scene.id, game_slug=game.slug)
    return scene


def scene_choose_game(*, user: Any, scene_id: str, game_slug: str) -> SceneRecord:
    scene = scene_for_user(scene_id=scene_id, user=user)
    _require(scene, lifecycle.CHOOSE_GAME_FROM, "choose a game")
    game = Game.objects.by_slug(game_slug)
    if game is None or not game.is_active:
        raise UnknownGame(f"There is no game called {game_slug!r}.")
    store = get_store()
    store.turn_append(scene.id, speaker="mc", text=prompts.mc_game_intro(game))
    return store.scene_update(
        scene.id,
        game_slug=game.slug,
        status=lifecycle.SUGGESTION,
        state={**scene.state, "game_name": game.name},
    )


def scene_take_suggestion(*, user: Any, scene_id: str) -> SceneRecord:
    """A simulated audience member shouts the suggestion (never the player), and the scene starts."""
    scene = scene_for_user(scene_id=scene_id, user=user)
    _require(scene, lifecycle.SUGGESTION_FROM, "take a suggestion")
    game = Game.objects.by_slug(scene.game_slug)
    archetype = random.choice(list(AudienceArchetype.objects.all()) or [None])
    name = archetype.name if archetype else "the audience"
    style = archetype.suggestion_style if archetype else "anything playable"
    shout = ai.generate(
        purpose="suggestion",
        system=prompts.suggestion_system_instruction(game=game, archetype_name=name, archetype_style=style),
        messages=[("user", prompts.SUGGESTION_REQUEST)],
        schema=ai.AudienceShout,
    )
    suggestion = " ".join(shout.suggestion.split())[:120].strip(" .\"'") or "a surprise"
    store = get_store()
    store.turn_append(
        scene.id, speaker="audience", text=suggestion, meta={"archetype": archetype.slug if archetype else ""}
    )
    store.turn_append(scene.id, speaker="mc", text=prompts.mc_lights_up(suggestion, name))
    return store.scene_update(
        scene.id,
        suggestion=suggestion,
        status=lifecycle.ACTIVE,
        state={**scene.state, "phase": lifecycle.SUPPORTIVE, "suggestion_by": name},
    )


def scene_end(*, user: Any, scene_id: str) -> SceneRecord:
    """End the scene. Before it started: close it. Otherwise: coaching, the full review, closed.

    If the model is unavailable the scene stays in `coaching` and ending again retries the review.
    """
    scene = scene_for_user(scene_id=scene_id, user=user)
    store = get_store()
    if scene.status in lifecycle.END_WITHOUT_REVIEW_FROM:
        store.turn_append(scene.id, speaker="mc", text=prompts.mc_closed_early())
        return store.scene_update(scene.id, status=lifecycle.CLOSED, ended_at=timezone.now())
    _require(scene, lifecycle.END_WITH_REVIEW_FROM, "end")
    if scene.status == lifecycle.ACTIVE:
        store.turn_append(scene.id, speaker="mc", text=prompts.mc_scene_over())
    if scene.status != lifecycle.COACHING:
        scene = store.scene_update(scene.id, status=lifecycle.COACHING)
    turns = store.turns_list(scene.id)
    timeline = scene_timeline(turns)
    review = review_write(scene, turns, timeline.facts) if any(t.speaker == "user" for t in turns) else None
    log.info("scene closed", extra={"event": "scene_closed", "scene_id": scene.id, "turns": scene.turn_count})
    return store.scene_update(
        scene.id,
        status=lifecycle.CLOSED,
        ended_at=timezone.now(),
        state={**scene.state, "review": review, "shape": shape(timeline)},
    )


def _require(scene: SceneRecord, allowed: frozenset[str], action: str) -> None:
    if scene.status not in allowed:
        label = lifecycle.STATUS_LABELS.get(scene.status, scene.status)
        raise WrongState(f"You can't {action} now: the scene is at “{label}”.", status=scene.status)


# --- turns ---------------------------------------------------------------------------------------


@telemetry.tracer.start_as_current_span("improv.text_turn")  # one trace per text turn (or its request's)
def turn_text_record(*, user: Any, scene_id: str, text: str) -> TurnOutcome:
    """The player's typed line, saved first; then the partner answers (or a 503 and nothing lost)."""
    scene = scene_for_user(scene_id=scene_id, user=user)
    line = clean_line(text)
    _require(scene, lifecycle.TURN_FROM, "say a line")
    store = get_store()
    if pending_reply(store.turns_list(scene.id)):
        raise WrongState(
            "Your partner still owes you a reply to your last line. Retry it first.",
            status=scene.status,
            retry=True,
        )
    with telemetry.store_span("turn_append"):
        store.turn_append(scene.id, speaker="user", text=line, mode="text")
    return partner_reply(store.scene_get(scene.id))


@telemetry.tracer.start_as_current_span("improv.text_turn_retry")
def turn_retry(*, user: Any, scene_id: str) -> TurnOutcome:
    """Ask the partner again for the reply that failed."""
    scene = scene_for_user(scene_id=scene_id, user=user)
    _require(scene, lifecycle.TURN_FROM, "retry")
    if not pending_reply(get_store().turns_list(scene.id)):
        raise WrongState("There is no line waiting for a reply.", status=scene.status)
    return partner_reply(scene)


__all__ = [
    "TurnOutcome",
    "scene_choose_game",
    "scene_end",
    "scene_expire",
    "scene_start",
    "scene_take_suggestion",
    "scenes_expire_stale",
    "turn_retry",
    "turn_text_record",
]
