"""The uplink: its loudness gate, without audioop (removed from the standard library in Python
3.13), and the order in which audio and control messages go upstream."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from array import array
from pathlib import Path

from audio.turns import SessionTally
from audio.uplink import BATCH_MAX, SPEECH_RMS, Uplink, level

REPO = Path(__file__).resolve().parents[2]


def _pcm(samples: list[int]) -> bytes:
    return array("h", samples).tobytes()


def test_level_is_the_rms_of_pcm16():
    assert level(b"") == 0 and level(b"\x01") == 0  # nothing, or half a sample
    assert level(_pcm([0] * 1600)) == 0
    assert level(_pcm([1000, -1000] * 800)) == 1000  # a square wave: rms = amplitude
    sine = [round(8000 * math.sin(2 * math.pi * 440 * i / 16000)) for i in range(1600)]
    assert abs(level(_pcm(sine)) - 8000 / math.sqrt(2)) < 8000 * 0.1  # within 10% from 64 samples


def test_the_speech_gate_separates_quiet_from_speech():
    hiss = [(-1) ** i * 40 for i in range(1600)]
    voice = [round(3000 * math.sin(2 * math.pi * 200 * i / 16000)) for i in range(1600)]
    assert level(_pcm(hiss)) < SPEECH_RMS <= level(_pcm(voice))


def test_the_relay_imports_and_measures_without_audioop():
    # `sys.modules[name] = None` makes `import name` fail, as on Python 3.13 where audioop is gone.
    code = (
        "import sys; sys.modules['audioop'] = None\n"
        "import django; django.setup()\n"
        "import audio.relay, audio.uplink\n"
        "from array import array\n"
        "print(audio.uplink.level(array('h', [1000, -1000] * 800).tobytes()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"DJANGO_SETTINGS_MODULE": "ai4joy.settings", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1000"


class RecordingSession:
    """What the uplink sends upstream, in order (LiveWire's two send methods)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []  # (kind, PCM or the typed text's bytes)

    async def send_audio(self, pcm: bytes) -> None:
        self.sent.append(("audio", pcm))

    async def send_realtime_input(self, **kwargs: object) -> None:
        ((key, value),) = kwargs.items()
        self.sent.append((key, str(value).encode() if key == "text" else b""))


class OneSession:
    def __init__(self, session: RecordingSession) -> None:
        self._session = session

    async def session(self) -> RecordingSession:
        return self._session

    async def replaced(self, session: RecordingSession) -> None:
        raise AssertionError("no send fails here")


async def _drain(uplink: Uplink, session: RecordingSession, until: int) -> None:
    task = asyncio.create_task(uplink.run(OneSession(session)))  # type: ignore[arg-type]
    for _ in range(200):
        await asyncio.sleep(0.01)
        if len(session.sent) >= until:
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_push_to_talk_marks_keep_their_place_in_the_audio():
    # Everything arrives before the sender runs once (one TCP read's worth of frames): the
    # audio spoken between the marks must still go between them, or the service ignores it.
    uplink = Uplink(tally=SessionTally(), push_to_talk=True)
    before, during, after = b"\x01\x00" * 800, b"\x02\x00" * 4000, b"\x03\x00" * 800
    uplink.feed_audio(before)
    uplink.control("activity_start")
    for i in range(0, len(during), 1280):
        uplink.feed_audio(during[i : i + 1280])
    uplink.control("activity_end")
    uplink.feed_audio(after)
    session = RecordingSession()
    await _drain(uplink, session, until=7)
    kinds = [kind for kind, _ in session.sent]
    start, end = kinds.index("activity_start"), kinds.index("activity_end")
    audio = [(i, pcm) for i, (kind, pcm) in enumerate(session.sent) if kind == "audio"]
    assert b"".join(pcm for i, pcm in audio if i < start) == before
    assert b"".join(pcm for i, pcm in audio if start < i < end) == during
    assert b"".join(pcm for i, pcm in audio if i > end) == after
    assert all(len(pcm) <= BATCH_MAX for _, pcm in audio)


async def test_a_requeued_turn_goes_before_the_audio_still_held():
    uplink = Uplink(tally=SessionTally(), push_to_talk=False)
    uplink.feed_audio(b"\x05\x00" * 2000)
    uplink.requeue_unanswered("the turn the lost connection heard")
    session = RecordingSession()
    await _drain(uplink, session, until=3)
    assert session.sent[0] == ("text", b"the turn the lost connection heard")
    assert b"".join(pcm for kind, pcm in session.sent[1:] if kind == "audio") == b"\x05\x00" * 2000


# --- when a goAway may move the conversation (audio/downlink.py) -------------------------------
def _downlink(tally, *, go_away: bool = True):
    from types import SimpleNamespace
    from typing import Any, cast

    from audio.downlink import Downlink

    none = cast(Any, None)
    return Downlink(browser=none, upstream=cast(Any, SimpleNamespace(go_away=go_away)), uplink=none,
                    tally=tally, session_id="s", on_turn=none, observer=none)


def test_a_go_away_waits_while_the_user_speaks_or_holds_push_to_talk():
    import time

    from audio.downlink import USER_PAUSE_S
    from audio.turns import SessionTally
    from audio.uplink import Uplink

    tally = SessionTally()
    assert _downlink(tally, go_away=False)._move_in() is None  # no goAway: just keep receiving
    assert _downlink(tally)._move_in() == 0  # between turns, nobody talking: move now
    tally.voiced(time.monotonic())  # the user is mid-line, not transcribed yet
    assert 0 < _downlink(tally)._move_in() <= USER_PAUSE_S
    tally.speech_end_at = time.monotonic() - USER_PAUSE_S  # ...and fell silent long enough ago
    assert _downlink(tally)._move_in() == 0

    held = SessionTally()
    uplink = Uplink(tally=held, push_to_talk=True)
    uplink.control("activity_start")
    assert held.talking and _downlink(held)._move_in() is None
    uplink.control("activity_end")
    assert not held.talking and held.speech_end_at is not None
    hands_free = SessionTally()
    Uplink(tally=hands_free, push_to_talk=False).control("activity_start")  # ignored without PTT
    assert not hands_free.talking

    heard = SessionTally()
    heard.user_text = "[1.2 s of speech]"  # the turn is open: the connection that heard it answers
    assert _downlink(heard)._move_in() is None
