"""Server-rendered SVG of a scene's timeline (improv/timeline.py): nothing loaded from elsewhere.

Colours come from CSS classes (static/css/improv.css), so both colour schemes apply; every chart
has a <title>/<desc> and the page shows the same figures as tables for screen readers.
"""

from __future__ import annotations

from typing import Any

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from improv.timeline import Timeline

WIDTH = 1000  # viewBox units; the SVG scales to its container
LANE_H = 34
LANES = (("user", "You"), ("partner", "Partner"))
LABEL_W = 90


def _x(seconds: float, duration: float) -> float:
    span = WIDTH - LABEL_W - 10
    return round(LABEL_W + (seconds / duration if duration else 0) * span, 1)


def timeline_svg(timeline: Timeline) -> SafeString:
    """Two lanes (you, partner) of lines over time; cut-offs marked; coach notes as diamonds."""
    duration = max(timeline.duration_s, 1.0)
    height = LANE_H * len(LANES) + 46
    parts: list[str] = [
        format_html(
            '<svg class="timeline" viewBox="0 0 {} {}" role="img" aria-labelledby="tl-title tl-desc" '
            'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">',
            WIDTH,
            height,
        ),
        '<title id="tl-title">Scene timeline</title>',
        format_html(
            '<desc id="tl-desc">{} player lines and {} partner lines over {} seconds; '
            "the partner was cut off {} times.</desc>",
            timeline.facts.user_lines,
            timeline.facts.partner_lines,
            round(duration),
            timeline.facts.partner_cut_off_by_user,
        ),
    ]
    lane_y = {}
    for i, (role, label) in enumerate(LANES):
        y = 8 + i * LANE_H
        lane_y[role] = y
        parts.append(format_html('<text class="tl-label" x="4" y="{}">{}</text>', y + 20, label))
        parts.append(
            format_html('<line class="tl-lane" x1="{}" x2="{}" y1="{}" y2="{}"/>',
                        LABEL_W, WIDTH - 10, y + 15, y + 15)
        )
    for seg in timeline.segments:
        x0, x1 = _x(seg.start_s, duration), _x(seg.end_s, duration)
        classes = f"tl-seg tl-{seg.role}" + (" tl-cut" if seg.cut_off else "") + (
            " tl-estimated" if seg.estimated else ""
        )
        tip = f"{'You' if seg.role == 'user' else 'Partner'} {seg.start_s:.1f} to {seg.end_s:.1f} s"
        if seg.cut_off:
            tip += " (cut off)"
        if seg.response_ms is not None:
            tip += f", answered in {seg.response_ms} ms"
        parts.append(
            format_html(
                '<rect class="{}" x="{}" y="{}" width="{}" height="22" rx="3" data-role="{}" '
                'data-cut-off="{}"><title>{}: {}</title></rect>',
                classes, x0, lane_y[seg.role] + 4, max(2.0, x1 - x0), seg.role,
                "true" if seg.cut_off else "false", tip, seg.text[:120],
            )
        )
        if seg.cut_off:
            parts.append(
                format_html('<path class="tl-cut-mark" d="M{} {} l6 -6 l0 12 z"/>', x1, lane_y[seg.role] + 15)
            )
    axis_y = 8 + LANE_H * len(LANES) + 10
    for mark in timeline.coach_marks:
        x = _x(mark.at_s, duration)
        parts.append(
            format_html(
                '<path class="tl-coach" d="M{} {} l6 6 l-6 6 l-6 -6 z"><title>Coach: {}</title></path>',
                x, axis_y - 6, mark.text[:160],
            )
        )
    ticks = _ticks(duration)
    for t in ticks:
        parts.append(
            format_html(
                '<text class="tl-tick" x="{}" y="{}">{}</text>', _x(t, duration), axis_y + 22, _clock(t)
            )
        )
    parts.append("</svg>")
    return mark_safe("".join(str(p) for p in parts))  # noqa: S308  every value went through format_html


def response_svg(timeline: Timeline) -> SafeString:
    """One bar per partner line: how long the partner took to answer."""
    answers = [s for s in timeline.segments if s.role == "partner" and s.response_ms is not None]
    if not answers:
        return mark_safe("")
    top = max(max(s.response_ms or 0 for s in answers), 1000)
    bar_w = (WIDTH - LABEL_W) / max(len(answers), 1)
    height = 140
    parts: list[str] = [
        format_html(
            '<svg class="responses" viewBox="0 0 {} {}" role="img" aria-label="{}" '
            'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">',
            WIDTH, height, f"Partner response time per line, up to {top} ms",
        )
    ]
    for i, seg in enumerate(answers):
        h = round((seg.response_ms or 0) / top * (height - 30), 1)
        x = LABEL_W + i * bar_w + 4
        parts.append(
            format_html(
                '<rect class="rt-bar" x="{}" y="{}" width="{}" height="{}">'
                "<title>Line {}: {} ms</title></rect>",
                round(x, 1), height - 20 - h, round(max(bar_w - 8, 2), 1), h, i + 1, seg.response_ms,
            )
        )
    parts.append(format_html('<text class="tl-tick" x="4" y="14">{} ms</text>', top))
    parts.append(format_html('<text class="tl-tick" x="4" y="{}">0</text>', height - 20))
    parts.append("</svg>")
    return mark_safe("".join(str(p) for p in parts))  # noqa: S308  every value went through format_html


def sparkline_svg(shape: dict[str, Any]) -> SafeString:
    """A small picture of a scene for the history list (its saved `shape`): you above, the partner below."""
    segments = [
        (seg["role"], float(seg["start"]), float(seg["end"]), bool(seg.get("cut")))
        for seg in shape.get("segments", [])
        if isinstance(seg, dict) and {"role", "start", "end"} <= seg.keys()
    ]
    if not segments:
        return mark_safe("")
    duration = max(max(end for _, _, end, _ in segments), 1.0)
    width, height = 120, 20
    bars = []
    for role, start, end, cut in segments:
        x = round(start / duration * width, 1)
        w = round(max((end - start) / duration * width, 1.0), 1)
        bars.append(
            format_html('<rect class="sp-{}{}" x="{}" y="{}" width="{}" height="7"/>',
                        "user" if role == "user" else "partner", " sp-cut" if cut else "", x,
                        2 if role == "user" else 11, w)
        )
    facts = shape.get("facts") or {}
    label = escape(
        f"{facts.get('user_lines', 0)} of your lines, {facts.get('partner_lines', 0)} partner lines, "
        f"you spoke {float(facts.get('user_share', 0.5)):.0%} of the time"
    )
    return mark_safe(  # noqa: S308  every value went through format_html or escape
        f'<svg class="sparkline" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">{"".join(map(str, bars))}</svg>'
    )


def _ticks(duration: float) -> list[float]:
    step = next((s for s in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800) if duration / s <= 8), 3600)
    return [float(t) for t in range(0, int(duration) + 1, step)]


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"
