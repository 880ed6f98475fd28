"""The daily budget breaker and the Voice health admin page, on the real store and consumer."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone

from audio import budget
from audio.health import percentile, voice_health
from audio.protocol import CloseCode
from audio.tests.conftest import cookie_for, is_type, receive_until
from improv.store import get_store


@pytest.fixture(autouse=True)
def fresh_budget(settings):
    settings.VOICE_BUDGET_CACHE_S = 0
    budget.forget_cache()
    yield
    budget.forget_cache()


def _session(user_id: int, *, cost_micro_usd: int = 0, finish: str | None = None, **counters: int):
    store = get_store()
    scene = store.scene_create(user_id=user_id, status="active", game_slug="freeze-tag")
    record = store.audio_session_start(user_id=user_id, scene_id=scene.id, instance="host:1")
    store.audio_session_update(record.id, cost_micro_usd=cost_micro_usd, **counters)  # type: ignore[arg-type]
    if finish:
        store.audio_session_finish(record.id, status=finish, close_reason="client_close")
    return scene, store.audio_session_get(record.id)


# --- the day and the breaker -------------------------------------------------------------------
def test_the_budget_day_is_midnight_to_midnight_in_its_time_zone_even_on_a_dst_day(settings):
    settings.VOICE_BUDGET_TIME_ZONE = "America/New_York"
    start, end = budget.day_bounds(dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC))  # clocks go back
    assert start == dt.datetime(2026, 11, 1, 4, 0, tzinfo=dt.UTC)
    assert end == dt.datetime(2026, 11, 2, 5, 0, tzinfo=dt.UTC)  # a 25-hour day
    start, end = budget.day_bounds(dt.datetime(2026, 11, 1, 3, 59, tzinfo=dt.UTC))  # still Oct 31 there
    assert start == dt.datetime(2026, 10, 31, 4, 0, tzinfo=dt.UTC)


def test_the_breaker_is_off_without_a_budget(settings, make_user):
    settings.VOICE_DAILY_BUDGET_USD = 0
    _session(make_user().pk, cost_micro_usd=5_000_000)
    state = budget.budget_state()
    assert not state.enabled and not state.tripped


def test_the_breaker_trips_at_todays_spend_and_resets_the_next_day(settings, make_user):
    settings.VOICE_DAILY_BUDGET_USD = 0.01
    user = make_user()
    _session(user.pk, cost_micro_usd=4_000, finish="ended")
    assert budget.budget_state().spent_usd == pytest.approx(0.004)
    assert not budget.budget_state().tripped
    _session(user.pk, cost_micro_usd=6_000)  # still live: its cost so far counts
    state = budget.budget_state()
    assert state.spent_usd == pytest.approx(0.01) and state.tripped
    tomorrow = timezone.now() + dt.timedelta(days=1)
    later = budget.budget_state(now=tomorrow)
    assert later.spent_usd == 0 and not later.tripped
    assert later.day_start == state.resets_at




@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("voice_settings")
async def test_over_budget_a_new_socket_is_refused_and_a_live_one_finishes(
    settings, open_voice, scene, voice_cookie, client, make_user
):
    settings.VOICE_DAILY_BUDGET_USD = 0.001
    live = await open_voice(scene.id, voice_cookie)
    await receive_until(live, is_type("ready"), timeout=10)

    # Another player's session has spent today's budget.
    other = await sync_to_async(make_user)()
    await sync_to_async(_session)(other.pk, cost_micro_usd=1_000, finish="ended")
    late_scene = await sync_to_async(get_store().scene_create)(user_id=other.pk, status="active")
    refused = await open_voice(late_scene.id, await sync_to_async(cookie_for)(client, other))
    got = await receive_until(refused, lambda m: False, timeout=10)
    [error] = got.of("error")
    assert error["code"] == "voice_budget_reached"
    assert "text mode" in error["message"]
    assert got.close_code == CloseCode.BUDGET_REACHED == 4015
    assert not await sync_to_async(get_store().audio_sessions_for_scene)(late_scene.id)

    # The session that was already live carries on to a full turn.
    await live.send_to(text_data=json.dumps({"type": "text", "text": "The penguins unionised"}))
    turn = await receive_until(live, is_type("turn_complete"), timeout=30)
    assert turn.close_code is None
    assert any(m["role"] == "partner" and m["final"] for m in turn.of("transcript"))


# --- Voice health -----------------------------------------------------------------------------
def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([700], 99) == 700
    assert percentile([], 50) is None


def _voice_turns(scene_id: str, latencies: list[int]) -> None:
    store = get_store()
    for ms in latencies:
        store.turn_append(scene_id, speaker="user", text="A line", mode="voice", meta={"typed": False})
        store.turn_append(
            scene_id,
            speaker="partner",
            text="Yes, and",
            mode="voice",
            meta={"latency_ms": ms, "interrupted": False},
        )


@pytest.mark.django_db
def test_voice_health_reads_the_store(settings, make_user):
    settings.VOICE_DAILY_BUDGET_USD = 0.05
    user = make_user()
    scene, _ = _session(
        user.pk,
        cost_micro_usd=30_000,
        bytes_in=100_000,
        dropped_bytes=10_000,
        reconnects=2,
        tokens_in=900,
        tokens_out=300,
        finish="failed",
    )
    _voice_turns(scene.id, [400, 500, 600, 700, 2_000])
    live_scene, _ = _session(user.pk, cost_micro_usd=5_000, bytes_in=50_000, tokens_in=100, tokens_out=50)
    _voice_turns(live_scene.id, [300])

    health = voice_health()
    assert len(health.live) == 1 and health.live_by_instance == {"host:1": 1}
    ten, hour, today = health.windows
    assert ten.label == "last 10 min" and ten.ended == 1 and ten.failed == 1 and ten.failure_rate == 1.0
    assert sorted(hour.latencies) == [300, 400, 500, 600, 700, 2_000]
    assert (hour.p50, hour.p95, hour.p99) == (500, 2_000, 2_000)
    assert today.sessions == 2 and today.reconnects == 2
    assert today.dropped_share == pytest.approx(10_000 / 150_000)
    assert today.good_sessions == 1 and today.quality_sli == 0.5  # 10% dropped is a poor session
    assert (today.tokens_in, today.tokens_out) == (1_000, 350)
    assert today.cost_usd == pytest.approx(0.035)
    assert not health.budget.tripped and health.budget.spent_usd == pytest.approx(0.035)
    assert health.guard.verdict.startswith("watching: too few sessions")  # 1 of the 20 it needs


@pytest.mark.django_db
def test_the_voice_health_page_is_for_staff_and_says_why_voice_is_refused(client, settings, make_user):
    settings.VOICE_DAILY_BUDGET_USD = 0.01
    player = make_user()
    scene, _ = _session(player.pk, cost_micro_usd=12_500, bytes_in=32_000, tokens_in=700, finish="ended")
    _voice_turns(scene.id, [640])
    url = reverse("admin:audio_voicehealth_changelist")

    client.force_login(player)
    assert client.get(url).status_code == 302  # not staff: to the admin login

    client.force_login(make_user(is_staff=True))
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Voice budget reached:" in text and "$0.0125 of $0.0100 spent today" in text
    assert "New voice sessions are refused" in text
    assert "640 / 640 / 640 ms" in text
    assert "$0.0125" in text
    index = client.get(reverse("admin:index")).content.decode()
    assert url in index  # listed under Voice in the admin index
