"""Error answers: JSON under /api/ (404, 400/422 with a message, 500 without internals); pages elsewhere."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from improv import selectors

pytestmark = pytest.mark.django_db


def _boom(*args, **kwargs):
    raise RuntimeError("secret internals: db password is hunter2")


@pytest.mark.parametrize(
    "path", ["/api/v1/no-such-thing", "/api/v1/scenes/abc/nope", "/api/v2/games", "/api/"]
)
def test_unknown_api_paths_are_404_json(signed_in_client, path):
    for response in (signed_in_client.get(path), signed_in_client.post(path, {})):
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"] == "not_found" and response.json()["detail"]


def test_unknown_api_path_is_404_json_when_signed_out_too():
    response = Client(enforce_csrf_checks=True).post("/api/v1/nope", "{}", content_type="application/json")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_unknown_page_is_our_404_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "in the script." in page and "Improv Olympics" in page  # ours, in the layout


def test_malformed_json_body_is_400_with_a_message(signed_in_client):
    response = signed_in_client.post("/api/v1/scenes", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"error": "bad_request", "detail": "Cannot parse request body"}


def test_wrong_body_shape_is_422_with_the_fields(signed_in_client):
    response = signed_in_client.post(
        "/api/v1/scenes/abc/turns",
        json.dumps({"text": ["not", "a", "line"]}),
        content_type="application/json",
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request" and body["detail"][0]["loc"][-1] == "text"


def test_missing_csrf_token_is_403_json(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/api/v1/scenes", "{}", content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


@pytest.mark.parametrize("debug", [False, True])
def test_api_bug_is_500_json_without_a_traceback_and_logged(
    signed_in_client, monkeypatch, caplog, settings, debug
):
    settings.DEBUG = debug  # ninja's default answer in DEBUG was the traceback itself
    monkeypatch.setattr(selectors, "games_list", _boom)
    with caplog.at_level(logging.ERROR, logger="ai4joy.api"):
        response = signed_in_client.get("/api/v1/games")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "server_error"
    assert b"Traceback" not in response.content and b"hunter2" not in response.content
    [record] = [r for r in caplog.records if r.name == "ai4joy.api"]
    assert record.exc_info and record.exc_info[0] is RuntimeError  # the traceback goes to the logs


def test_page_bug_is_our_500_page(monkeypatch):
    monkeypatch.setattr(selectors, "games_list", _boom)
    response = Client(raise_request_exception=False).get("/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "We dropped our line." in page
    assert "Traceback" not in page and "hunter2" not in page
