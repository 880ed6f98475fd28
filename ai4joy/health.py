"""Health checks: readiness (the database always, Redis when configured) and liveness.

`GET /health` (api role) and `GET /ws/health` (audio role) answer
`{"status": "healthy", "service": ...}`; a failing part gives 503 and names the part,
so Cloud Run's startup probe and the load balancer hold traffic from the instance.
`GET /health/live` and `/ws/health/live` only say the process serves requests: the liveness
probe restarts an instance, and a database or Redis outage must not restart every instance
(and drop every voice scene) at once.

ProbeMiddleware answers these paths before anything reads the Host header: Cloud Run's probes
reach the container directly, not under the public domain in ALLOWED_HOSTS, and Django would
answer them 400 (DisallowedHost), so a new revision would never become ready.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


def run_checks() -> list[str]:
    """Return the names of the parts that failed."""
    checks = {"database": check_database}
    if settings.REDIS_URL:
        checks["redis"] = check_redis
    failed = []
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # any failure of a dependency makes us unhealthy
            log.warning(
                "health check failed",
                extra={"event": "health_failed", "part": name, "error": type(exc).__name__},
            )
            failed.append(name)
    return failed


def _health(service: str) -> JsonResponse:
    failed = run_checks()
    if failed:
        return JsonResponse({"status": "unhealthy", "service": service, "failed": failed}, status=503)
    return JsonResponse({"status": "healthy", "service": service, "role": settings.SERVICE_ROLE})


@require_GET
def api_health(request: HttpRequest) -> JsonResponse:
    return _health("api")


@require_GET
def audio_health(request: HttpRequest) -> JsonResponse:
    return _health("audio")


@require_GET
def alive(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "alive", "role": settings.SERVICE_ROLE})


def probe_routes(role: str) -> dict[str, Callable[[HttpRequest], HttpResponse]]:
    """The health paths this role answers."""
    routes: dict[str, Callable[[HttpRequest], HttpResponse]] = {}
    if role in {"api", "all"}:
        routes.update({"/health": api_health, "/health/live": alive})
    if role in {"audio", "all"}:
        routes.update({"/ws/health": audio_health, "/ws/health/live": alive})
    return routes


class ProbeMiddleware:
    """Serves the health paths ahead of Host validation, CSRF, sessions and auth (module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = probe_routes(settings.SERVICE_ROLE).get(request.path_info)
        return view(request) if view is not None else self.get_response(request)
