"""Every URL shape the SDK builds reaches the emulator, including the "//" of default base URLs."""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import pytest
from google import genai
from google.genai import errors, types

from emulator import EmulatorServer
from emulator.tests.support import TURN_TIMEOUT_S, live_config, make_client, receive_turn


def _express_client(server: EmulatorServer) -> genai.Client:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    # Vertex express mode (API key, no project) with a base URL ending in "/", like the SDK's own.
    return genai.Client(
        vertexai=True,
        api_key="express-key",
        http_options=types.HttpOptions(
            base_url=server.url + "/", async_client_args={"ssl": ctx, "verify": ctx}
        ),
    )


async def test_vertex_express_mode_and_double_slash(emulator: EmulatorServer) -> None:
    client = _express_client(emulator)
    response = await client.aio.models.generate_content(model="gemini-2.5-flash", contents="tiny kazoo")
    assert "kazoo" in (response.text or "")
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with client.aio.live.connect(
            model="gemini-live-2.5-flash-native-audio", config=live_config()
        ) as session:
            await session.send_realtime_input(text="the kazoo orchestra")
            turn = await receive_turn(session)
    assert "kazoo" in turn.output_text or "orchestra" in turn.output_text


async def test_developer_api_v1beta_path(emulator: EmulatorServer) -> None:
    ctx = ssl.create_default_context(cafile=str(emulator.ca_file))
    client = genai.Client(
        api_key="k",
        http_options=types.HttpOptions(
            base_url=emulator.url, api_version="v1beta", async_client_args={"ssl": ctx, "verify": ctx}
        ),
    )
    response = await client.aio.models.generate_content(model="models/gemini-2.5-flash", contents="waffles")
    assert "waffles" in (response.text or "")
    live_model = "gemini-3.1-flash-live-preview"
    async with client.aio.live.connect(model=live_model, config=live_config()) as session:
        await session.send_realtime_input(text="waffle tower")
        turn = await receive_turn(session)
    assert "waffle" in turn.output_text or "tower" in turn.output_text


async def test_resuming_while_the_old_socket_is_open_is_refused(emulator: EmulatorServer) -> None:
    client = make_client(emulator)
    async with asyncio.timeout(TURN_TIMEOUT_S):
        async with client.aio.live.connect(model="m", config=live_config()) as first:
            await first.send_realtime_input(text="a llama in the library")
            turn = await receive_turn(first)
            config = live_config(session_resumption=types.SessionResumptionConfig(handle=turn.handles[-1]))
            with pytest.raises(errors.APIError) as caught:
                async with client.aio.live.connect(model="m", config=config):
                    pass
    assert caught.value.code == 1011


async def test_live_socket_without_credentials_is_refused(emulator: EmulatorServer) -> None:
    ctx = ssl.create_default_context(cafile=str(emulator.ca_file))
    path = "/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(emulator.url + path, ssl=ctx)
    assert caught.value.status == 401
