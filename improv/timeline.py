"""The shape of a scene: who spoke when, for how long, who cut whom off, how fast the partner answered.

Built from the saved turns alone (each user/partner turn's `meta`), so the review page, the
coach's prompt, the API and the transcript download all read the same figures. Per-turn timing
keys, written when a turn is saved (voice: audio/turns.py; text: improv/play.py):

- `started_at`, `ended_at`: wall-clock seconds (epoch) when the line started and ended — for the
  user, first and last speech detected (or the moment a line was typed); for the partner, its
  first audio and the end of its audio (or the moment it was cut off);
- `interrupted` (partner): the player spoke over it and it stopped — a cut-off by the player;
- `latency_ms` (partner): the measured response time (end of the player's line -> first audio).

Turns saved without timing (older scenes, typed lines) are placed at `created_at` and given the
time the words take to say at a conversational pace, flagged `estimated`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

WORDS_PER_SECOND = 2.5  # ~150 words a minute: conversational speech
MIN_LINE_S = 0.4
ROLES = ("user", "partner")


@dataclass(frozen=True)
class Segment:
    role: str  # user | partner
    index: int  # the turn's index in the scene (TurnRecord.index)
    start_s: float  # seconds from the scene's first line
    end_s: float
    text: str
    cut_off: bool = False  # this line was cut off (partner: the player spoke over it)
    response_ms: int | None = None  # partner: time from the end of the player's line to its first audio
    estimated: bool = False  # timing inferred from the words, not measured

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Facts:
    """The measured facts the review shows and the coach's full review is grounded in."""

    user_lines: int
    partner_lines: int
    user_talk_s: float
    partner_talk_s: float
    partner_cut_off_by_user: int  # the player spoke over the partner
    user_cut_off_by_partner: int  # the partner started before the player had finished
    partner_cut_offs_second_half: int
    longest_silence_s: float
    average_response_ms: int | None
    duration_s: float

    @property
    def user_share(self) -> float:
        """The player's share of the talk time, 0..1 (0.5 when nobody spoke)."""
        total = self.user_talk_s + self.partner_talk_s
        return self.user_talk_s / total if total else 0.5

    def as_dict(self) -> dict[str, Any]:
        return {
            "user_lines": self.user_lines,
            "partner_lines": self.partner_lines,
            "user_talk_s": round(self.user_talk_s, 1),
            "partner_talk_s": round(self.partner_talk_s, 1),
            "user_share": round(self.user_share, 3),
            "partner_cut_off_by_user": self.partner_cut_off_by_user,
            "user_cut_off_by_partner": self.user_cut_off_by_partner,
            "partner_cut_offs_second_half": self.partner_cut_offs_second_half,
            "longest_silence_s": round(self.longest_silence_s, 1),
            "average_response_ms": self.average_response_ms,
            "duration_s": round(self.duration_s, 1),
        }


@dataclass(frozen=True)
class CoachMark:
    at_s: float
    turn: int | None
    text: str


@dataclass(frozen=True)
class Timeline:
    segments: list[Segment]
    facts: Facts
    coach_marks: list[CoachMark] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.facts.duration_s


