"""Live usage by modality, its price, and `manage.py cost_estimate`."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from google.genai import types

from audio import cost_model
from audio.cost import TokenUsage, cost_micro_usd, usage_from_metadata
from improv.models import AudioSession
from improv.store import get_store


def _detail(modality: str, n: int) -> types.ModalityTokenCount:
    return types.ModalityTokenCount(modality=types.MediaModality(modality), token_count=n)


def test_usage_splits_audio_from_text_whichever_name_the_counts_have():
    developer = types.UsageMetadata(
        prompt_token_count=1_000,
        response_token_count=300,
        prompt_tokens_details=[_detail("TEXT", 200), _detail("AUDIO", 800)],
        response_tokens_details=[_detail("AUDIO", 300)],
    )
    assert usage_from_metadata(developer) == TokenUsage(in_text=200, in_audio=800, out_text=0, out_audio=300)
    text_api = types.GenerateContentResponseUsageMetadata(  # generateContent says "candidates"
        prompt_token_count=50,
        candidates_token_count=20,
        prompt_tokens_details=[_detail("TEXT", 50)],
        candidates_tokens_details=[_detail("TEXT", 20)],
    )
    assert usage_from_metadata(text_api) == TokenUsage(in_text=50, out_text=20)
    assert usage_from_metadata(types.UsageMetadata()) == TokenUsage()


def test_cost_uses_the_price_of_each_modality(settings):
    settings.VOICE_PRICING = {
        **settings.VOICE_PRICING,
        "usd_per_million_tokens": {"in_text": 0.5, "in_audio": 3.0, "out_text": 2.0, "out_audio": 12.0},
    }
    one_million_each = TokenUsage(in_text=10**6, in_audio=10**6, out_text=10**6, out_audio=10**6)
    assert cost_micro_usd(one_million_each) == 17_500_000  # $0.50 + $3 + $2 + $12
    assert cost_micro_usd(TokenUsage(out_audio=1_000)) == 12_000  # 1k audio tokens out: $0.012


def test_the_guides_table_adds_up_to_10530():
    lines = cost_model.guide_lines()
    assert [line.monthly_usd for line in lines] == [1_770, 58, 8_275, 48, 250, 129]
    assert cost_model.guide_total() == 10_530


def _run(**options) -> str:
    out = io.StringIO()
    call_command("cost_estimate", stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_cost_estimate_prints_the_guides_total_and_says_when_nothing_is_recorded():
    text = _run()
    assert "Total                      $   10,530" in text
    assert "$0.0144 per session-hour" in text
    assert "No recorded session time yet" in text
    assert "gemini-live-2.5-flash-native-audio" in text and "as of 2026-05" in text


@pytest.mark.django_db
def test_cost_estimate_prices_recorded_sessions_per_session_hour(make_user):
    store = get_store()
    user = make_user()
    scene = store.scene_create(user_id=user.pk, status="active")
    record = store.audio_session_start(user_id=user.pk, scene_id=scene.id, instance="i")
    # Half an hour of voice: 20k tokens in (15k audio), 8k out (7k audio).
    store.audio_session_update(
        record.id,
        tokens_in=20_000,
        tokens_in_audio=15_000,
        tokens_out=8_000,
        tokens_out_audio=7_000,
        cost_micro_usd=133_000,
    )
    store.audio_session_finish(record.id, status="ended", close_reason="client_close")
    row = AudioSession.objects.get(pk=record.id)
    assert row.ended_at is not None
    AudioSession.objects.filter(pk=record.id).update(created_at=row.ended_at - dt.timedelta(minutes=30))
    priced = 5_000 * 0.5 + 15_000 * 3.0 + 1_000 * 2.0 + 7_000 * 12.0  # micro-USD
    assert priced == 133_500

    text = _run(concurrent=1000)
    assert "1 sessions, 0.50 h" in text
    assert "Tokens: text in 5,000, audio in 15,000, text out 1,000, audio out 7,000" in text
    assert "Live cost: $0.1335 at these prices (the records' own estimate: $0.1330)" in text
    assert "Cost per session-hour: $0.2670" in text
    assert f"${0.267 * 1000 * 730:,.0f}/month" in text


@pytest.mark.django_db
def test_cost_estimate_rejects_bad_options():
    with pytest.raises(CommandError):
        _run(days=0)
