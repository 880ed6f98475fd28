"""The emulator's parts on their own: schema filling, replies, protocol parsing, VAD, faults."""

from __future__ import annotations

import asyncio
import base64

import pytest

from emulator import faults, live_protocol, partner, tts
from emulator.listener import Interrupt, Listener, Record, UserTurn
from emulator.schema import Inputs, SchemaError, fill
from emulator.tests.support import silence
from emulator.vad import Segmenter, SpeechEnded, SpeechStarted

INPUTS = Inputs(user_text="We found a treasure map in the bakery", context=(), salt="s")


def test_partner_line_builds_on_the_users_nouns() -> None:
    line = partner.partner_line("We found a treasure map in the bakery", salt="1")
    assert line.startswith(("Yes", "Oh", "Absolutely"))
    assert "treasure" in line or "bakery" in line
    assert partner.partner_line("We found a treasure map in the bakery", salt="1") == line


def test_quiet_user_gets_a_line_from_context() -> None:
    line = partner.partner_line("ok", context=("The dragon stole my bicycle", "You are a pirate"))
    assert "dragon" in line or "bicycle" in line


def test_schema_fill_handles_refs_any_of_and_ranges() -> None:
    schema = {
        "$defs": {"Beat": {"type": "object", "properties": {"tip": {"type": "string"}}, "required": ["tip"]}},
        "type": "object",
        "properties": {
            "beat": {"$ref": "#/$defs/Beat"},
            "vibe": {"anyOf": [{"type": "null"}, {"type": "string"}]},
            "score": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3},
            "kind": {"const": "scene"},
            "lines": {"type": "array", "items": {"type": "string"}, "minItems": 3},
        },
    }
    value = fill(schema, INPUTS)
    assert "treasure" in value["beat"]["tip"] or "bakery" in value["beat"]["tip"]
    assert value["vibe"] in partner.MOODS
    assert value["score"] in (1, 2)
    assert value["kind"] == "scene"
    assert len(value["lines"]) == 3 and len(set(value["lines"])) > 1


@pytest.mark.parametrize(
    "schema",
    [
        "not a schema",
        {"type": "WIDGET"},
        {"type": "OBJECT", "properties": {}, "required": ["x"]},
        {"type": "INTEGER", "minimum": 5, "maximum": 1},
        {"$ref": "#/$defs/Missing"},
    ],
)
def test_schema_fill_rejects_unsatisfiable_schemas(schema: object) -> None:
    with pytest.raises(SchemaError):
        fill(schema, INPUTS)


def test_protocol_accepts_snake_case_and_url_safe_base64() -> None:
    pcm = bytes([0xFB, 0xFF, 0xFE, 0x3F] * 100)  # bytes whose base64 differs between alphabets
    for encode in (base64.urlsafe_b64encode, base64.b64encode):
        data = encode(pcm).decode()
        for key in ("realtime_input", "realtimeInput"):
            (msg,) = live_protocol.parse_message(
                {key: {"audio": {"data": data, "mime_type": "audio/pcm;rate=16000"}}}
            )
            assert isinstance(msg, live_protocol.Audio) and msg.pcm == pcm


