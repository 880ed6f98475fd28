"""Health checks: the database always, Redis when configured.

`GET /health` (api role) and `GET /ws/health` (audio role) answer
`{"status": "healthy", "service": ...}`; a failing part gives 503 and names the part,
so Cloud Run's probes and the load balancer take the instance out of rotation.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
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
