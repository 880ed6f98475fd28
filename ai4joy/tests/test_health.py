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
