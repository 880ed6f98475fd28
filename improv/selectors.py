"""Reads: content, a player's scenes (with lazy expiry), and the view of a scene pages and API show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from improv import lifecycle
from improv.errors import SceneMissing
from improv.expiry import scene_fresh
from improv.models import AudienceArchetype, Game, Principle
from improv.store import SceneNotFound, SceneRecord, TurnRecord, get_store
from improv.timeline import Timeline, scene_timeline


def games_list() -> list[Game]:
    return list(Game.objects.active())


def principles_list() -> list[Principle]:
    return list(Principle.objects.all())


def principle_names() -> dict[str, str]:
    return dict(Principle.objects.values_list("slug", "name"))


def archetypes_list() -> list[AudienceArchetype]:
    return list(AudienceArchetype.objects.all())


def scene_for_user(*, scene_id: str, user: Any) -> SceneRecord:
    """The player's own scene, expired first if it sat idle too long. Others' scenes do not exist."""
    store = get_store()
    try:
        scene = store.scene_get(scene_id)
    except SceneNotFound:
        raise SceneMissing("No such scene.") from None
    if scene.user_id != getattr(user, "pk", None):
        raise SceneMissing("No such scene.")
    return scene_fresh(scene)


# Deeper than any history can go (55 years at the daily limit), and inside what every store accepts:
# SQLite and Postgres overflow at 2**63, Firestore's offset is an int32.
HISTORY_MAX_OFFSET = 1_000_000


def scenes_history(*, user: Any, limit: int = 20, offset: int = 0) -> list[SceneRecord]:
    """Newest first; scenes that sat idle too long are expired on the way out (lazy expiry)."""
    if offset > HISTORY_MAX_OFFSET:
        return []
    scenes = get_store().scenes_for_user(user.pk, limit=limit, offset=offset)
    return [scene_fresh(s) for s in scenes]


def pending_reply(turns: list[TurnRecord]) -> bool:
    """The player spoke last and the partner has not answered yet (e.g. Gemini was unavailable)."""
    for turn in reversed(turns):
        if turn.speaker == "user":
            return True
        if turn.speaker == "partner":
            return False
    return False


@dataclass
class SceneView:
    scene: SceneRecord
    game: Game | None
    transcript: list[TurnRecord]
    coach_notes: list[dict[str, Any]]
    room: dict[str, Any] | None
    room_history: list[dict[str, Any]]
    review: dict[str, Any] | None
    phase: str
    pending_reply: bool
    turns_total: int
    status_label: str
    timeline: Timeline
    actions: set[str] = field(default_factory=set)

    @property
    def turns_left(self) -> int:
        return max(0, self.turns_total - self.scene.turn_count)

    @property
    def on_stage(self) -> bool:
        """The scene has started (or finished): the room and the coach have something to show."""
        return self.scene.status not in lifecycle.CHOOSE_GAME_FROM

    @property
    def vibe_band(self) -> str:
        """low | mid | high: the stage's lighting follows the room's energy."""
        if not self.room:
            return "idle"
        energy = int(self.room.get("energy", 5))
        return "high" if energy >= 7 else "mid" if energy >= 4 else "low"


def scene_view(scene: SceneRecord) -> SceneView:
    turns = get_store().turns_list(scene.id)
    names = principle_names()
    transcript = [t for t in turns if t.speaker != "coach"]
    notes = [
        {
            "turn": t.meta.get("turn"),
            "principle": t.meta.get("principle", ""),
            "principle_name": names.get(t.meta.get("principle", ""), ""),
            "text": t.text,
        }
        for t in turns
        if t.speaker == "coach"
    ]
    history = [r for r in scene.state.get("room_history", []) if isinstance(r, dict)]
    pending = scene.status == lifecycle.ACTIVE and pending_reply(turns)
    return SceneView(
        scene=scene,
        game=Game.objects.by_slug(scene.game_slug),
        transcript=transcript,
        coach_notes=notes,
        room=scene.state.get("room"),
        room_history=history,
        review=scene.state.get("review"),
        phase=scene.state.get("phase", lifecycle.SUPPORTIVE),
        pending_reply=pending,
        turns_total=lifecycle.scene_turns(),
        status_label=lifecycle.STATUS_LABELS.get(scene.status, scene.status),
        timeline=scene_timeline(turns),
        actions=_actions(scene, pending),
    )


def _actions(scene: SceneRecord, pending: bool) -> set[str]:
    """What the player can do next; pages show only these, so there are no dead buttons."""
    status = scene.status
    actions: set[str] = set()
    if status in lifecycle.CHOOSE_GAME_FROM:
        actions.add("choose_game")
    if status in lifecycle.SUGGESTION_FROM:
        actions.add("suggestion")
    if status == lifecycle.ACTIVE:
        actions.add("retry" if pending else "say")
    if status in lifecycle.END_WITH_REVIEW_FROM | lifecycle.END_WITHOUT_REVIEW_FROM:
        actions.add("end")
    return actions
