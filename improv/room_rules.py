"""Deterministic room vibe and coach picks: no model call, no failure, microseconds per turn.

Used by the voice path (which must stay cheap per turn) and as the fallback when the text model
is unavailable. The rules read what an audience reacts to: energy in the lines, the partners
listening to each other (shared words), and whether the player made statements or only asked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from improv import lifecycle

_WORD = re.compile(r"[a-z][a-z']{2,}")
_COMMON = frozenset(
    "the and you your yes but for with that this what was are have not just its it's i'm we're they "
    "there their our out all can get got now then here she him her his them from".split()
)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _COMMON}


def _clamp(value: float) -> int:
    return max(1, min(10, round(value)))


def room_from_exchange(
    user_text: str, partner_text: str, *, previous: dict[str, Any] | None = None, interrupted: bool = False
) -> dict[str, Any]:
    user, partner = user_text.strip(), partner_text.strip()
    energy = 5.0 + min(2, (user + partner).count("!")) + (1 if interrupted else 0)
    energy += 1 if 25 <= len(user) <= 300 else (-1 if len(user) < 8 else 0)
    energy -= 2 if not partner else 0
    shared = len(_words(user) & _words(partner))
    engagement = 4.0 + min(3, shared) + (1 if len(_words(user)) >= 4 else 0)
    engagement -= 1 if user.endswith("?") and len(user) < 40 else 0
    if previous:  # an audience's mood has momentum: blend with the last reading
        energy = (energy * 2 + float(previous.get("energy", 5))) / 3
        engagement = (engagement * 2 + float(previous.get("engagement", 5))) / 3
    e, g = _clamp(energy), _clamp(engagement)
    if e >= 7:
        mood = "electric" if g >= 6 else "rowdy"
    elif e >= 4:
        mood = "warm" if g >= 6 else "curious"
    else:
        mood = "captivated" if g >= 6 else "restless"
    return {"energy": e, "engagement": g, "mood": mood}


def coach_pick(
    principles: Sequence[Any], *, turn_number: int, user_lines: Sequence[str]
) -> dict[str, Any] | None:
    """A principle's coaching tip chosen from what the player has been doing."""
    usable = {p.slug: p for p in principles if p.coaching_tips}
    if not usable:
        return None
    if lifecycle.phase_changes_at(turn_number):
        slug = "justification"  # the partner starts stumbling: make sense of it and lead
    elif user_lines and sum(line.strip().endswith("?") for line in user_lines) * 2 > len(user_lines):
        slug = "specificity"  # mostly questions: make statements that add information
    elif user_lines and sum(len(line) for line in user_lines) / len(user_lines) < 25:
        slug = "commitment"
    else:
        slug = "active-listening"
    chosen = usable.get(slug) or list(usable.values())[(turn_number // lifecycle.COACH_EVERY) % len(usable)]
    tip = chosen.coaching_tips[(turn_number // lifecycle.COACH_EVERY) % len(chosen.coaching_tips)]
    return {"principle": chosen.slug, "text": tip}
