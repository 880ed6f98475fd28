"""The transcript downloads: every line with its speaker, as text/plain and text/markdown files."""

from __future__ import annotations

import pytest
from django.test import Client

from improv import selectors, transcript_export
from improv.store import get_store

LINES = [
    ("mc", "text", "Welcome to the show! Give me a place."),
    ("audience", "text", "A lighthouse!"),
    ("user", "text", "Keeper, the lamp has started writing poetry."),
    ("partner", "voice", "Yes, and it rhymes *only* with [shipwreck]."),
    ("user", "voice", "# Then we read it aloud\n- to the gulls"),
    ("coach", "text", "Nice heightening."),  # a note, not a line of the scene
]


@pytest.fixture
def scene(user, content):
    store = get_store()
    record = store.scene_create(user_id=user.id, status="closed", game_slug="questions-only")
    for speaker, mode, text in LINES:
        store.turn_append(record.id, speaker=speaker, text=text, mode=mode)
    return store.scene_get(record.id)


def test_plain_text_has_every_line_with_its_speaker_and_no_coach_notes(scene):
    text = transcript_export.as_text(selectors.scene_view(scene))
    assert "You: Keeper, the lamp has started writing poetry." in text
    assert "Puck: Yes, and it rhymes *only* with [shipwreck]." in text
    assert "MC: Welcome to the show! Give me a place." in text
    assert "Audience: A lighthouse!" in text
    assert "You: # Then we read it aloud\n    - to the gulls" in text  # the continuation stays theirs
    assert "Nice heightening" not in text
    body = text.split("\n\n", 1)[1].split("\nThe shape of the scene")[0].splitlines()
    assert [line.split(":", 1)[0] for line in body if not line.startswith("    ")] == [
        "MC",
        "Audience",
        "You",
        "Puck",
        "You",
    ]


def test_markdown_escapes_what_players_typed_so_it_reads_as_written(scene):
    md = transcript_export.as_markdown(selectors.scene_view(scene))
    assert md.startswith("# ")
    assert "**Puck:** Yes, and it rhymes \\*only\\* with \\[shipwreck\\]. *(voice)*" in md
    assert "**You:** \\# Then we read it aloud  \n\\- to the gulls *(voice)*" in md
    assert "**You:** Keeper, the lamp has started writing poetry." in md
    assert md.count("**You:**") == 2 and "Nice heightening" not in md


def test_the_download_views_send_files_with_their_type_and_name(client: Client, user, scene):
    client.force_login(user)
    for fmt, content_type in (("txt", "text/plain"), ("md", "text/markdown")):
        response = client.get(f"/scenes/{scene.id}/transcript.{fmt}")
        assert response.status_code == 200
        assert response["Content-Type"] == f"{content_type}; charset=utf-8"
        disposition = response["Content-Disposition"]
        assert disposition.startswith('attachment; filename="improv-questions-only-')
        assert disposition.endswith(f'.{fmt}"')
        assert "no-store" in response["Cache-Control"]
        body = response.content.decode()
        for speaker, _mode, text in LINES[:4]:
            assert transcript_export.speaker_name(speaker) in body
            assert text.split()[-1].strip("*[].") in body


def test_downloads_are_the_owners_alone_and_formats_are_a_fixed_list(client: Client, make_user, user, scene):
    assert client.get(f"/scenes/{scene.id}/transcript.txt").status_code == 302  # to sign-in
    client.force_login(make_user())
    assert client.get(f"/scenes/{scene.id}/transcript.txt").status_code == 404
    client.force_login(user)
    assert client.get(f"/scenes/{scene.id}/transcript.pdf").status_code == 404
    with pytest.raises(ValueError, match="unknown transcript format"):
        transcript_export.render(selectors.scene_view(scene), "pdf")


def test_the_review_page_offers_copy_and_both_downloads(client: Client, user, scene):
    client.force_login(user)
    page = client.get(f"/scenes/{scene.id}/review/").content.decode()
    assert f'href="/scenes/{scene.id}/transcript.txt" download' in page
    assert f'href="/scenes/{scene.id}/transcript.md" download' in page
    assert "data-copy-transcript hidden" in page  # revealed by review.js where the Clipboard API is
    assert 'id="transcript-text"' in page


# A voice scene as the relay saves it (epoch seconds): the player talks for 4 s, the partner
# answers 0.5 s later for 6 s; the player's second line, 3 s, cuts the partner's second line off.
T0 = 1_800_000_000.0
TIMED = [
    ("user", "Captain, the kettle is singing sea shanties.", {"started_at": T0, "ended_at": T0 + 4}),
    (
        "partner",
        "Then we sail at teatime!",
        {"started_at": T0 + 4.5, "ended_at": T0 + 10.5, "latency_ms": 500},
    ),
    ("user", "Hold on, it wants a solo.", {"started_at": T0 + 12, "ended_at": T0 + 15}),
    (
        "partner",
        "A solo? The gulls will",
        {"started_at": T0 + 15.7, "ended_at": T0 + 17.7, "latency_ms": 700, "interrupted": True},
    ),
]


@pytest.fixture
def timed_scene(user, content):
    store = get_store()
    record = store.scene_create(user_id=user.id, status="closed", game_slug="questions-only")
    for speaker, text, meta in TIMED:
        store.turn_append(record.id, speaker=speaker, text=text, mode="voice", meta=meta)
    return store.scene_get(record.id)


def test_both_downloads_carry_the_scenes_measured_shape(timed_scene):
    view = selectors.scene_view(timed_scene)
    # 7 s of the player against 8 s of the partner: 47% of the talk time.
    assert view.timeline.facts.user_share == pytest.approx(7 / 15)
    text = transcript_export.as_text(view)
    assert "The shape of the scene" in text
    assert "- Your talk time: 47% (7.0 s of 15.0 s)" in text
    assert "- Your lines: 2; your partner's lines: 2" in text
    assert "- You cut your partner off: 1 time (1 in the second half)" in text
    assert "- Longest silence: 1.5 s" in text
    assert "- Your partner's average response time: 600 ms" in text
    rows = text.split("Lines (seconds from the first line):\n", 1)[1].splitlines()
    assert rows == [
        "     0.0 to 4.0    You",
        "     4.5 to 10.5   Puck              500 ms",
        "    12.0 to 15.0   You",
        "    15.7 to 17.7   Puck     cut off  700 ms",
    ]
    assert "speaking pace" not in text  # every line here was measured

    md = transcript_export.as_markdown(view)
    assert "## The shape of the scene" in md
    assert "- Your talk time: 47% (7.0 s of 15.0 s)" in md
    assert "| Puck | 15.7 | 17.7 | cut off | 700 ms |" in md
    assert "| You | 0.0 | 4.0 | no | — |" in md


def test_typed_lines_are_timed_at_speaking_pace_and_say_so(scene):
    text = transcript_export.as_text(selectors.scene_view(scene))
    assert "The shape of the scene" in text
    assert "Typed lines are timed at speaking pace" in text
