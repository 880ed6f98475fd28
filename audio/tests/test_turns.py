"""audio/turns.py: what a voice turn records for the scene review's timeline."""

from __future__ import annotations

from audio.protocol import OUT_RATE
from audio.turns import SessionTally


def test_a_spoken_exchange_records_when_each_line_started_and_ended():
    tally = SessionTally()
    wall = tally._wall_offset
    for t in (10.0, 10.5, 11.0):  # the player speaks from 10.0 to 11.0
        tally.voiced(t)
    tally.user_text = "hello moon"
    tally.partner_audio(2 * OUT_RATE, 11.6)  # one second of partner audio, arriving at once
    tally.partner_text = "yes, and"
    turn = tally.complete_turn()
    assert turn.latency_ms == 600
    user, partner = turn.meta("user"), turn.meta("partner")
    assert (user["started_at"], user["ended_at"]) == (round(10.0 + wall, 3), round(11.0 + wall, 3))
    assert user["typed"] is False
    # It ends when its last sample has played, not when the bytes arrived.
    assert (partner["started_at"], partner["ended_at"]) == (round(11.6 + wall, 3), round(12.6 + wall, 3))
    assert partner["interrupted"] is False and partner["latency_ms"] == 600


def test_a_barge_in_cuts_the_partner_off_and_starts_the_next_line():
    tally = SessionTally()
    wall = tally._wall_offset
    tally.voiced(1.0)
    tally.user_text = "first"
    tally.partner_audio(4800, 2.0)
    tally.voiced(2.3)  # the player talks over the partner...
    tally.partner_audio(4800, 2.5)
    tally.interrupted = True  # ...and the service stops it
    turn = tally.complete_turn()
    assert turn.meta("partner")["ended_at"] == round(2.5 + wall, 3)  # cut off with its last audio
    tally.voiced(3.0)
    tally.user_text = "second"
    following = tally.complete_turn()
    assert following.meta("user")["started_at"] == round(2.3 + wall, 3)
    assert following.meta("user")["ended_at"] == round(3.0 + wall, 3)


def test_a_typed_line_has_a_start_and_no_measured_end():
    tally = SessionTally()
    tally.typed("a typed line", 5.0)
    meta = tally.complete_turn().meta("user")
    assert meta["typed"] is True and "started_at" in meta and "ended_at" not in meta
