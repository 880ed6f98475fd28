"""A scene's transcript as a file to keep: plain text and Markdown, every line with its speaker,
then the scene's shape (improv/timeline.py: talk-time share, cut-offs, silences, response times).

Pure functions of the review page's SceneView, so the download and the page can never disagree
about what was said or measured (the coach's notes are not lines of the scene and are left out,
as on the page).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from improv.selectors import SceneView
    from improv.store.base import TurnRecord
    from improv.timeline import Facts, Timeline

# The names the page shows (templates/improv/_speaker.html).
SPEAKERS = {"user": "You", "partner": "Puck", "mc": "MC", "audience": "Audience"}
FORMATS = {"txt": "text/plain; charset=utf-8", "md": "text/markdown; charset=utf-8"}


@dataclass(frozen=True)
class Line:
    speaker: str
    text: str
    voice: bool


def speaker_name(speaker: str) -> str:
    return SPEAKERS.get(speaker, speaker.capitalize() or "Someone")


def lines(transcript: list[TurnRecord]) -> list[Line]:
    return [
        Line(speaker=speaker_name(t.speaker), text=t.text.strip(), voice=t.mode == "voice")
        for t in transcript
        if t.text.strip()
    ]


def _title(view: SceneView) -> str:
    game = view.game.name if view.game else "Scene"
    return f"{game} · “{view.scene.suggestion}”" if view.scene.suggestion else game


def _when(view: SceneView) -> str:
    stamp = view.scene.ended_at or view.scene.created_at
    return stamp.strftime("%-d %b %Y, %H:%M UTC") if stamp else ""


def _times(n: int) -> str:
    return f"{n} time" if n == 1 else f"{n} times"


def fact_lines(facts: Facts) -> list[str]:
    """The review page's figures in words (the same numbers as its shape section)."""
    total = facts.user_talk_s + facts.partner_talk_s
    response = f"{facts.average_response_ms} ms" if facts.average_response_ms is not None else "not measured"
    return [
        f"Your talk time: {facts.user_share:.0%} ({facts.user_talk_s:.1f} s of {total:.1f} s)",
        f"Your lines: {facts.user_lines}; your partner's lines: {facts.partner_lines}",
        f"You cut your partner off: {_times(facts.partner_cut_off_by_user)}"
        f" ({facts.partner_cut_offs_second_half} in the second half)",
        f"Your partner cut you off: {_times(facts.user_cut_off_by_partner)}",
        f"Longest silence: {facts.longest_silence_s:.1f} s",
        f"Your partner's average response time: {response}",
    ]


def _segment_cells(timeline: Timeline) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            "You" if seg.role == "user" else SPEAKERS["partner"],
            f"{seg.start_s:.1f}",
            f"{seg.end_s:.1f}",
            "cut off" if seg.cut_off else "",
            f"{seg.response_ms} ms" if seg.response_ms is not None else "",
        )
        for seg in timeline.segments
    ]


def _estimated_note(timeline: Timeline) -> list[str]:
    if any(seg.estimated for seg in timeline.segments):
        return ["Typed lines are timed at speaking pace (no speech to measure)."]
    return []


def _shape_text(timeline: Timeline) -> list[str]:
    if not timeline.segments:
        return []
    out = ["", "The shape of the scene", *(f"- {line}" for line in fact_lines(timeline.facts)), ""]
    out.append("Lines (seconds from the first line):")
    for who, start, end, cut, response in _segment_cells(timeline):
        out.append(f"  {start:>6} to {end:<6} {who:<8} {cut:<8} {response}".rstrip())
    return out + _estimated_note(timeline)


def _shape_markdown(timeline: Timeline) -> list[str]:
    if not timeline.segments:
        return []
    out = ["## The shape of the scene", "", *(f"- {line}" for line in fact_lines(timeline.facts)), ""]
    out += ["| Who | From (s) | To (s) | Cut off | Response time |", "| --- | ---: | ---: | --- | ---: |"]
    out += [
        f"| {who} | {start} | {end} | {cut or 'no'} | {response or '—'} |"
        for who, start, end, cut, response in _segment_cells(timeline)
    ]
    return [*out, "", *_estimated_note(timeline)]


def as_text(view: SceneView) -> str:
    head = [f"Improv Olympics AI — {_title(view)}"]
    if when := _when(view):
        head.append(when)
    body = []
    for line in lines(view.transcript):
        # Continuation lines are indented under the speaker, so every line still reads as theirs.
        first, *rest = line.text.splitlines() or [""]
        body.append("\n".join([f"{line.speaker}: {first}", *(f"    {more}" for more in rest)]))
    return "\n".join([*head, "", *body, *_shape_text(view.timeline)]) + "\n"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
_MARKDOWN_LINE_START = re.compile(r"^(\s*)([#>+\-=]|\d+[.)])", re.MULTILINE)


def escape_markdown(text: str) -> str:
    """Words as written: nothing a player typed may turn into a heading, a link or HTML."""
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return _MARKDOWN_LINE_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", text)


def as_markdown(view: SceneView) -> str:
    out = [f"# {escape_markdown(_title(view))}", ""]
    if when := _when(view):
        out += [f"*{when}*", ""]
    for line in lines(view.transcript):
        said = escape_markdown(line.text).replace("\n", "  \n")
        out += [f"**{line.speaker}:** {said}{' *(voice)*' if line.voice else ''}", ""]
    return "\n".join([*out, *_shape_markdown(view.timeline)]).rstrip("\n") + "\n"


def render(view: SceneView, fmt: str) -> str:
    if fmt == "txt":
        return as_text(view)
    if fmt == "md":
        return as_markdown(view)
    raise ValueError(f"unknown transcript format {fmt!r}; one of {', '.join(FORMATS)}")


def filename(view: SceneView, fmt: str) -> str:
    game = view.game.slug if view.game else "scene"
    stamp = view.scene.ended_at or view.scene.created_at
    day = stamp.strftime("%Y-%m-%d") if stamp else "undated"
    short_id = re.sub(r"[^A-Za-z0-9]", "", view.scene.id)[:8]  # a header value: nothing to quote
    return f"improv-{game}-{day}-{short_id}.{fmt}"
