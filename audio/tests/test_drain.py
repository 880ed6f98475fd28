"""audio/drain.py: the process group and the drain event, and the whole drain end to end.

The end-to-end tests run the real app (`python -m ai4joy.serve` serving ai4joy.asgi with the
real voice consumer) against the Gemini emulator, on a SQLite file database that this module
migrates itself (pytest-django's test database is invisible to a subprocess). The entry point
on its own is tested in ai4joy/tests/test_serve.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
import uuid

import pytest
from channels.layers import InMemoryChannelLayer, get_channel_layer
from websockets.asyncio.client import ClientConnection, connect

from ai4joy.serve import CLOUD_RUN_GRACE_S
from ai4joy.tests.serving import (
    ServerProcess,
    base_env,
    migrate_database,
    next_of_type,
    run_django,
    until_closed,
)
from audio import drain
from audio.protocol import CloseCode


def test_group_name_is_valid_for_the_channel_layer_and_stable():
    name = drain.process_group_name()
    assert InMemoryChannelLayer().require_valid_group_name(name)
    assert name.startswith("audio.drain.")
    assert drain.process_group_name() == name


@pytest.mark.parametrize("hostname", ["run-abc 123/ü", "x" * 300, "..", "localhost"])
def test_any_hostname_gives_a_valid_short_name(monkeypatch, hostname):
    monkeypatch.setattr(drain.socket, "gethostname", lambda: hostname)
    name = drain.process_group_name()
    assert InMemoryChannelLayer().require_valid_group_name(name)
    assert len(name) < 100


def test_two_processes_never_share_a_group_even_with_the_same_hostname():
    code = "from audio.drain import process_group_name; print(process_group_name())"
    names = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       timeout=60).stdout.strip()
        for _ in range(2)
    }
    assert len(names) == 2
    assert drain.process_group_name() not in names


def test_instance_name_is_host_and_pid():
    host, pid = drain.instance_name().rsplit(":", 1)
    assert host and int(pid) > 0


async def test_drain_broadcast_reaches_every_member_of_this_processs_group(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    members = [await layer.new_channel() for _ in range(3)]
    outsider = await layer.new_channel()
    for channel in members:
        await layer.group_add(drain.process_group_name(), channel)
    await layer.group_add("audio.drain.other-host.1.deadbeef", outsider)

    assert await drain.drain_broadcast() == drain.process_group_name()

    for channel in members:
        assert await asyncio.wait_for(layer.receive(channel), timeout=1) == {"type": "audio.drain"}
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(outsider), timeout=0.2)


async def test_drain_broadcast_without_a_channel_layer_says_so(settings):
    settings.CHANNEL_LAYERS = {}
    with pytest.raises(RuntimeError, match="CHANNEL_LAYERS"):
        await drain.drain_broadcast()


# --- end to end: the real app in a real Daphne process -------------------------------------
PLAYERS_CODE = """
import json
from django.test import Client
from django.contrib.auth import get_user_model
from flags.services import rollout_set
from improv.store import get_store

rollout_set(percent=100, actor_label="tests", reason="drain tests")
players = []
for i in range({n}):
    email = "drain-{tag}-%d@example.com" % i
    user = get_user_model().objects.create_user(username=email, email=email, password=None)  # no slow hashing
    client = Client()
    client.force_login(user)
    scene = get_store().scene_create(user_id=user.pk, status="active", game_slug="freeze-tag")
    players.append({{"user_id": user.pk, "cookie": client.cookies["sessionid"].value, "scene_id": scene.id}})
print(json.dumps(players))
"""

RECORDS_CODE = """
import json
from dataclasses import asdict
from improv.store import get_store

store = get_store()
out = {{}}
for scene_id in {scene_ids!r}:
    out[scene_id] = {{
        "audio": [asdict(r) for r in store.audio_sessions_for_scene(scene_id)],
        "turns": [{{"speaker": t.speaker, "text": t.text}} for t in store.turns_list(scene_id)],
    }}
