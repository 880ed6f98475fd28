"""HTTP routes, chosen by SERVICE_ROLE.

api: pages, /api/v1, /health, /admin and sign-in. audio: /ws/health only (its
WebSockets are routed in asgi.py). all: both, for local use.
"""

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

from ai4joy import health

urlpatterns: list[URLPattern | URLResolver] = []

if settings.SERVICE_ROLE in {"audio", "all"}:
    urlpatterns += [path("ws/health", health.audio_health, name="audio-health")]

if settings.SERVICE_ROLE in {"api", "all"}:
    from ai4joy.api import api

    urlpatterns += [
        path("health", health.api_health, name="health"),
        path("admin/", admin.site.urls),
        path("accounts/", include("allauth.urls")),
        path("api/v1/", api.urls),
        path("", include("accounts.urls")),
        path("", include("improv.urls")),
    ]
