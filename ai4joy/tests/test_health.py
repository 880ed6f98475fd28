import json
import logging

import pytest

from ai4joy import health


@pytest.mark.django_db
def test_health_reports_healthy_with_database(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"
    assert response.json()["service"] == "api"


@pytest.mark.django_db
def test_audio_health_is_served_in_all_role(client):
    response = client.get("/ws/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "service": "audio", "role": "all"}


@pytest.mark.django_db
def test_health_checks_real_redis_when_configured(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    response = client.get("/health")
    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_unreachable_redis_makes_health_503_naming_the_part(client, settings, caplog):
    # A closed loopback port: a real connection refusal, not a mock.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with caplog.at_level(logging.WARNING):
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "service": "api", "failed": ["redis"]}


@pytest.mark.django_db
def test_broken_database_makes_health_503(client, monkeypatch):
    def broken() -> None:
        raise RuntimeError("database is gone")

    monkeypatch.setattr(health, "check_database", broken)
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]


@pytest.mark.django_db
def test_health_rejects_post(client):
    assert client.post("/health").status_code == 405


def test_health_response_is_json_content_type(client, db):
    response = client.get("/health")
    assert response["Content-Type"] == "application/json"
    json.loads(response.content)


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["169.254.1.1:8080", "localhost:8080", "10.0.0.7"])
def test_probes_answer_whatever_host_cloud_run_sends(client, settings, host):
    # Cloud Run's probes reach the container directly, not under the public domain.
    settings.ALLOWED_HOSTS = ["improv.example.com"]
    for path in ("/health", "/ws/health", "/health/live", "/ws/health/live"):
        response = client.get(path, HTTP_HOST=host)
        assert response.status_code == 200, (path, response.status_code)
    assert client.get("/api/v1/games", HTTP_HOST=host).status_code == 400  # everything else still checks


@pytest.mark.django_db
def test_liveness_does_not_depend_on_redis_or_the_database(client, settings, monkeypatch):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    monkeypatch.setattr(health, "check_database", lambda: (_ for _ in ()).throw(RuntimeError("gone")))
    assert client.get("/health").status_code == 503  # readiness: take it out of rotation
    live = client.get("/ws/health/live")
    assert live.status_code == 200 and live.json()["status"] == "alive"  # liveness: do not restart it


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "served", "absent"), [
    ("api", "/health/live", "/ws/health/live"), ("audio", "/ws/health/live", "/health/live")])
def test_each_role_answers_its_own_probes(client, settings, role, served, absent):
    settings.SERVICE_ROLE = role
    assert client.get(served).status_code == 200
    assert client.get(absent).status_code == 404
