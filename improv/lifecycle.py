"""The scene lifecycle and the turn-number rules (partner phase, coach cadence, scene length).

    mc_welcome -> game_selection -> suggestion -> active -> scene_complete -> coaching -> closed
                                                    \\__________ end early _________/
    any open status -> expired (idle longer than IMPROV_IDLE_EXPIRY_MINUTES)

A "turn" here is a user turn: the store's turn_count counts only those.
"""

from __future__ import annotations

from django.conf import settings

from improv.statuses import (
    ACTIVE,
    CLOSED,
    COACHING,
    EXPIRED,
    GAME_SELECTION,
    MC_WELCOME,
    SCENE_COMPLETE,
    SUGGESTION,
)

__all__ = [
    "ACTIVE",
    "CLOSED",
    "COACHING",
    "EXPIRED",
    "GAME_SELECTION",
    "MC_WELCOME",
    "SCENE_COMPLETE",
    "SUGGESTION",
]

CHOOSE_GAME_FROM = frozenset({MC_WELCOME, GAME_SELECTION, SUGGESTION})
SUGGESTION_FROM = frozenset({SUGGESTION})
TURN_FROM = frozenset({ACTIVE})
# Ending before the scene started closes it without a review: there is nothing to coach.
END_WITH_REVIEW_FROM = frozenset({ACTIVE, SCENE_COMPLETE, COACHING})
END_WITHOUT_REVIEW_FROM = frozenset({MC_WELCOME, GAME_SELECTION, SUGGESTION})

SUPPORTIVE = "supportive"
FALLIBLE = "fallible"
FALLIBLE_FROM_TURN = 5
COACH_EVERY = 5

STATUS_LABELS = {
    MC_WELCOME: "Welcome",
    GAME_SELECTION: "Choosing a game",
    SUGGESTION: "Audience suggestion",
    ACTIVE: "On stage",
    SCENE_COMPLETE: "Scene complete",
    COACHING: "Coaching",
    CLOSED: "Closed",
    EXPIRED: "Expired",
}


def scene_turns() -> int:
    return int(settings.IMPROV_SCENE_TURNS)


def partner_phase(turn_number: int) -> str:
    """Supportive for the first turns; from turn 5 the partner stumbles so the player must lead."""
    return FALLIBLE if turn_number >= FALLIBLE_FROM_TURN else SUPPORTIVE


def phase_changes_at(turn_number: int) -> bool:
    return turn_number == FALLIBLE_FROM_TURN


def scene_is_complete(turn_number: int) -> bool:
    return turn_number >= scene_turns()


def coach_note_due(turn_number: int) -> bool:
    """A short note at the phase change and every 5th turn; the last turn gets the full review instead."""
    if scene_is_complete(turn_number):
        return False
    return phase_changes_at(turn_number) or turn_number % COACH_EVERY == 0
