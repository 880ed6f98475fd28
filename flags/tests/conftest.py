"""Fixtures for the rollout tests: a clean flag cache per test, the audio_v2 flag, users by bucket."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
from django.core.cache import caches

from flags.models import Flag, bucket
from flags.rollout import AUDIO_V2


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # Tests here create hundreds of users to find given buckets; real hashing would take minutes.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def clean_flag_cache():
    # Waffle's cache outlives each test's DB rollback; stale flags must not leak between tests.
    caches["flags"].clear()
    yield
    caches["flags"].clear()


@pytest.fixture
def audio_v2(db):
    """The audio_v2 row the data migration created (off), or a fresh one on a flushed DB."""
    flag, _ = Flag.objects.get_or_create(name=AUDIO_V2, defaults={"superusers": False})
    return flag


def plain_user(pk: int) -> SimpleNamespace:
    """A signed-in user as the flag sees one, without 10,000 DB rows."""
    return SimpleNamespace(pk=pk, is_authenticated=True, is_staff=False, is_superuser=False)


@pytest.fixture
def user_in_bucket(make_user):
    """A real user whose audio_v2 bucket lies in [low, high) basis points."""

    def make(low: int, high: int, **extra):
        for _ in itertools.count():
            candidate = make_user(**extra)
            if low <= bucket(AUDIO_V2, candidate.pk) < high:
                return candidate
            candidate.delete()
        raise AssertionError("unreachable")

    return make
