"""Turns client input into what the partner reacts to: "the user cut in" and "the user's turn".

Pure and synchronous (no I/O), so the turn-taking rules can be read and tested on their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator import live_protocol as lp
from emulator.vad import Segmenter, SpeechEnded, SpeechStarted

MIN_SPOKEN_TURN_S = 0.2  # shorter blips are coughs and clicks, not turns
MIN_ACTIVITY_S = 0.1


@dataclass(frozen=True)
class UserTurn:
    text: str
    heard_s: float = 0.0
    from_audio: bool = False
    recorded: bool = False  # clientContent turns are already in the history


@dataclass(frozen=True)
class Interrupt:
    pass


@dataclass(frozen=True)
class Record:
    """Context the client supplied (clientContent) without asking for a reply to it yet."""

    role: str
    text: str


Action = UserTurn | Interrupt | Record


class Listener:
    def __init__(self, setup: lp.Setup) -> None:
        self._vad_disabled = setup.vad_disabled
        self._segmenter = Segmenter(silence_ms=setup.silence_ms)
        self._activity_s: float | None = None  # seconds heard inside an explicit activity

    def hear(self, message: lp.Message) -> list[Action]:
        if isinstance(message, lp.Audio):
            return self._audio(message)
        if isinstance(message, lp.ActivityStart):
            self._activity_s = 0.0
            return [Interrupt()]
        if isinstance(message, lp.ActivityEnd):
            heard, self._activity_s = self._activity_s or 0.0, None
            return [UserTurn("", heard, from_audio=True)] if heard >= MIN_ACTIVITY_S else []
        if isinstance(message, lp.AudioStreamEnd):
            return [
                UserTurn("", e.seconds, from_audio=True)
                for e in self._segmenter.flush()
                if isinstance(e, SpeechEnded) and e.seconds >= MIN_SPOKEN_TURN_S
            ]
        if isinstance(message, lp.Text):
            return [Interrupt(), UserTurn(message.text)]
        if isinstance(message, lp.ClientContent):
            actions: list[Action] = [
                Record("model" if role == "model" else "user", text) for role, text in message.turns
            ]
            if message.turn_complete:
                users = [t for r, t in message.turns if r != "model"]
                actions += [Interrupt(), UserTurn(users[-1] if users else "", recorded=True)]
            return actions
        return []

    def _audio(self, audio: lp.Audio) -> list[Action]:
        if self._vad_disabled:
            # Without automatic detection the service only listens inside an activity.
            if self._activity_s is not None:
                self._activity_s += len(audio.pcm) / (2 * audio.rate)
            return []
        actions: list[Action] = []
        for event in self._segmenter.feed(audio.pcm, audio.rate):
            if isinstance(event, SpeechStarted):
                actions.append(Interrupt())
            elif isinstance(event, SpeechEnded) and event.seconds >= MIN_SPOKEN_TURN_S:
                actions.append(UserTurn("", event.seconds, from_audio=True))
        return actions
