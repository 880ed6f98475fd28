"""The bucket: even spread, sticky, monotonic across the plan, 100% = everyone, anonymous never."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.core.exceptions import ValidationError

from flags.models import BASIS_POINTS, Flag, bucket
from flags.plan import plan_for
from flags.rollout import AUDIO_V2, audio_v2_enabled
from flags.services import rollout_rollback, rollout_set
from flags.tests.conftest import plain_user

USERS = [plain_user(pk) for pk in range(1, 10_001)]


def enabled_ids(flag: Flag) -> set[int]:
    return {u.pk for u in USERS if flag.is_active_for_user(u)}


@pytest.mark.parametrize("percent", [1, 10, 50])
def test_bucket_share_is_within_one_point_of_the_percentage_over_10000_users(audio_v2, percent):
    rollout_set(percent=percent, reason="test", actor_label="test")
    share = len(enabled_ids(Flag.get(AUDIO_V2))) / len(USERS) * 100
    assert abs(share - percent) <= 1, share


def test_bucket_is_a_pure_function_of_flag_and_user():
    assert bucket(AUDIO_V2, 42) == bucket(AUDIO_V2, 42) == bucket(AUDIO_V2, "42")
    assert all(0 <= bucket(AUDIO_V2, pk) < BASIS_POINTS for pk in range(1000))
    # Another flag shuffles users differently: the 1% of one flag is not the 1% of every flag.
    first = {pk for pk in range(1, 10_001) if bucket(AUDIO_V2, pk) < 100}
    other = {pk for pk in range(1, 10_001) if bucket("other_flag", pk) < 100}
    assert len(first & other) < len(first) / 2


def test_every_plan_step_keeps_everyone_already_in_and_answers_the_same_each_time(audio_v2):
    previous: set[int] = set()
    for stage in plan_for(AUDIO_V2):
        rollout_set(percent=stage.percent, actor_label="test")
        flag = Flag.get(AUDIO_V2)
        now_in = enabled_ids(flag)
        assert previous <= now_in, f"users dropped out at {stage.percent}%"
        assert enabled_ids(Flag.get(AUDIO_V2)) == now_in  # sticky: asked again, same answer
        assert len(now_in) > len(previous)
        previous = now_in
    assert previous == {u.pk for u in USERS}  # 100% means everyone


def test_hundred_percent_is_everyone_and_anonymous_users_are_never_in(audio_v2):
    rollout_set(percent=100, actor_label="test")
    flag = Flag.get(AUDIO_V2)
    assert flag.everyone is True and flag.state_label == "100% (everyone)"
    assert flag.is_active_for_user(
        plain_user(next(pk for pk in range(1, 10**6) if bucket(AUDIO_V2, pk) == 9999))
    )
    assert audio_v2_enabled(AnonymousUser()) is False
    assert audio_v2_enabled(None) is False


def test_rollback_beats_explicit_users_and_groups(audio_v2, make_user):
    tester, grouped = make_user(), make_user()
    group = Group.objects.create(name="internal")
    grouped.groups.add(group)
    audio_v2.users.add(tester)
    audio_v2.groups.add(group)
    audio_v2.flush()
    assert audio_v2_enabled(tester) and audio_v2_enabled(grouped)
    rollout_rollback(reason="incident", actor_label="test")
    assert not audio_v2_enabled(tester) and not audio_v2_enabled(grouped)


def test_missing_flag_is_off(db, make_user):
    Flag.objects.filter(name=AUDIO_V2).delete()
    assert audio_v2_enabled(make_user()) is False


def test_a_change_reaches_the_next_check_through_the_cache(audio_v2, user_in_bucket):
    user = user_in_bucket(0, 100)  # in from 1%
    assert audio_v2_enabled(user) is False  # warms the flag cache with "0%"
    rollout_set(percent=1, actor_label="test")
    assert audio_v2_enabled(user) is True
    rollout_rollback(reason="test", actor_label="test")
    assert audio_v2_enabled(user) is False


def test_percent_field_accepts_0_to_100_with_two_decimals(audio_v2):
    audio_v2.percent = Decimal("12.34")
    audio_v2.full_clean()
    for bad in (Decimal("100.01"), Decimal("-1"), Decimal("1.234")):
        audio_v2.percent = bad
        with pytest.raises(ValidationError):
            audio_v2.full_clean()


def test_flag_cache_entries_expire_within_seconds():
    # Saving flushes a shared (Redis) cache at once; a per-process cache (local runs) cannot
    # be flushed from another process, so its entries must not outlive a few seconds.
    from django.core.cache import caches
    from waffle.utils import get_cache

    assert get_cache() is caches["flags"]
    timeout = caches["flags"].default_timeout
    assert timeout is not None and 0 < timeout <= 10
