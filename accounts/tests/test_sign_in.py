"""Sign-in as a user meets it: pages, email accounts, Google with PKCE, sign-out, profile."""

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import requests
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model

GOOGLE: dict[str, Any] = {
    "google": {
        "APPS": [{"client_id": "client-123.apps.googleusercontent.com", "secret": "s3cret", "key": ""}],
        "SCOPE": ["profile", "email"],
        "AUTH_PARAMS": {"access_type": "online"},
        "OAUTH_PKCE_ENABLED": True,
    }
}


@pytest.fixture
def google(settings):
    settings.GOOGLE_OAUTH_CLIENT_ID = GOOGLE["google"]["APPS"][0]["client_id"]
    settings.SOCIALACCOUNT_PROVIDERS = GOOGLE


def test_sign_in_page_offers_email_and_hides_google_when_unconfigured(client, db):
    page = client.get("/accounts/login/").content.decode()
    assert 'name="login"' in page and 'name="password"' in page
    assert "Continue with Google" not in page


def test_sign_in_page_offers_google_by_post(client, db, google):
    page = client.get("/accounts/login/").content.decode()
    assert "Continue with Google" in page
    assert 'method="post" action="/accounts/google/login/' in page


def test_email_sign_up_sign_in_and_sign_out(client, db):
    response = client.post(
        "/accounts/signup/",
        {"email": "ada@example.com", "password1": "a-long-unusual-pass", "password2": "a-long-unusual-pass"},
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(email="ada@example.com").exists()
    assert client.get("/profile/").status_code == 200

    client.post("/accounts/logout/")
    assert client.get("/profile/").status_code == 302

    response = client.post(
        "/accounts/login/", {"login": "ada@example.com", "password": "a-long-unusual-pass"}
    )
    assert response.status_code == 302
    assert "ada@example.com" in client.get("/profile/").content.decode()


def test_wrong_password_shows_a_clear_error_and_signs_nobody_in(client, user):
    response = client.post("/accounts/login/", {"login": user.email, "password": "nope"})
    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    assert client.get("/profile/").status_code == 302


def test_bad_sign_up_input_explains_each_problem(client, db):
    response = client.post("/accounts/signup/", {"email": "not-an-email", "password1": "a", "password2": "b"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "valid email" in page.lower()
    assert not get_user_model().objects.exists()


def test_email_login_switched_off_refuses_password_sign_in_and_sign_up(client, user, settings, google):
    settings.ACCOUNT_EMAIL_LOGIN = False
    page = client.get("/accounts/login/").content.decode()
    assert 'name="password"' not in page and "Continue with Google" in page
    client.post("/accounts/login/", {"login": user.email, "password": "correct-horse-battery"})
    assert client.get("/profile/").status_code == 302
    response = client.post(
        "/accounts/signup/",
        {"email": "x@example.com", "password1": "long-pass-123!", "password2": "long-pass-123!"},
    )
    assert not get_user_model().objects.filter(email="x@example.com").exists()
    assert response.status_code == 200 and "closed" in response.content.decode().lower()


def test_failed_logins_are_rate_limited(client, user, settings):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "3/m/ip"}
    for _ in range(3):
        client.post("/accounts/login/", {"login": user.email, "password": "bad"})
    # Past the limit even the right password is refused, with a clear reason.
    response = client.post("/accounts/login/", {"login": user.email, "password": "correct-horse-battery"})
    assert "Too many failed login attempts" in response.content.decode()
    assert client.get("/profile/").status_code == 302


def test_login_by_get_does_not_start_google_oauth(client, db, google):
    response = client.get("/accounts/google/login/")
    assert response.status_code == 200  # a confirmation page, never a redirect to Google


class FakeGoogle:
    """Google's token endpoint, which cannot be reached from here."""

    def __init__(self, claims: dict):
        self.claims = claims
        self.requests: list[tuple[str, str, dict]] = []

    def request(self, method, url, **kwargs):  # bound: replaces Session.request
        self.requests.append((method, url, kwargs))
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        id_token = jwt.encode(self.claims, "not-verified-for-token-endpoint-responses", algorithm="HS256")
        response._content = json.dumps(
            {"access_token": "ya29.token", "expires_in": 3599, "token_type": "Bearer", "id_token": id_token}
        ).encode()
        return response


def test_google_sign_in_with_pkce_creates_the_user(client, db, google, monkeypatch):
    start = client.post("/accounts/google/login/", {"process": "login"})
    assert start.status_code == 302
    location = urlparse(start["Location"])
    query = parse_qs(location.query)
    assert location.netloc == "accounts.google.com"
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    now = int(time.time())
    fake = FakeGoogle(
        {
            "iss": "https://accounts.google.com",
            "aud": GOOGLE["google"]["APPS"][0]["client_id"],
            "azp": GOOGLE["google"]["APPS"][0]["client_id"],
            "sub": "10769150350006150715113082367",
            "email": "grace@example.com",
            "email_verified": True,
            "name": "Grace Hopper",
            "given_name": "Grace",
            "family_name": "Hopper",
            "iat": now,
            "exp": now + 3600,
        }
    )
    monkeypatch.setattr(requests.Session, "request", fake.request)

    callback = client.get(
        "/accounts/google/login/callback/", {"code": "auth-code", "state": query["state"][0]}
    )
    assert callback.status_code == 302, callback.content
    token_call = fake.requests[0]
    assert token_call[2]["data"]["code_verifier"], "PKCE verifier must be sent to the token endpoint"
    user = get_user_model().objects.get(email="grace@example.com")
    assert SocialAccount.objects.get(user=user).provider == "google"
    assert "Google" in client.get("/profile/").content.decode()


def test_google_callback_with_forged_state_signs_nobody_in(client, db, google):
    client.post("/accounts/google/login/", {"process": "login"})
    response = client.get("/accounts/google/login/callback/", {"code": "c", "state": "forged"})
    assert response.status_code == 401
    assert "login failure" in response.content.decode().lower()
    assert not get_user_model().objects.exists()


def test_me_endpoint_needs_sign_in_and_describes_the_user(client, user):
    assert client.get("/api/v1/me").status_code == 401
    client.force_login(user)
    me = client.get("/api/v1/me").json()
    assert me["email"] == user.email and me["audio_v2"] is False


def test_admin_is_for_staff_only(client, make_user):
    client.force_login(make_user())
    assert client.get("/admin/").status_code == 302
    client.force_login(make_user(is_staff=True, is_superuser=True))
    assert client.get("/admin/").status_code == 200


def test_demo_user_command_prints_how_to_sign_in(db, capsys):
    from django.core.management import call_command

    call_command("ensure_demo_user")
    out = capsys.readouterr().out
    assert "demo@ai4joy.local" in out and "/accounts/login/" in out
    assert get_user_model().objects.get(email="demo@ai4joy.local").check_password("yes-and-demo")
