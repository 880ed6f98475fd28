"""State shared by every request of one emulator: options, faults, conversations, counters."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from emulator.faults import FaultPlan
from emulator.speaker import Spoken
from emulator.tts import SpeechCache

_MAX_HISTORY = 64  # entries kept per conversation: a sliding window, like context compression
_MAX_HANDLES = 10_000
_MAX_RECORDED = 256  # conversations whose record /emulator/conversations keeps (newest)
_MAX_RECORD = 4096  # record entries kept per conversation (an hour of talk is ~1,500)
HANDLE_TTL_S = 2 * 3600  # the Developer API documents 2 hours


@dataclass(frozen=True)
class Options:
    seed: int | None = None
    live_lifetime_s: float = 600.0
    # goAway's timeLeft; None: min(60 s, lifetime/2). A time-compressed test keeps it long
    # enough for one whole turn while the lifetime shrinks.
    go_away_lead_s: float | None = None
    realtime_factor: float = 1.0  # >1 sends reply audio faster than real time (tests only)
    max_frame_bytes: int = 1 << 20
    max_body_bytes: int = 4 << 20
    chunk_ms: int = 80


@dataclass
class Said:
    """One partner reply as it went out: the words sent so far, and how it ended."""

    connection: int
    spoken: Spoken
    at: float = field(default_factory=time.time)
    ended: str = ""  # "complete", "interrupted", or "cut" (the connection closed mid-reply)
    total_tokens: int | None = None  # the turnComplete's usage, once it was sent

    def describe(self) -> dict[str, Any]:
        return {
            "event": "said",
            "connection": self.connection,
            "text": self.spoken.text,
            "audio_s": round(self.spoken.audio_seconds, 3),
            "ended": self.ended,
            "total_tokens": self.total_tokens,
            "t": round(self.at, 3),
        }


@dataclass
class Conversation:
    """One Live conversation; survives reconnects through its resumption handles.

    `record` is what the emulator heard and said, connection by connection, for tests that
    compare it with what a client saved (GET /emulator/conversations): `connected`, `heard`
    (a user turn it answers: its transcript), `said` (a reply: the words sent), `go_away`,
    `fault`, `closed` (code, and who closed). Bounded: the oldest entries go first.
    """

    system_text: str
    history: list[tuple[str, str]] = field(default_factory=list)
    turns: int = 0
    active: bool = False
    id: str = ""
    connections: int = 0
    record: list[dict[str, Any] | Said] = field(default_factory=list)
    record_dropped: int = 0

    def note(self, entry: dict[str, Any] | Said) -> None:
        if isinstance(entry, dict):
            entry.setdefault("t", round(time.time(), 3))
        self.record.append(entry)
        if len(self.record) > _MAX_RECORD:
            del self.record[0]
            self.record_dropped += 1

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "turns": self.turns,
            "connections": self.connections,
            "active": self.active,
            "record_dropped": self.record_dropped,
            "record": [e.describe() if isinstance(e, Said) else dict(e) for e in self.record],
        }

    def add(self, role: str, text: str) -> None:
        if text:
            self.history.append((role, text))
            del self.history[:-_MAX_HISTORY]

    def context(self) -> tuple[str, ...]:
        """What the scene is about: recent user turns, latest first, then the system instruction."""
        users = [text for role, text in self.history[-12:] if role == "user" and not text.startswith("[")]
        return (*reversed(users), self.system_text)

    def prompt_text(self) -> str:
        return " ".join([self.system_text, *(text for _, text in self.history)])


class ConversationStore:
    """Resumption handle -> conversation, bounded in count and age."""

    def __init__(self, seed: int | None) -> None:
        self._by_handle: OrderedDict[str, tuple[float, Conversation]] = OrderedDict()
        self._seed = seed
        self._counter = 0

    def new_handle(self, conversation: Conversation) -> str:
        self._counter += 1
        if self._seed is None:
            handle = "emu-" + secrets.token_urlsafe(18)
        else:
            handle = f"emu-{self._seed}-{self._counter}"
        self._by_handle[handle] = (time.monotonic(), conversation)
        while len(self._by_handle) > _MAX_HANDLES:
            self._by_handle.popitem(last=False)
        return handle

    def resume(self, handle: str) -> Conversation | None:
        entry = self._by_handle.get(handle)
        if entry is None or time.monotonic() - entry[0] > HANDLE_TTL_S:
            return None
        return entry[1]

    def __len__(self) -> int:
        return len(self._by_handle)


@dataclass
class Stats:
    http_requests: int = 0
    http_errors: int = 0
    live_connections: int = 0
    live_active: int = 0
    live_turns: int = 0
    live_interrupted: int = 0
    live_resumed: int = 0
    faults_fired: int = 0


class ServerState:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.faults = FaultPlan()
        self.stats = Stats()
        self.conversations = ConversationStore(options.seed)
        self.speech = SpeechCache()
        self._conn_counter = 0
        self.recorded: OrderedDict[str, Conversation] = OrderedDict()
        self._conversation_counter = 0

    def new_conversation(self, system_text: str) -> Conversation:
        """A fresh conversation, kept (the newest _MAX_RECORDED) for /emulator/conversations."""
        self._conversation_counter += 1
        conv = Conversation(system_text=system_text, id=f"conv-{self._conversation_counter}")
        self.recorded[conv.id] = conv
        while len(self.recorded) > _MAX_RECORDED:
            self.recorded.popitem(last=False)
        return conv

    def describe_conversations(self) -> dict[str, Any]:
        return {"conversations": [conv.describe() for conv in self.recorded.values()]}

    def salt(self, *parts: object) -> str:
        return ":".join(str(p) for p in (self.options.seed, *parts))

    def describe(self) -> dict[str, Any]:
        return {
            **self.stats.__dict__,
            "resumption_handles": len(self.conversations),
            "tts_cache": {"hits": self.speech.hits, "misses": self.speech.misses},
            "faults_pending": self.faults.describe(),
        }
