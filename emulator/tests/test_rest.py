"""generateContent through the real google-genai SDK, on the Vertex and Developer-API paths."""

from __future__ import annotations

import json
import ssl

import aiohttp
import pytest
from google import genai
from google.genai import errors, types
from pydantic import BaseModel, Field

from emulator import EmulatorServer
from emulator.tests.support import arm, control, make_client

SCENE_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "line": {"type": "STRING"},
        "mood": {"type": "STRING", "enum": ["playful", "tense", "warm"]},
        "coach_notes": {"type": "STRING", "nullable": True},
        "suggestion": {"type": "STRING"},
        "energy": {"type": "INTEGER", "minimum": 1, "maximum": 5},
        "confidence": {"type": "NUMBER", "minimum": 0, "maximum": 1},
        "scene_over": {"type": "BOOLEAN"},
        "beats": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 1, "maxItems": 3},
    },
    "required": ["line", "mood", "energy"],
}


class PartnerTurn(BaseModel):
    line: str
    room_vibe: str
    coach_notes: str | None = None
    laughs: int = Field(ge=0, le=10)


async def test_schema_reply_is_json_that_validates_and_reacts(client: genai.Client) -> None:
    response = await client.aio.models.generate_content(
        model="gemini-2.5-flash",
        contents="Let's open a bakery on the moon",
        config=types.GenerateContentConfig(
            system_instruction="You are an improv scene partner.",
            response_mime_type="application/json",
            response_schema=SCENE_SCHEMA,
        ),
    )
    body = json.loads(response.text or "")
    assert set(body) == set(SCENE_SCHEMA["properties"])
    assert "bakery" in body["line"] or "moon" in body["line"]
    assert body["mood"] in ("playful", "tense", "warm")
    assert isinstance(body["energy"], int) and 1 <= body["energy"] <= 5
    assert 0 <= body["confidence"] <= 1
    assert isinstance(body["scene_over"], bool)
    assert 1 <= len(body["beats"]) <= 3 and all(isinstance(b, str) for b in body["beats"])
    assert "bakery" in body["coach_notes"] or "moon" in body["coach_notes"]
    usage = response.usage_metadata
    assert usage is not None and usage.total_token_count and usage.prompt_token_count


async def test_pydantic_schema_parses_into_the_model(client: genai.Client) -> None:
    response = await client.aio.models.generate_content(
        model="gemini-2.5-flash",
        contents=[
            types.Content(role="user", parts=[types.Part(text="I am a lighthouse keeper")]),
            types.Content(role="model", parts=[types.Part(text="Yes, and I am your lamp.")]),
            types.Content(role="user", parts=[types.Part(text="The seagulls stole our sandwiches!")]),
        ],
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=PartnerTurn
        ),
    )
    turn = response.parsed
    assert isinstance(turn, PartnerTurn)
    assert "seagulls" in turn.line or "sandwiches" in turn.line
    assert 0 <= turn.laughs <= 10


async def test_json_schema_variant(client: genai.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "reply": {"type": "string"},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        },
        "required": ["reply"],
    }
    response = await client.aio.models.generate_content(
        model="gemini-2.5-flash",
        contents="Our submarine is full of cats",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=schema
        ),
    )
    body = json.loads(response.text or "")
    assert "submarine" in body["reply"] or "cats" in body["reply"]
    assert isinstance(body["tags"], list)


async def test_plain_text_reply_is_deterministic(client: genai.Client) -> None:
    async def ask() -> str:
        r = await client.aio.models.generate_content(
            model="gemini-2.5-flash", contents="A penguin is running the airport"
        )
        return r.text or ""

    first, second = await ask(), await ask()
    assert first == second
    assert "penguin" in first or "airport" in first


async def test_sync_client_from_a_worker_thread(emulator: EmulatorServer) -> None:
    # Django views call the sync client; it blocks, so run it off the emulator's event loop.
    import asyncio

    client = make_client(emulator, vertex=True)
    response = await asyncio.to_thread(
        client.models.generate_content, model="gemini-2.5-flash", contents="A dragon at the dentist"
    )
    assert "dragon" in (response.text or "") or "dentist" in (response.text or "")


async def test_streaming_concatenates_to_the_same_json(client: genai.Client) -> None:
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=SCENE_SCHEMA)
    pieces = [
        c.text or ""
        async for c in await client.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="Robots at the opera", config=config
        )
    ]
    assert len(pieces) > 1
    assert "robots" in json.loads("".join(pieces))["line"]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_http_status_faults_reach_the_sdk(emulator: EmulatorServer, status: int) -> None:
    client = make_client(emulator)
    await arm(emulator, {"type": "http_status", "status": status, "count": 1})
    with pytest.raises(errors.APIError) as caught:
        await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert caught.value.code == status
    # Only the next request was hit.
    ok = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert ok.text


async def test_sdk_retry_options_ride_over_a_429(emulator: EmulatorServer) -> None:
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.05, jitter=0)
    client = make_client(emulator, retry=retry)
    await arm(emulator, {"type": "http_status", "status": 429, "count": 2})
    response = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="a canoe")
    assert "canoe" in (response.text or "")
    assert emulator.state.stats.http_requests == 3


async def test_latency_fault_is_consumed(emulator: EmulatorServer) -> None:
    await arm(emulator, {"type": "latency", "ms": 50, "scope": "http", "count": 1})
    await make_client(emulator).aio.models.generate_content(model="m", contents="slow clowns")
    status, body = await control(emulator, "GET", "/emulator/stats")
    assert status == 200 and body["faults_pending"] == []


async def test_bad_requests_get_google_style_400(emulator: EmulatorServer) -> None:
    ctx = ssl.create_default_context(cafile=str(emulator.ca_file))
    url = emulator.url + "/v1beta/models/gemini-2.5-flash:generateContent"
    bad_bodies = [
        b"not json",
        b"[]",
        b"{}",
        json.dumps({"contents": [{"parts": []}]}).encode(),
        json.dumps(
            {
                "contents": [{"parts": [{"text": "x"}]}],
                "generationConfig": {"responseSchema": {"type": "WIDGET"}},
            }
        ).encode(),
        b"{" + b" " * (5 << 20) + b"}",
    ]
    async with aiohttp.ClientSession(headers={"x-goog-api-key": "k"}) as http:
        for body in bad_bodies:
            async with http.post(url, data=body, ssl=ctx) as resp:
                payload = await resp.json()
                assert resp.status == 400, payload
                assert payload["error"]["status"] == "INVALID_ARGUMENT"
                assert payload["error"]["code"] == 400 and payload["error"]["message"]
        async with http.post(emulator.url + "/v1beta/nowhere", data=b"{}", ssl=ctx) as resp:
            assert resp.status == 404 and (await resp.json())["error"]["status"] == "NOT_FOUND"
    async with aiohttp.ClientSession() as http, http.post(url, data=b"{}", ssl=ctx) as resp:
        assert resp.status == 401


async def test_fault_api_rejects_nonsense(emulator: EmulatorServer) -> None:
    for fault in [
        {"type": "explode"},
        {"type": "http_status", "status": 418},
        {"type": "live_close", "when": "never"},
        {"type": "latency", "ms": -1},
    ]:
        status, body = await control(emulator, "POST", "/emulator/faults", fault)
        assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    status, body = await control(emulator, "POST", "/emulator/faults", {"type": "slow_pong", "ms": 10})
    assert status == 200 and body["faults"][0]["kind"] == "slow_pong"
    status, body = await control(emulator, "DELETE", "/emulator/faults")
    assert status == 200 and body["faults"] == []
