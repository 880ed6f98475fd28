"""Status names, defined here once: the scene lifecycle (its rules: improv/lifecycle.py) and the
audio session (one voice socket). A leaf module: the models, the store and the rules all use it.
"""

from __future__ import annotations

# Scene lifecycle (the guide's "session").
MC_WELCOME = "mc_welcome"
GAME_SELECTION = "game_selection"
SUGGESTION = "suggestion"
ACTIVE = "active"
SCENE_COMPLETE = "scene_complete"
COACHING = "coaching"
CLOSED = "closed"
EXPIRED = "expired"

# An audio session (one voice socket).
AUDIO_ACTIVE = "active"
AUDIO_ENDED = "ended"
AUDIO_FAILED = "failed"