print(json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def app_env(tmp_path_factory, gemini_emulator) -> dict[str, str]:
    db = tmp_path_factory.mktemp("drain-db") / "db.sqlite3"
    env = base_env(
        DATABASE_URL=f"sqlite:///{db}", SERVICE_ROLE="all", DRAIN_TIMEOUT="8",
        GEMINI_BACKEND="emulator", GEMINI_EMULATOR_URL=gemini_emulator.url,
        GEMINI_EMULATOR_CA_FILE=gemini_emulator.ca_file, GEMINI_LIVE_MODEL="",
        WEBSOCKET_PING_INTERVAL="30", WEBSOCKET_TIMEOUT="3600",
    )
    migrate_database(env)
    return env


def make_players(env: dict[str, str], n: int) -> list[dict]:
    return run_django(PLAYERS_CODE.format(n=n, tag=uuid.uuid4().hex[:8]), env)


def stored(env: dict[str, str], scene_ids: list[str]) -> dict[str, dict]:
    return run_django(RECORDS_CODE.format(scene_ids=scene_ids), env)


async def open_voice(server: ServerProcess, player: dict, resume: str = "") -> tuple[ClientConnection, dict]:
    url = f"{server.ws_base}/ws/audio/{player['scene_id']}" + (f"?resume={resume}" if resume else "")
    ws = await connect(url, origin=server.origin, open_timeout=10,
                       additional_headers={"Cookie": f"sessionid={player['cookie']}"})
    return ws, await next_of_type(ws, "ready", timeout=15)


def redis_layer() -> dict[str, str]:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("needs Redis at 127.0.0.1:6379")
    return {"REDIS_URL": "redis://127.0.0.1:6379/0", "CHANNEL_PREFIX": f"t{uuid.uuid4().hex[:10]}",
            "CACHE_PREFIX": f"t{uuid.uuid4().hex[:10]}"}


def firestore_store_env(request) -> dict[str, str]:
    emulator = request.getfixturevalue("firestore_emulator")
    emulator.reset()
    return {"SESSION_STORE": "firestore", "FIRESTORE_EMULATOR_HOST": emulator.host,
            "GCP_PROJECT_ID": emulator.project, "FIRESTORE_DATABASE": "(default)"}


@pytest.mark.parametrize(("layer", "store", "processes"), [
    ("in-memory", "django", 1),
    ("redis", "django", 1),
    ("redis", "django", 2),  # one server process per vCPU, as the container runs
    pytest.param("redis", "firestore", 2, marks=pytest.mark.firestore),  # as in production
])
async def test_sigterm_drains_real_voice_sockets_and_another_process_resumes_the_scene(
    app_env, app_servers, request, layer, store, processes
):
    env = {**app_env, **(redis_layer() if layer == "redis" else {}), "SERVE_PROCESSES": str(processes),
           **(firestore_store_env(request) if store == "firestore" else {})}
    talker, quiet, deaf = make_players(env, 3)
    server = app_servers(env)
    (talker_ws, _), (quiet_ws, _), (deaf_ws, _) = [await open_voice(server, p) for p in (talker, quiet, deaf)]

    # A turn right before SIGTERM: its transcript must be saved, not lost in the drain.
    await talker_ws.send(json.dumps({"type": "text", "text": "Welcome to the bakery on the moon"}))
    await next_of_type(talker_ws, "turn_complete", timeout=30)
    deaf_ws.transport.pause_reading()  # never reads, so never answers, the close frame

    sent = time.monotonic()
    server.sigterm()
    talker_seen, quiet_seen = await asyncio.gather(until_closed(talker_ws, sent, timeout=2),
                                                   until_closed(quiet_ws, sent, timeout=2))
    for seen in (talker_seen, quiet_seen):
        assert seen["reconnect"] is not None, "no reconnect message within 2 s"
        assert seen["reconnect"]["reason"] == "server_restart"
        assert seen["reconnect"]["resume_token"] and seen["reconnect"]["retry_after_ms"] > 0
        assert seen["code"] == CloseCode.SERVER_RESTART
        assert seen["reason"] == "server_restart", "the close reason must reach the browser"
    assert server.wait_exit(within=CLOUD_RUN_GRACE_S) == 0
    # Every consumer finished by itself: none was left for the drain's final cancel (a plain
    # Channels consumer on Redis can be, ai4joy/tests/test_serve.py; audio.consumers.dispatch_in_order).
    assert [f["cancelled"] for f in server.events("server_drain_finished")] == [0] * processes
    deaf_ws.transport.abort()

    records = stored(env, [p["scene_id"] for p in (talker, quiet, deaf)])
    for player in (talker, quiet, deaf):
        [audio] = records[player["scene_id"]]["audio"]
        outcome = (audio["status"], audio["close_reason"], audio["resumable"])
        assert outcome == ("ended", "server_restart", True)
    turns = records[talker["scene_id"]]["turns"]
    assert any(t["speaker"] == "user" and "bakery on the moon" in t["text"] for t in turns), turns
    assert any(t["speaker"] == "partner" and t["text"] for t in turns), turns

    # The browser reconnects (here: to a new process on the same database) and resumes.
    successor = app_servers(env)
    ws, ready = await open_voice(successor, talker, resume=talker_seen["reconnect"]["resume_token"])
    assert ready["resumed"] is True
    await ws.send(json.dumps({"type": "end"}))
    assert (await until_closed(ws, time.monotonic(), timeout=5))["code"] == CloseCode.NORMAL
    successor.sigterm()
    assert successor.wait_exit(within=8) == 0
    assert [f["cancelled"] for f in successor.events("server_drain_finished")] == [0] * processes


@pytest.mark.slow
async def test_fifty_real_voice_sockets_drain_within_the_grace_period(app_env, app_servers, capsys):
    players = make_players(app_env, 50)
    server = app_servers(app_env)
    opened = await asyncio.gather(*(open_voice(server, p) for p in players))
    sockets = [ws for ws, _ in opened]

    sent = time.monotonic()
    server.sigterm()

    async def drained(ws: ClientConnection) -> dict:
        reconnect = await next_of_type(ws, "reconnect", timeout=2)
        reconnect_at = time.monotonic() - sent
        # The close follows once the record is saved; 50 at once share one database thread.
        closed = await until_closed(ws, sent, timeout=8)
        return {**closed, "reconnect": reconnect, "reconnect_at": reconnect_at}

    results = await asyncio.gather(*(drained(ws) for ws in sockets))
    code = server.wait_exit(within=8)
    exited = time.monotonic() - sent

    assert all(r["reconnect"] and r["code"] == CloseCode.SERVER_RESTART for r in results)
    assert code == 0
    records = stored(app_env, [p["scene_id"] for p in players])
    assert all(r["audio"][0]["close_reason"] == "server_restart" for r in records.values())
    reconnects, closes = [r["reconnect_at"] for r in results], [r["closed_at"] for r in results]
    with capsys.disabled():
        print(f"\n50 real voice sockets: reconnect median {statistics.median(reconnects):.3f}s "
              f"max {max(reconnects):.3f}s; close median {statistics.median(closes):.3f}s "
              f"max {max(closes):.3f}s; exit {exited:.3f}s; "
              f"drain {server.events('server_drain_finished')[0]['duration_s']}s")


# --- several server processes: what crosses processes goes through Redis ----------------------
def instances_of(env: dict[str, str], players: list[dict]) -> dict[str, list[str]]:
    """scene id -> the instance (host:pid) of each of its voice sessions, oldest first."""
    records = stored(env, [p["scene_id"] for p in players])
    return {scene: [a["instance"] for a in sorted(r["audio"], key=lambda a: str(a["created_at"]))]
            for scene, r in records.items()}


async def test_supersede_rollback_and_admin_end_reach_sockets_on_every_process(app_env, app_servers):
    env = {**app_env, **redis_layer(), "SERVE_PROCESSES": "2"}
    players = make_players(env, 6)
    server = app_servers(env)
    sockets = {p["scene_id"]: (await open_voice(server, p))[0] for p in players}

    # Supersede: a newer socket of the same user closes the older one, wherever each one landed
    # (the kernel picks the process). Repeat until some pair really crossed processes.
    crossed = 0
    for _ in range(5):
        for player in players[:3]:
            newer, _ = await open_voice(server, player)
            error = await next_of_type(sockets[player["scene_id"]], "error", timeout=10)
            assert error["code"] == "superseded"
            assert (await until_closed(sockets[player["scene_id"]], time.monotonic(), timeout=5))["code"] == \
                CloseCode.SUPERSEDED
            sockets[player["scene_id"]] = newer
        where = await asyncio.to_thread(instances_of, env, players)
        crossed = sum(older != newer for p in players[:3]
                      for older, newer in zip(where[p["scene_id"]], where[p["scene_id"]][1:], strict=False))
        if crossed:
            break
    assert crossed, "no supersede crossed processes in 5 rounds"

    # Admin "end session" for one user, then a rollback for everyone else: both sent from a third
    # process (manage.py shell), so they can only arrive through Redis.
    admin_target = players[3]
    # In a thread: a blocked event loop would leave the clients' keepalive pings unanswered.
    await asyncio.to_thread(run_django, f"from audio.services import audio_session_end; import json; "
                            f"print(json.dumps(audio_session_end(user_id={admin_target['user_id']})))", env)
    ended = sockets.pop(admin_target["scene_id"])
    assert (await next_of_type(ended, "error", timeout=10))["code"] == "ended_by_admin"
    assert (await until_closed(ended, time.monotonic(), timeout=5))["code"] == CloseCode.NORMAL

    rollback = ("from flags.services import rollout_set; import json; "
                "print(json.dumps(str(rollout_set(percent=0, actor_label='tests', reason='rollback'))))")
    await asyncio.to_thread(run_django, rollback, env)
    for ws in sockets.values():
        assert (await next_of_type(ws, "error", timeout=10))["code"] == "voice_disabled"
        assert (await until_closed(ws, time.monotonic(), timeout=5))["code"] == CloseCode.ROLLED_BACK
    server.sigterm()
    assert server.wait_exit(within=CLOUD_RUN_GRACE_S) == 0