def _epoch(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value > 0 else None


def _created(turn: Any) -> float | None:
    created = getattr(turn, "created_at", None)
    return created.timestamp() if isinstance(created, dt.datetime) else None


def _spoken_s(text: str) -> float:
    return max(MIN_LINE_S, len(text.split()) / WORDS_PER_SECOND)


def _placed(turn: Any) -> tuple[float, float, bool] | None:
    """(start, end, estimated) in epoch seconds, or None when the turn carries no time at all."""
    meta = turn.meta or {}
    start, end = _epoch(meta.get("started_at")), _epoch(meta.get("ended_at"))
    if start is not None and end is not None and end >= start:
        return start, end, False
    anchor = start if start is not None else _created(turn)
    if anchor is None:
        return None
    return anchor, anchor + _spoken_s(turn.text), True


def scene_timeline(turns: Iterable[Any]) -> Timeline:
    """The timeline of a scene's user and partner lines (TurnRecords, in index order)."""
    turns = list(turns)
    placed = [(t, p) for t in turns if t.speaker in ROLES and (p := _placed(t)) is not None]
    origin = min((p[0] for _, p in placed), default=0.0)
    segments: list[Segment] = []
    for turn, (start, end, estimated) in placed:
        meta = turn.meta or {}
        latency = meta.get("latency_ms")
        response = None
        if turn.speaker == "partner" and isinstance(latency, (int, float)) and not isinstance(latency, bool):
            response = max(0, int(latency))
        segments.append(
            Segment(
                role=turn.speaker,
                index=turn.index,
                start_s=round(start - origin, 3),
                end_s=round(end - origin, 3),
                text=turn.text,
                cut_off=turn.speaker == "partner" and bool(meta.get("interrupted")),
                response_ms=response,
                estimated=estimated,
            )
        )
    return Timeline(segments=segments, facts=_facts(segments), coach_marks=_coach_marks(turns, segments))


def _facts(segments: list[Segment]) -> Facts:
    users = [s for s in segments if s.role == "user"]
    partners = [s for s in segments if s.role == "partner"]
    duration = max((s.end_s for s in segments), default=0.0)
    half = duration / 2
    partner_cut = [s for s in partners if s.cut_off]
    # The partner cut the player off when its line starts before the player's line before it ends.
    user_cut = 0
    for prev, nxt in itertools.pairwise(segments):
        if prev.role == "user" and nxt.role == "partner" and nxt.start_s < prev.end_s - 0.05:
            user_cut += 1
    responses = [s.response_ms for s in partners if s.response_ms is not None]
    return Facts(
        user_lines=len(users),
        partner_lines=len(partners),
        user_talk_s=round(sum(s.duration_s for s in users), 3),
        partner_talk_s=round(sum(s.duration_s for s in partners), 3),
        partner_cut_off_by_user=len(partner_cut),
        user_cut_off_by_partner=user_cut,
        partner_cut_offs_second_half=sum(1 for s in partner_cut if s.start_s >= half),
        longest_silence_s=_longest_silence(segments),
        average_response_ms=round(sum(responses) / len(responses)) if responses else None,
        duration_s=duration,
    )


def _longest_silence(segments: list[Segment]) -> float:
    longest, talking_until = 0.0, None
    for segment in sorted(segments, key=lambda s: s.start_s):
        if talking_until is not None:
            longest = max(longest, segment.start_s - talking_until)
        talking_until = segment.end_s if talking_until is None else max(talking_until, segment.end_s)
    return round(max(0.0, longest), 3)


def _coach_marks(turns: list[Any], segments: list[Segment]) -> list[CoachMark]:
    """Coach notes at the moment of the partner line that closed their turn."""
    ends = {s.index: s.end_s for s in segments}
    marks, last_end = [], 0.0
    for turn in turns:
        if turn.index in ends:
            last_end = ends[turn.index]
        elif turn.speaker == "coach":
            marks.append(CoachMark(at_s=last_end, turn=(turn.meta or {}).get("turn"), text=turn.text))
    return marks


SHAPE_MAX_SEGMENTS = 200  # a compact copy rides in the scene's state; bound it


def shape(timeline: Timeline) -> dict[str, Any]:
    """A compact copy saved with the scene when it ends, so lists draw sparklines without its turns.

    Segments are small maps, not lists: Firestore stores no array inside an array."""
    return {
        "segments": [
            {"role": s.role, "start": round(s.start_s, 1), "end": round(s.end_s, 1), "cut": s.cut_off}
            for s in timeline.segments[:SHAPE_MAX_SEGMENTS]
        ],
        "facts": timeline.facts.as_dict(),
    }


def facts_for_coach(facts: Facts) -> str:
    """The measured facts as the coach's prompt receives them (one per line, plain numbers)."""
    if not (facts.user_lines or facts.partner_lines):
        return "SCENE FACTS (measured): none, the scene had no lines."
    response = f"{facts.average_response_ms} ms" if facts.average_response_ms is not None else "not measured"
    return "\n".join(
        [
            "SCENE FACTS (measured):",
            f"- player talk-time share: {facts.user_share:.0%}",
            f"- player lines: {facts.user_lines}; partner lines: {facts.partner_lines}",
            f"- player cut the partner off: {_times(facts.partner_cut_off_by_user)} "
            f"({facts.partner_cut_offs_second_half} in the second half)",
            f"- partner cut the player off: {_times(facts.user_cut_off_by_partner)}",
            f"- longest silence: {facts.longest_silence_s:.1f} s",
            f"- partner's average response time: {response}",
        ]
    )


def _times(n: int) -> str:
    return f"{n} time" if n == 1 else f"{n} times"
