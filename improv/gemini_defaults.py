"""The default of every Gemini setting, written once.

ai4joy/settings.py uses them as the environment's defaults, and improv/gemini.py falls back to
them when a setting is empty (or settings are not configured). Plain constants, so the settings
module can import this before any app is loaded.
"""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    "GEMINI_BACKEND": "emulator",
    "GCP_PROJECT_ID": "",
    "VERTEX_AI_LOCATION": "us-central1",
    "ADK_API_KEY": "",
    "GEMINI_EMULATOR_URL": "",
    "GEMINI_EMULATOR_CA_FILE": "",
    "GEMINI_TEXT_MODEL": "gemini-2.5-flash",
    "GEMINI_LIVE_MODEL": "",  # empty: per backend, improv.gemini.DEFAULT_LIVE_MODELS
    "GEMINI_VOICE": "Puck",
    "GEMINI_TIMEOUT_S": 20.0,  # seconds per HTTP attempt
    # The SDK retries 408/429/5xx itself with exponential backoff (one place for retries).
    "GEMINI_HTTP_RETRY_ATTEMPTS": 3,  # first try included; 1 disables
    "GEMINI_HTTP_RETRY_INITIAL_DELAY_S": 0.5,
    "GEMINI_HTTP_RETRY_MAX_DELAY_S": 8.0,
    # Live socket keepalive: Gemini's pongs have been measured at 8-30 s, and websockets' default
    # 20 s timeout kills sessions, so be generous.
    "GEMINI_WS_PING_INTERVAL": 20.0,
    "GEMINI_WS_PING_TIMEOUT": 60.0,
}
