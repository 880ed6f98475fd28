"""Fixtures shared by every app's tests."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth import get_user_model

_emails = itertools.count(1)


@pytest.fixture
def make_user(db):
    def make(email: str | None = None, password: str = "correct-horse-battery", **extra):
        email = email or f"player{next(_emails)}@example.com"
        return get_user_model().objects.create_user(
            username=email, email=email, password=password, **extra
        )

    return make


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def signed_in_client(client, user):
    client.force_login(user)
    return client
