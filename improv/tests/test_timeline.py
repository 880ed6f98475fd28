"""improv/timeline.py and improv/charts.py: the scene's shape from its saved turns, and its pictures."""

from __future__ import annotations

import datetime as dt
import re

from improv.charts import response_svg, sparkline_svg, timeline_svg
from improv.store import TurnRecord
from improv.timeline import facts_for_coach, scene_timeline, shape

T0 = 1_800_000_000.0  # an epoch second; the timeline measures from the first line


def line(index, speaker, text, start=None, end=None, **meta):
    if start is not None:
        meta.update(started_at=T0 + start, ended_at=T0 + end)
    return TurnRecord(scene_id="s", index=index, speaker=speaker, text=text, mode="voice", meta=meta,
                      created_at=dt.datetime.fromtimestamp(T0 + (start or 0), tz=dt.UTC))


def voice_scene():
    """Two spoken lines; the player barges in over the partner's first reply."""
    return [
        line(1, "mc", "Lights up!"),
        line(2, "user", "Welcome to the moon bakery", 0.0, 2.0),
        line(3, "partner", "Yes, and the croissants float", 2.5, 5.0, latency_ms=500, interrupted=True),
        line(4, "user", "Catch them before the customers do", 4.5, 7.0),
        line(5, "partner", "I have a net made of baguettes", 7.8, 10.0, latency_ms=800),
        line(6, "coach", "Nice heightening.", turn=2),
    ]


def test_segments_are_placed_from_the_saved_timing():
    timeline = scene_timeline(voice_scene())
    assert [(s.role, s.start_s, s.end_s, s.cut_off) for s in timeline.segments] == [
        ("user", 0.0, 2.0, False),
        ("partner", 2.5, 5.0, True),
        ("user", 4.5, 7.0, False),
        ("partner", 7.8, 10.0, False),
    ]
    assert [s.response_ms for s in timeline.segments if s.role == "partner"] == [500, 800]
    assert not any(s.estimated for s in timeline.segments)
    assert [(m.at_s, m.turn, m.text) for m in timeline.coach_marks] == [(10.0, 2, "Nice heightening.")]


def test_facts_add_up():
    facts = scene_timeline(voice_scene()).facts
    assert (facts.user_lines, facts.partner_lines) == (2, 2)
    assert facts.user_talk_s == 4.5 and facts.partner_talk_s == 4.7
    assert round(facts.user_share, 3) == round(4.5 / 9.2, 3)
    assert facts.partner_cut_off_by_user == 1 and facts.partner_cut_offs_second_half == 0
    assert facts.user_cut_off_by_partner == 0
    assert facts.longest_silence_s == 0.8  # 7.0 -> 7.8
    assert facts.average_response_ms == 650
    assert facts.duration_s == 10.0


def test_the_partner_starting_before_the_player_finished_is_a_cut_off_of_the_player():
    turns = [line(1, "user", "I was saying that", 0.0, 3.0), line(2, "partner", "Yes and", 2.0, 4.0)]
    assert scene_timeline(turns).facts.user_cut_off_by_partner == 1


def test_typed_turns_without_timing_are_estimated_from_their_words():
    turns = [
        TurnRecord("s", 1, "user", "one two three four five", "text",
                   {}, dt.datetime.fromtimestamp(T0, tz=dt.UTC)),
        TurnRecord("s", 2, "partner", "six seven eight nine ten", "text",
                   {"latency_ms": 900}, dt.datetime.fromtimestamp(T0 + 3, tz=dt.UTC)),
    ]
    timeline = scene_timeline(turns)
    placed = [(s.start_s, s.end_s, s.estimated) for s in timeline.segments]
    assert placed == [(0.0, 2.0, True), (3.0, 5.0, True)]
    assert timeline.facts.average_response_ms == 900 and timeline.facts.user_share == 0.5


def test_an_empty_scene_has_no_segments_and_says_so_to_the_coach():
    timeline = scene_timeline([line(1, "mc", "Welcome")])
    assert timeline.segments == [] and timeline.facts.user_share == 0.5
    assert "none" in facts_for_coach(timeline.facts)


def test_facts_for_the_coach_state_the_numbers():
    text = facts_for_coach(scene_timeline(voice_scene()).facts)
    assert text.splitlines()[0] == "SCENE FACTS (measured):"
    assert "- player talk-time share: 49%" in text
    assert "- player cut the partner off: 1 time (0 in the second half)" in text
    assert "- partner's average response time: 650 ms" in text


def test_timeline_svg_draws_every_line_marks_the_cut_off_and_escapes_text():
    turns = [*voice_scene(), line(7, "user", '<script>alert("x")</script>', 11.0, 12.0)]
    svg = str(timeline_svg(scene_timeline(turns)))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert len(re.findall(r'<rect class="tl-seg', svg)) == 5
    assert len(re.findall(r'data-cut-off="true"', svg)) == 1
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "Coach: Nice heightening." in svg
    assert 'role="img"' in svg and "<title" in svg


def test_response_chart_has_one_bar_per_answer_and_nothing_without_answers():
    assert len(re.findall(r'class="rt-bar"', str(response_svg(scene_timeline(voice_scene()))))) == 2
    assert str(response_svg(scene_timeline([line(1, "user", "hi", 0, 1)]))) == ""


def test_sparkline_from_the_saved_shape():
    saved = shape(scene_timeline(voice_scene()))
    assert saved["facts"]["user_lines"] == 2 and len(saved["segments"]) == 4
    svg = str(sparkline_svg(saved))
    assert len(re.findall(r"<rect", svg)) == 4 and "sp-cut" in svg
    assert "you spoke 49% of the time" in svg
    assert str(sparkline_svg({})) == "" and str(sparkline_svg({"segments": [["x"], {"role": "user"}]})) == ""
