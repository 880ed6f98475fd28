"""State shared by every request of one emulator: options, faults, conversations, counters."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from emulator.faults import FaultPlan
from emulator.tts import SpeechCache

_MAX_HISTORY = 64  # entries kept per conversation: a sliding window, like context compression
_MAX_HANDLES = 10_000
HANDLE_TTL_S = 2 * 3600  # the Developer API documents 2 hours


@dataclass(frozen=True)
class Options:
    seed: int | None = None
    live_lifetime_s: float = 600.0
    go_away_lead_s: float = 60.0
    realtime_factor: float = 1.0  # >1 sends reply audio faster than real time (tests only)
    max_frame_bytes: int = 1 << 20
    max_body_bytes: int = 4 << 20
    chunk_ms: int = 80


@dataclass
class Conversation:
    """One Live conversation; survives reconnects through its resumption handles."""

    system_text: str
    history: list[tuple[str, str]] = field(default_factory=list)
    turns: int = 0
    active: bool = False

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

    def salt(self, *parts: object) -> str:
        return ":".join(str(p) for p in (self.options.seed, *parts))

    def describe(self) -> dict[str, Any]:
        return {
            **self.stats.__dict__,
            "resumption_handles": len(self.conversations),
            "tts_cache": {"hits": self.speech.hits, "misses": self.speech.misses},
            "faults_pending": self.faults.describe(),
        }
