"""The one factory for google-genai clients, configured from Django settings.

Settings (all optional; an empty one means its default from improv/gemini_defaults.py, the one
place defaults are written, which ai4joy/settings.py reads too; works before settings exist):

- `GEMINI_BACKEND` (`emulator`): `vertex` (Application Default Credentials, or `ADK_API_KEY` in
  Vertex express mode), `apikey` (Developer API with `ADK_API_KEY`), or `emulator`.
- `GCP_PROJECT_ID`, `VERTEX_AI_LOCATION` (`us-central1`): the Vertex project and region.
- `GEMINI_EMULATOR_URL`, `GEMINI_EMULATOR_CA_FILE`: the local emulator and the CA that signed
  its certificate (its ready file has both).
- `GEMINI_TEXT_MODEL` (`gemini-2.5-flash`), `GEMINI_LIVE_MODEL` (per backend: `DEFAULT_LIVE_MODELS`).
- `GEMINI_TIMEOUT_S` (20): HTTP timeout per attempt.
- `GEMINI_HTTP_RETRY_ATTEMPTS` (3, first try included; 1 disables), `GEMINI_HTTP_RETRY_INITIAL_DELAY_S`
  (0.5), `GEMINI_HTTP_RETRY_MAX_DELAY_S` (8): the SDK retries 408/429/5xx and transport errors
  with exponential backoff and jitter.
- `GEMINI_WS_PING_INTERVAL` (20), `GEMINI_WS_PING_TIMEOUT` (60): Live socket keepalive, seconds.

The emulator backend goes down the real Vertex code path (project + location URLs, Bearer
auth) with a fixed access token instead of Application Default Credentials, and trusts only the
emulator's CA, passed through `http_options` (no environment variables, no monkeypatching).
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from google import genai
from google.genai import types
from google.oauth2.credentials import Credentials

from improv.gemini_defaults import DEFAULTS

BACKENDS = ("vertex", "apikey", "emulator")
# Vertex's GA native-audio Live model; the Developer API serves Live models as previews.
DEFAULT_LIVE_MODELS = {
    "vertex": "gemini-live-2.5-flash-native-audio",
    "emulator": "gemini-live-2.5-flash-native-audio",
    "apikey": "gemini-3.1-flash-live-preview",
}
_RETRY_STATUS_CODES = [408, 429, 500, 502, 503, 504]
_EMULATOR_PROJECT = "ai4joy-local"
_EMULATOR_TOKEN = "emulator-access-token"  # not a secret: the emulator takes any token


def _setting(name: str, default: Any = None) -> Any:
    default = DEFAULTS.get(name) if default is None else default
    if not settings.configured:
        return default
    value = getattr(settings, name, default)
    return default if value in (None, "") else value


def backend() -> str:
    name = str(_setting("GEMINI_BACKEND")).lower()
    if name not in BACKENDS:
        raise ImproperlyConfigured(f"GEMINI_BACKEND must be one of {', '.join(BACKENDS)}, not {name!r}")
    return name


def text_model() -> str:
    return str(_setting("GEMINI_TEXT_MODEL"))


def live_model() -> str:
    return str(_setting("GEMINI_LIVE_MODEL", DEFAULT_LIVE_MODELS[backend()]))


def voice() -> str:
    return str(_setting("GEMINI_VOICE"))


def live_keepalive_args() -> dict[str, float]:
    """`websockets.connect` keepalive arguments for the Live socket (part of `async_client_args`).

    The SDK hands these only to the WebSocket; its REST clients ignore them.
    """
    return {
        "ping_interval": float(_setting("GEMINI_WS_PING_INTERVAL")),
        "ping_timeout": float(_setting("GEMINI_WS_PING_TIMEOUT")),
    }


def retry_options() -> types.HttpRetryOptions:
    return types.HttpRetryOptions(
        attempts=int(_setting("GEMINI_HTTP_RETRY_ATTEMPTS")),
        initial_delay=float(_setting("GEMINI_HTTP_RETRY_INITIAL_DELAY_S")),
        max_delay=float(_setting("GEMINI_HTTP_RETRY_MAX_DELAY_S")),
        http_status_codes=_RETRY_STATUS_CODES,
    )


def _emulator_trust() -> tuple[str, ssl.SSLContext]:
    url = str(_setting("GEMINI_EMULATOR_URL"))
    ca_file = str(_setting("GEMINI_EMULATOR_CA_FILE"))
    if not url or not ca_file:
        raise ImproperlyConfigured(
            "GEMINI_BACKEND=emulator needs GEMINI_EMULATOR_URL and GEMINI_EMULATOR_CA_FILE "
            "(start it with `python -m emulator --state-dir var/emulator --ready-file ...`)."
        )
    try:
        return url.rstrip("/"), ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ImproperlyConfigured(
            f"GEMINI_EMULATOR_CA_FILE {ca_file!r} is not a readable CA: {exc}"
        ) from exc


def http_options() -> types.HttpOptions:
    timeout_ms = int(float(_setting("GEMINI_TIMEOUT_S")) * 1000)
    async_args: dict[str, Any] = dict(live_keepalive_args())
    options: dict[str, Any] = {"timeout": timeout_ms, "retry_options": retry_options()}
    if backend() == "emulator":
        url, ctx = _emulator_trust()
        # The SDK takes the CA under "verify" for httpx and "ssl" for aiohttp and the WebSocket,
        # and drops the keys each transport does not accept.
        options["base_url"] = url
        options["client_args"] = {"verify": ctx}
        async_args.update(verify=ctx, ssl=ctx)
    options["async_client_args"] = async_args
    return types.HttpOptions(**options)


def build_client() -> genai.Client:
    """A new client for the configured backend. Prefer `get_client()`."""
    name = backend()
    api_key = str(_setting("ADK_API_KEY"))
    project = str(_setting("GCP_PROJECT_ID"))
    location = str(_setting("VERTEX_AI_LOCATION"))
    options = http_options()
    if name == "apikey":
        if not api_key:
            raise ImproperlyConfigured("GEMINI_BACKEND=apikey needs ADK_API_KEY.")
        return genai.Client(api_key=api_key, http_options=options)
    if name == "emulator":
        return genai.Client(
            vertexai=True,
            project=project or _EMULATOR_PROJECT,
            location=location,
            credentials=Credentials(token=_EMULATOR_TOKEN),
            http_options=options,
        )
    if api_key:
        # Vertex express mode: the key replaces project/location (the SDK refuses both).
        return genai.Client(vertexai=True, api_key=api_key, http_options=options)
    if not project:
        raise ImproperlyConfigured("GEMINI_BACKEND=vertex needs GCP_PROJECT_ID (or ADK_API_KEY).")
    # Application Default Credentials: the Cloud Run service account in production.
    return genai.Client(vertexai=True, project=project, location=location, http_options=options)


_SETTING_NAMES = (
    "GEMINI_BACKEND",
    "GCP_PROJECT_ID",
    "VERTEX_AI_LOCATION",
    "ADK_API_KEY",
    "GEMINI_EMULATOR_URL",
    "GEMINI_EMULATOR_CA_FILE",
    "GEMINI_TIMEOUT_S",
    "GEMINI_HTTP_RETRY_ATTEMPTS",
    "GEMINI_HTTP_RETRY_INITIAL_DELAY_S",
    "GEMINI_HTTP_RETRY_MAX_DELAY_S",
    "GEMINI_WS_PING_INTERVAL",
    "GEMINI_WS_PING_TIMEOUT",
)
_cache: dict[tuple[Any, ...], genai.Client] = {}
_cache_lock = threading.Lock()


def get_client() -> genai.Client:
    """The process's client for the current settings.

    Keyed by the settings it was built from, so `override_settings` in tests (or an emulator
    restarted on a new port) gets a fresh client instead of a stale one.
    """
    key = tuple(_setting(name) for name in _SETTING_NAMES)
    with _cache_lock:
        client = _cache.get(key)
        if client is None:
            if len(_cache) >= 8:  # settings rarely change; never let the cache grow unbounded
                _cache.clear()
            client = _cache[key] = build_client()
        return client
