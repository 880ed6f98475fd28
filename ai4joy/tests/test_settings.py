"""Settings and role routing, checked in fresh processes (settings are read at import)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "AI4JOY_ENV": "production",
    "DJANGO_SECRET_KEY": "x" * 64 + "-not-a-real-secret-but-long-and-random-enough",
    "ALLOWED_HOSTS": "improv.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://improv.example.com",
}


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Only what a process needs to start: no setting leaks in from the test run's environment.
    clean = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH"}}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_python(
        f"import sys; sys.argv = ['manage.py', *{list(args)!r}]; import runpy; "
        "runpy.run_path('manage.py', run_name='__main__')",
        **env,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_production_requires_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"}
    result = run_manage("check", **env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


def test_unknown_service_role_is_refused():
    result = run_manage("check", SERVICE_ROLE="both")
    assert result.returncode != 0
    assert "SERVICE_ROLE must be api, audio or all" in result.stderr


ROUTES = """
import json, os
import django
os.environ['DJANGO_SETTINGS_MODULE'] = 'ai4joy.settings'
django.setup()
from django.test import Client
from ai4joy.asgi import application, websocket_routes
c = Client()
print(json.dumps({
    'health': c.get('/health').status_code,
    'ws_health': c.get('/ws/health').status_code,
    'login': c.get('/accounts/login/').status_code,
    'api_docs': c.get('/api/v1/openapi.json').status_code,
    'ws_routes': [str(p.pattern) for p in websocket_routes],
}))
"""


def routes_for(role: str, tmp_path: Path) -> dict:
    db = tmp_path / f"{role}.sqlite3"
    migrate = run_manage("migrate", "--noinput", "-v0", SERVICE_ROLE=role, DATABASE_URL=f"sqlite:///{db}")
    assert migrate.returncode == 0, migrate.stderr
    result = run_python(ROUTES, SERVICE_ROLE=role, DATABASE_URL=f"sqlite:///{db}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_api_role_serves_pages_api_and_health_but_no_audio(tmp_path):
    routes = routes_for("api", tmp_path)
    assert routes["health"] == 200 and routes["login"] == 200 and routes["api_docs"] == 200
    assert routes["ws_health"] == 404
    assert routes["ws_routes"] == []


@pytest.mark.slow
def test_audio_role_serves_only_voice_and_its_health(tmp_path):
    routes = routes_for("audio", tmp_path)
    assert routes["ws_health"] == 200
    assert routes["health"] == 404 and routes["login"] == 404 and routes["api_docs"] == 404
    assert routes["ws_routes"], "the audio role must route /ws/audio/..."


MATRIX = """
import json, os
import django
os.environ['DJANGO_SETTINGS_MODULE'] = 'ai4joy.settings'
django.setup()
from django.conf import settings as s
print(json.dumps({
    'db': s.DATABASES['default']['ENGINE'],
    'layer': s.CHANNEL_LAYERS['default']['BACKEND'],
    'cache': s.CACHES['default']['BACKEND'],
    'store': s.SESSION_STORE, 'gemini': s.GEMINI_BACKEND, 'location': s.VERTEX_AI_LOCATION,
    'timeout': s.WEBSOCKET_TIMEOUT, 'ping': s.WEBSOCKET_PING_INTERVAL,
    'email_login': s.ACCOUNT_EMAIL_LOGIN, 'secure_cookies': s.SESSION_COOKIE_SECURE,
    'hsts': s.SECURE_HSTS_SECONDS, 'debug': s.DEBUG,
}))
"""


def settings_with(**env: str) -> dict:
    result = run_python(MATRIX, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_embedded_defaults_need_nothing_running():
    local = settings_with()
    assert local == {
        "db": "django.db.backends.sqlite3",
        "layer": "channels.layers.InMemoryChannelLayer",
        "cache": "django.core.cache.backends.locmem.LocMemCache",
        "store": "django", "gemini": "emulator", "location": "us-central1",
        "timeout": 3600, "ping": 30, "email_login": True, "secure_cookies": False, "hsts": 0, "debug": False,
    }


def test_environment_switches_each_integration():
    prod = settings_with(
        **PRODUCTION_ENV,
        DATABASE_URL="postgres://app@db.internal:5432/ai4joy",
        REDIS_URL="redis://10.0.0.3:6379/0",
        SESSION_STORE="firestore",
        GEMINI_BACKEND="vertex",
        VERTEX_AI_LOCATION="europe-west4",
        WEBSOCKET_TIMEOUT="1800",
        WEBSOCKET_PING_INTERVAL="20",
    )
    assert prod == {
        "db": "django.db.backends.postgresql",
        "layer": "ai4joy.channel_layer.ResilientRedisChannelLayer",
        "cache": "django.core.cache.backends.redis.RedisCache",
        "store": "firestore", "gemini": "vertex", "location": "europe-west4",
        "timeout": 1800, "ping": 20, "email_login": False, "secure_cookies": True, "hsts": 31536000,
        "debug": False,
    }
