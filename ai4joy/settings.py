"""One settings module, driven by the environment (12-factor).

With nothing set it runs locally on embedded defaults: SQLite, an in-memory channel
layer and cache, the ORM session store and the local Gemini emulator. Production sets
everything (see README "Configuration"); `python manage.py check --deploy` is clean then.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import environ

from improv.gemini_defaults import DEFAULTS as GEMINI_DEFAULTS

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- Core -----------------------------------------------------------------------------
# AI4JOY_ENV=production switches on every production default (secure cookies, HSTS,
# hashed static files, a required secret key); local is the embedded default.
PRODUCTION = env.str("AI4JOY_ENV", default="local") == "production"
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="" if PRODUCTION else "insecure-local-only-key")
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Which routes this process serves: api (pages, REST, admin, sign-in), audio (voice
# WebSockets) or all (local default). One image, two Cloud Run services.
SERVICE_ROLE = env.str("SERVICE_ROLE", default="all")
if SERVICE_ROLE not in {"api", "audio", "all"}:
    raise environ.ImproperlyConfigured("SERVICE_ROLE must be api, audio or all")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    # Only as an app does django-ninja serve Swagger UI from its own static files; without it the
    # docs page pulls the UI from a CDN and stays blank offline.
    "ninja",
    "waffle",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "flags",
    "accounts",
    "improv",
    "audio",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "ai4joy.logging.RequestContextMiddleware",
    "ai4joy.health.ProbeMiddleware",  # health probes: before anything validates the Host header
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "waffle.middleware.WaffleMiddleware",
]

ROOT_URLCONF = "ai4joy.urls"
ASGI_APPLICATION = "ai4joy.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.sign_in_options",
            ],
        },
    },
]

# --- Data -----------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# A connection per request (HTTP under ASGI runs each request on a thread of its own: a persistent
# connection there would never be reused). The voice path keeps its one connection for
# VOICE_DB_CONN_MAX_AGE seconds instead (improv/store/__init__.py, store_call), health-checked
# before each call's first query, so a connection the database dropped is replaced.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=0))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", env.bool("DB_CONN_HEALTH_CHECKS", default=True))
VOICE_DB_CONN_MAX_AGE = env.float("VOICE_DB_CONN_MAX_AGE", default=300.0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The local default and the benchmark's: WAL, so readers and the one writer never block each
    # other (page loads, the voice path, several serve processes), and synchronous=NORMAL, so a
    # commit appends to the WAL without an fsync (the WAL is synced at checkpoints: a power cut
    # may lose the newest commits, never the file). This halves a voice turn's CPU on SQLite
    # (bench/turn_write_bench.py). IMMEDIATE takes the write lock at BEGIN, so a transaction that
    # reads before it writes waits on the busy timeout instead of failing "database is locked".
    # A `?init_command=...&transaction_mode=...` on DATABASE_URL overrides these.
    _sqlite = DATABASES["default"].setdefault("OPTIONS", {})
    _sqlite.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
    _sqlite.setdefault("transaction_mode", "IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis, riding out a Redis outage instead of ending every consumer.
            "BACKEND": "ai4joy.channel_layer.ResilientRedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, which cuts channels_redis's
                # 5 s blocking BZPOPMIN short and kills every consumer idle for 5 s
                # (django/channels_redis#422); read timeouts stay, longer than the pop.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": env.str("CHANNEL_PREFIX", default="ai4joy"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_PREFIX", default="ai4joy"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Waffle flags on flags.Flag (deterministic per-user percentages), cached in their own
# short-lived cache so a rollout change reaches every process within seconds even
# without a shared cache; with Redis, saving a flag also flushes it at once.
WAFFLE_FLAG_MODEL = "flags.Flag"
WAFFLE_CREATE_MISSING_FLAGS = False  # audio_v2 comes from a data migration, off
WAFFLE_CACHE_NAME = "flags"
# waffle's 0001 would still create the swapped-out waffle_flag tables; this skips them.
DATABASE_ROUTERS = ["flags.routers.SwappedWaffleModelsRouter"]
CACHES["flags"] = {
    **(CACHES["default"] if REDIS_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                            "LOCATION": "flags"}),
    "TIMEOUT": env.int("FLAG_CACHE_TIMEOUT", default=5),
}
# Rollout guard (`manage.py rollout guard`): its numbers come from the audio app (AudioConfig.ready).
ROLLOUT_GUARD_WINDOW_MINUTES = env.int("ROLLOUT_GUARD_WINDOW_MINUTES", default=10)
ROLLOUT_GUARD_ERROR_RATE = env.float("ROLLOUT_GUARD_ERROR_RATE", default=0.10)
ROLLOUT_GUARD_MIN_SESSIONS = env.int("ROLLOUT_GUARD_MIN_SESSIONS", default=20)

# Where scenes, turns and audio-session records live: django (ORM) or firestore.
SESSION_STORE = env.str("SESSION_STORE", default="django")
FIRESTORE_DATABASE = env.str("FIRESTORE_DATABASE", default="(default)")

# --- Gemini ---------------------------------------------------------------------------
# Defaults (and what each one means): improv/gemini_defaults.py, written there once.


def _gemini(name: str, read: Any) -> Any:
    return read(name, default=GEMINI_DEFAULTS[name])


GCP_PROJECT_ID = _gemini("GCP_PROJECT_ID", env.str)
VERTEX_AI_LOCATION = _gemini("VERTEX_AI_LOCATION", env.str)
ADK_API_KEY = _gemini("ADK_API_KEY", env.str)
GEMINI_BACKEND = _gemini("GEMINI_BACKEND", env.str)
GEMINI_EMULATOR_URL = _gemini("GEMINI_EMULATOR_URL", env.str)
GEMINI_EMULATOR_CA_FILE = _gemini("GEMINI_EMULATOR_CA_FILE", env.str)
GEMINI_TEXT_MODEL = _gemini("GEMINI_TEXT_MODEL", env.str)
GEMINI_LIVE_MODEL = _gemini("GEMINI_LIVE_MODEL", env.str)
GEMINI_VOICE = _gemini("GEMINI_VOICE", env.str)
GEMINI_TIMEOUT_S = _gemini("GEMINI_TIMEOUT_S", env.float)
GEMINI_HTTP_RETRY_ATTEMPTS = _gemini("GEMINI_HTTP_RETRY_ATTEMPTS", env.int)
GEMINI_HTTP_RETRY_INITIAL_DELAY_S = _gemini("GEMINI_HTTP_RETRY_INITIAL_DELAY_S", env.float)
GEMINI_HTTP_RETRY_MAX_DELAY_S = _gemini("GEMINI_HTTP_RETRY_MAX_DELAY_S", env.float)
GEMINI_WS_PING_INTERVAL = _gemini("GEMINI_WS_PING_INTERVAL", env.float)
GEMINI_WS_PING_TIMEOUT = _gemini("GEMINI_WS_PING_TIMEOUT", env.float)

# --- Improv scenes (per-user limits, scene length, idle expiry) ----------------------------
IMPROV_SCENES_PER_DAY = env.int("IMPROV_SCENES_PER_DAY", default=50)
IMPROV_MAX_OPEN_SCENES = env.int("IMPROV_MAX_OPEN_SCENES", default=3)
IMPROV_MAX_TURN_CHARS = env.int("IMPROV_MAX_TURN_CHARS", default=500)
IMPROV_SCENE_TURNS = env.int("IMPROV_SCENE_TURNS", default=15)
IMPROV_IDLE_EXPIRY_MINUTES = env.int("IMPROV_IDLE_EXPIRY_MINUTES", default=60)

# --- Voice ----------------------------------------------------------------------------
WEBSOCKET_TIMEOUT = env.int("WEBSOCKET_TIMEOUT", default=3600)
# Seconds; a fraction is allowed (time-compressed tests scale it down with the rest).
WEBSOCKET_PING_INTERVAL = env.float("WEBSOCKET_PING_INTERVAL", default=30.0)
# A voice turn that cannot be saved (the store is down) stays queued in memory and is retried;
# the player is told only once saving has failed for this long.
VOICE_SAVE_NOTICE_S = env.float("VOICE_SAVE_NOTICE_S", default=10.0)
DRAIN_TIMEOUT = env.float("DRAIN_TIMEOUT", default=8.0)

# --- Voice cost and the daily budget breaker (audio/cost.py, audio/budget.py) --------------
# Vertex AI Live API list prices for gemini-live-2.5-flash-native-audio, USD per 1M tokens
# (README "Operations: cost" has the source and how sure we are of it). Overridable per env.
VOICE_PRICING: dict[str, Any] = {
    "model": "gemini-live-2.5-flash-native-audio",
    "source": "https://cloud.google.com/vertex-ai/generative-ai/pricing (Live API, standard tier)",
    "as_of": "2026-05",
    "usd_per_million_tokens": {
        "in_text": env.float("VOICE_PRICE_IN_TEXT", default=0.50),
        "in_audio": env.float("VOICE_PRICE_IN_AUDIO", default=3.00),
        "out_text": env.float("VOICE_PRICE_OUT_TEXT", default=2.00),
        "out_audio": env.float("VOICE_PRICE_OUT_AUDIO", default=12.00),
    },
}
# When today's estimated voice spend reaches this, new voice sockets are refused (text mode
# carries on; live sessions finish). 0 turns the breaker off. "Today" is in this time zone.
VOICE_DAILY_BUDGET_USD = env.float("VOICE_DAILY_BUDGET_USD", default=0.0)
VOICE_BUDGET_TIME_ZONE = env.str("VOICE_BUDGET_TIME_ZONE", default="UTC")
VOICE_BUDGET_CACHE_S = env.float("VOICE_BUDGET_CACHE_S", default=30.0)

# --- Telemetry (ai4joy/telemetry.py): OpenTelemetry metrics and traces --------------------
# OTEL_EXPORTER=gcp sends them to Cloud Monitoring and Cloud Trace; empty (the default)
# records nothing beyond the no-op API, so local runs and tests export nothing.
OTEL_EXPORTER = env.str("OTEL_EXPORTER", default="")
if OTEL_EXPORTER not in {"", "gcp"}:
    raise environ.ImproperlyConfigured("OTEL_EXPORTER must be empty or gcp")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default=f"ai4joy-{SERVICE_ROLE}")
OTEL_METRIC_INTERVAL_S = env.float("OTEL_METRIC_INTERVAL_S", default=60.0)
OTEL_TRACE_SAMPLE_RATIO = env.float("OTEL_TRACE_SAMPLE_RATIO", default=1.0)

# --- Sign-in --------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
SITE_ID = 1
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
# Email + password sign-in is for local use; production turns it off and uses Google.
ACCOUNT_EMAIL_LOGIN = env.bool("ACCOUNT_EMAIL_LOGIN", default=not PRODUCTION)
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="none")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key", "signup": "20/m/ip"}
SOCIALACCOUNT_LOGIN_ON_GET = False
GOOGLE_OAUTH_CLIENT_ID = env.str("GOOGLE_OAUTH_CLIENT_ID", default="")
GOOGLE_OAUTH_CLIENT_SECRET = env.str("GOOGLE_OAUTH_CLIENT_SECRET", default="")
SOCIALACCOUNT_PROVIDERS = {
    "google": {
        "APPS": (
            [{"client_id": GOOGLE_OAUTH_CLIENT_ID, "secret": GOOGLE_OAUTH_CLIENT_SECRET, "key": ""}]
            if GOOGLE_OAUTH_CLIENT_ID
            else []
        ),
        "SCOPE": ["profile", "email"],
        "AUTH_PARAMS": {"access_type": "online"},
        "OAUTH_PKCE_ENABLED": True,
    }
}
# Cloud Run's front end (and the load balancer) append to X-Forwarded-For.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("ALLAUTH_TRUSTED_PROXY_COUNT", default=0)

# --- Security -------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if SECURE_SSL_REDIRECT else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=PRODUCTION)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Health checks from Cloud Run arrive over plain HTTP inside Google's network.
SECURE_REDIRECT_EXEMPT = [r"^health(/live)?$", r"^ws/health(/live)?$"]
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Static, i18n -----------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage",
        )
    },
}
# Locally, serve straight from static/ (no collectstatic needed); production serves
# the hashed, compressed files collected into the image.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION
# ES modules need the right MIME type, worklets included.
WHITENOISE_MIMETYPES = {".js": "text/javascript", ".mjs": "text/javascript"}

# --- Logging: JSON lines for Cloud Logging ----------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "ai4joy.logging.RequestContextFilter"}},
    "formatters": {
        "json": {"()": "ai4joy.logging.CloudLoggingFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "google_genai": {"level": "WARNING"},
        # At DEBUG websockets logs every frame with the start of its payload: base64 audio, and
        # a line per frame (ai4joy/tests/test_log_secrets.py found it).
        "websockets": {"level": "INFO"},
    },
}
TEST_RUNNER = "ai4joy.test_runner.PytestTestRunner"
