"""HTTP routes, chosen by SERVICE_ROLE.

api: pages, /api/v1, /health, /admin and sign-in. audio: /ws/health only (its
WebSockets are routed in asgi.py). all: both, for local use.
"""

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, URLResolver, include, path
from django.views import defaults

from ai4joy import health

urlpatterns: list[URLPattern | URLResolver] = []

if settings.SERVICE_ROLE in {"audio", "all"}:
    urlpatterns += [path("ws/health", health.audio_health, name="audio-health")]

if settings.SERVICE_ROLE in {"api", "all"}:
    from ai4joy.api import api

    urlpatterns += [
        path("health", health.api_health, name="health"),
        path("admin/audio/", include("audio.urls")),  # the voice feature's admin pages
        path("admin/", admin.site.urls),
        path("accounts/", include("allauth.urls")),
        path("api/v1/", api.urls),
        path("", include("accounts.urls")),
        path("", include("improv.urls")),
    ]


def _wants_json(request: HttpRequest) -> bool:
    # The audio role has no pages (templates/404.html links to them), so it answers JSON too.
    return request.path.startswith("/api/") or settings.SERVICE_ROLE == "audio"


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": "not_found", "detail": "There is nothing at this address."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Errors outside the API's own handler (middleware, pages); Django has already logged them."""
    if _wants_json(request):
        return JsonResponse(
            {"error": "server_error", "detail": "Something went wrong on our side. Please try again."},
            status=500,
        )
    return defaults.server_error(request)


handler404 = page_not_found
handler500 = server_error