def test_protocol_parses_setup_spellings() -> None:
    setup = live_protocol.parse_setup(
        {
            "setup": {
                "model": "publishers/google/models/x",
                "generation_config": {
                    "response_modalities": ["AUDIO"],
                    "speechConfig": {"voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}},
                },
                "systemInstruction": {"parts": [{"text": "Be a pirate"}]},
                "inputAudioTranscription": {},
                "session_resumption": {"handle": "h1"},
                "realtimeInputConfig": {"automatic_activity_detection": {"disabled": True}},
            }
        }
    )
    assert setup.voice == "Kore" and setup.system_text == "Be a pirate"
    assert setup.input_transcription and not setup.output_transcription
    assert setup.resume_handle == "h1" and setup.vad_disabled


@pytest.mark.parametrize(
    "raw",
    [
        {"realtimeInput": {"audio": {"data": "!!!", "mimeType": "audio/pcm;rate=16000"}}},
        {"realtimeInput": {"audio": {"data": "AAA=", "mimeType": "audio/pcm;rate=44100"}}},
        {"realtimeInput": {"audio": {"data": "AAAA", "mimeType": "audio/opus"}}},
        {"setup": {"model": "x"}},
        {"bogus": {}},
        {"a": {}, "b": {}},
        [],
    ],
)
def test_protocol_rejects_bad_messages(raw: object) -> None:
    with pytest.raises(live_protocol.ProtocolError):
        live_protocol.parse_message(raw)


def test_vad_finds_one_turn_in_speech_and_none_in_silence() -> None:
    speech = tts.synthesize("let's open a bakery on the moon", rate=16000)
    seg = Segmenter(silence_ms=600)
    events = []
    for blob in (silence(0.5), speech, silence(1.0)):
        for i in range(0, len(blob), 1234):  # odd chunk sizes: framing must not care
            events += seg.feed(blob[i : i + 1234], 16000)
    started, ended = events
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
    assert 1.0 < ended.seconds < 3.5
    assert Segmenter().feed(silence(2.0), 16000) == []


def test_tts_speaks_at_24khz() -> None:
    pcm = tts.synthesize("hello there")
    assert len(pcm) > 24000  # over half a second at 24 kHz, 16-bit
    assert (
        max(abs(int.from_bytes(pcm[i : i + 2], "little", signed=True)) for i in range(0, len(pcm), 2)) > 1000
    )


def test_fault_plan_counts_down() -> None:
    plan = faults.FaultPlan()
    plan.arm(
        [
            faults.parse_fault({"type": "http_status", "status": 429, "count": 2}),
            faults.parse_fault({"type": "live_close", "code": 1008}),
        ]
    )
    assert plan.take_http().status == 429
    assert plan.take_http().status == 429
    assert plan.take_http().status is None
    live = plan.take_live()
    assert live.close is not None and live.close[0] == 1008 and "RESOURCE_EXHAUSTED" in live.close[1]
    assert plan.take_live().close is None


def test_listener_turn_taking_rules() -> None:
    manual = live_protocol.Setup(model="m", vad_disabled=True)
    listener = Listener(manual)
    one_second = live_protocol.Audio(pcm=silence(1.0, 48000), rate=48000)
    assert listener.hear(one_second) == []  # outside an activity: not listened to
    assert listener.hear(live_protocol.ActivityStart()) == [Interrupt()]
    assert listener.hear(one_second) == []
    (turn,) = listener.hear(live_protocol.ActivityEnd())
    assert isinstance(turn, UserTurn) and turn.from_audio and turn.heard_s == pytest.approx(1.0)

    auto = Listener(live_protocol.Setup(model="m"))
    assert auto.hear(live_protocol.Text("hi")) == [Interrupt(), UserTurn("hi")]
    seeded = live_protocol.ClientContent(turns=[("user", "a"), ("model", "b")], turn_complete=False)
    assert auto.hear(seeded) == [Record("user", "a"), Record("model", "b")]


async def test_speech_cache_shares_one_synthesis() -> None:
    cache = tts.SpeechCache(max_entries=2)
    first, second = await asyncio.gather(cache.speak("yes, and the moon"), cache.speak("yes, and the moon"))
    assert first == second and first
    assert (cache.misses, cache.hits) == (1, 1)
    await cache.speak("one")
    await cache.speak("two")  # evicts the oldest line
    await cache.speak("yes, and the moon")
    assert cache.misses == 4


def test_the_coachs_overall_feedback_cites_the_scene_facts_it_is_given():
    from emulator import partner

    facts_text = (
        "PLAYER: hi\n\nSCENE FACTS (measured):\n- player talk-time share: 50%\n"
        "- player cut the partner off: 3 times (2 in the second half)\n- longest silence: 2.0 s"
    )
    facts = partner.scene_facts(facts_text)
    assert facts["player cut the partner off"] == "3 times (2 in the second half)"
    assert partner.fact_note(facts) == (
        "You cut your partner off 3 times, 2 of them in the second half: "
        "let their line land before you add yours."
    )
    once = partner.scene_facts(facts_text.replace("3 times (2", "1 time (0"))
    assert partner.fact_note(once).startswith("You cut your partner off once:")
    quiet = partner.scene_facts(facts_text.replace("3 times", "0 times").replace("50%", "80%"))
    assert partner.fact_note(quiet) == "You spoke 80% of the time: leave more room for your partner's offers."
    assert partner.scene_facts("PLAYER: no facts here") == {}
