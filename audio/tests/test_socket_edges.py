"""What a scanner or a misbehaving client meets at the WebSocket edge of the real server
(`python -m ai4joy.serve` with the real voice consumer): clean refusals, never a 5xx, a
traceback, or a bare TCP drop."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ai4joy.serve import MAX_MESSAGE_BYTES
from ai4joy.tests.serving import next_of_type, until_closed
from audio.protocol import MAX_FRAME_BYTES, CloseCode
from audio.tests.test_drain import app_env, make_players, open_voice, stored  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("path", ["/ws/nothing", "/ws/audio/x'\"", "/ws/audio/", "/ws", "/ws/audio/a/b/c"])
async def test_an_unknown_websocket_path_is_refused_cleanly(app_env, app_servers, path):  # noqa: F811
    server = app_servers(app_env)
    async with connect(f"{server.ws_base}{path}", origin=server.origin, open_timeout=10) as ws:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    assert message["type"] == "error" and message["code"] == "not_found"
    assert ws.close_code == CloseCode.SCENE_UNAVAILABLE
    server.sigterm()
    assert server.wait_exit(within=8) == 0
    log = server.log()
    rejected = server.events("ws_rejected")
    assert len(rejected) == 1 and rejected[0]["severity"] == "INFO", rejected
    assert rejected[0]["reason"] == "unknown_path"
    assert "Traceback" not in log and "No route found" not in log and "ERROR" not in log


async def test_a_frame_over_the_consumers_limit_gets_4013_and_the_record_says_too_big(
    app_env, app_servers  # noqa: F811
):
    [player] = make_players(app_env, 1)
    server = app_servers(app_env)
    ws, _ = await open_voice(server, player)
    await ws.send(b"\x00" * (MAX_FRAME_BYTES + 2))
    error = await next_of_type(ws, "error", timeout=10)
    seen = await until_closed(ws, time.monotonic(), timeout=10)
    assert error["code"] == "too_big" and str(MAX_FRAME_BYTES) in error["message"]
    assert seen["code"] == CloseCode.TOO_BIG
    [record] = stored(app_env, [player["scene_id"]])[player["scene_id"]]["audio"]
    assert record["close_reason"] == "too_big"
    server.sigterm()
    assert server.wait_exit(within=8) == 0


async def test_a_huge_frame_gets_a_close_frame_not_a_dropped_connection(app_env, app_servers):  # noqa: F811
    [player] = make_players(app_env, 1)
    server = app_servers(app_env)
    ws, _ = await open_voice(server, player)
    assert 3 * 1024 * 1024 > MAX_MESSAGE_BYTES  # past the WebSocket layer's own cap
    await ws.send(b"\x00" * (3 * 1024 * 1024))
    seen = await until_closed(ws, time.monotonic(), timeout=10)
    assert seen["code"] in (CloseCode.TOO_BIG, 1009), seen  # 1006 would be a dropped connection
    deadline = time.monotonic() + 10
    while True:  # the consumer finalises the record once Daphne reports the close
        [record] = stored(app_env, [player["scene_id"]])[player["scene_id"]]["audio"]
        if record["status"] != "active" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert (record["status"], record["close_reason"]) == ("ended", "too_big")
    server.sigterm()
    assert server.wait_exit(within=8) == 0
