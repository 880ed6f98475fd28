"""The draining entry point, driven as a real process (`python -m ai4joy.serve`).

These use the test-only consumer in drain_app.py, which keeps the drain contract, so the
entry point is proven on its own; audio/tests/test_drain.py runs the real voice consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ai4joy.serve import CLOUD_RUN_GRACE_S, DEFAULT_APP, MAX_MESSAGE_BYTES, binds_itself, daphne_args
from ai4joy.supervise import STARTUP_S, ConfigError, process_count, usable_cpus
from ai4joy.tests.serving import (
    ServerProcess,
    base_env,
    next_of_type,
    read_records,
    start_server,
    until_closed,
)
from audio.protocol import MAX_FRAME_BYTES, CloseCode

CONTRACT_APP = "ai4joy.tests.drain_app:application"


# --- arguments ------------------------------------------------------------------------------
def test_defaults_bind_loopback_8000_with_proxy_headers_and_the_app(settings):
    settings.WEBSOCKET_TIMEOUT = 3600
    args = daphne_args([], {})
    assert args[args.index("--bind") + 1] == "127.0.0.1"
    assert args[args.index("--port") + 1] == "8000"
    assert "--proxy-headers" in args
    assert args[-1] == DEFAULT_APP
    # Daphne's own lifetime cap must come after the app's (which warns first).
    assert int(args[args.index("--websocket_timeout") + 1]) > 3600


def test_host_and_port_come_from_the_environment():
    args = daphne_args([], {"HOST": "0.0.0.0", "PORT": "8080"})
    assert args[args.index("--bind") + 1] == "0.0.0.0"
    assert args[args.index("--port") + 1] == "8080"


def test_caller_options_come_after_the_defaults_and_an_app_path_replaces_the_default():
    args = daphne_args(["-v", "2", CONTRACT_APP], {})
    assert args[-3:] == ["-v", "2", CONTRACT_APP]
    assert DEFAULT_APP not in args


def test_message_cap_leaves_room_for_the_consumers_own_4013():
    # A base64 JSON frame at the consumer's limit must still reach the consumer.
    assert MAX_MESSAGE_BYTES > MAX_FRAME_BYTES * 4 // 3 + 1024
    assert CloseCode.SERVER_RESTART == 4012


# --- helpers --------------------------------------------------------------------------------
@pytest.fixture
def records_file(tmp_path: Path) -> Path:
    return tmp_path / "records.jsonl"


@pytest.fixture
def serve(tmp_path: Path, records_file: Path):
    started: list[ServerProcess] = []

    def start(**env: str) -> ServerProcess:
        full = base_env(RECORDS_FILE=str(records_file), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                        **env)
        server = start_server(full, tmp_path / f"server{len(started)}.log", CONTRACT_APP)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


async def open_client(server: ServerProcess, conn_id: str, **query: str) -> ClientConnection:
    qs = urlencode({"id": conn_id, **query})
    ws = await connect(f"{server.ws_base}/ws/audio/scene?{qs}", origin=server.origin, open_timeout=10)
    await next_of_type(ws, "ready", timeout=5)
    return ws


def by_event(records: list[dict], event: str) -> dict[str, dict]:
    return {r["id"]: r for r in records if r["event"] == event}


# --- close codes and reasons -----------------------------------------------------------------
@pytest.mark.parametrize(("code", "reason"), [(4012, "server restarting"), (1012, "service restart"),
                                              (1000, "")])
async def test_the_apps_close_code_and_reason_reach_the_client(serve, code, reason):
    server = serve()
    ws = await open_client(server, "closer")
    await ws.send(json.dumps({"type": "close", "code": code, "reason": reason}))
    seen = await until_closed(ws, time.monotonic(), timeout=5)
    assert (seen["code"], seen["reason"]) == (code, reason)
    server.sigterm()
    assert server.wait_exit(within=8) == 0


async def test_a_close_code_no_server_may_send_becomes_1011(serve):
    server = serve()
    ws = await open_client(server, "bad-closer")
    await ws.send(json.dumps({"type": "close", "code": 1006, "reason": "reserved"}))
    assert (await until_closed(ws, time.monotonic(), timeout=5))["code"] == 1011
    server.sigterm()
    assert server.wait_exit(within=8) == 0


# --- the drain ------------------------------------------------------------------------------
async def test_sigterm_tells_every_socket_to_reconnect_saves_everything_and_exits_0(serve, records_file):
    server = serve(DRAIN_TIMEOUT="8")
    clients = [await open_client(server, f"c{i}") for i in range(5)]
    await clients[0].send(json.dumps({"type": "text", "text": "a bakery on the moon"}))
    await next_of_type(clients[0], "transcript", timeout=5)

    sent = time.monotonic()
    server.sigterm()
    await asyncio.sleep(0.05)
    server.sigterm()  # Cloud Run may repeat itself: ignored, the drain goes on
    results = await asyncio.gather(*(until_closed(ws, sent, timeout=2) for ws in clients))

    for seen in results:
        assert seen["reconnect"] == {"type": "reconnect", "reason": "server_restart",
                                     "resume_token": seen["reconnect"]["resume_token"], "retry_after_ms": 500}
        assert seen["code"] == CloseCode.SERVER_RESTART
        assert seen["reason"] == "server restarting"  # the reason text survives Daphne
    assert server.wait_exit(within=8) == 0

    records = read_records(records_file)
    ids = {f"c{i}" for i in range(5)}
    finalised = by_event(records, "finalised")
    assert {i: r["reason"] for i, r in finalised.items()} == dict.fromkeys(ids, "server_restart")
    assert set(by_event(records, "task_finally")) == ids  # background tasks ran their finally
    assert by_event(records, "turn")["c0"]["text"] == "a bakery on the moon"
    [finished] = server.events("server_drain_finished")
    assert finished["instances"] == 5 and finished["cancelled"] == 0


async def test_a_client_that_never_answers_the_close_is_dropped_and_still_finalised(serve, records_file):
    server = serve(DRAIN_TIMEOUT="8")
    polite = await open_client(server, "polite")
    deaf = await open_client(server, "deaf")
    deaf.transport.pause_reading()  # it will never read, so never answer, the close frame

    sent = time.monotonic()
    server.sigterm()
    seen = await until_closed(polite, sent, timeout=2)
    assert seen["code"] == CloseCode.SERVER_RESTART
    server.sigterm()  # while the deaf socket still holds the drain open: ignored
    assert server.wait_exit(within=8) == 0  # autobahn drops it after its close-handshake timeout

    records = read_records(records_file)
    assert by_event(records, "finalised")["deaf"]["reason"] == "server_restart"
    disconnects = by_event(records, "disconnect")
    assert disconnects["polite"]["code"] == CloseCode.SERVER_RESTART  # it echoed the close
    assert disconnects["deaf"]["code"] == 1006  # dropped without a close handshake
    assert server.events("server_drain_finished")[0]["cancelled"] == 0
    assert server.events("server_drain_signal_ignored")
    deaf.transport.abort()


async def test_cleanup_slower_than_the_drain_timeout_is_cancelled_and_new_connections_are_refused(
    serve, records_file
):
    server = serve(DRAIN_TIMEOUT="2")
    slow = await open_client(server, "slow", slow="30")

    server.sigterm()
    await next_of_type(slow, "reconnect", timeout=2)
    # Draining (the slow socket keeps it alive): the port no longer accepts connections.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    assert server.process.poll() is None
    assert server.wait_exit(within=2 + 3) == 0

    records = read_records(records_file)
    assert "slow" in by_event(records, "cancelled")
    assert "slow" not in by_event(records, "finalised")
    assert server.events("server_drain_finished")[0]["cancelled"] == 1
    await slow.close()


async def test_a_socket_that_never_hears_the_drain_event_still_gets_the_restart_close(serve, records_file):
    server = serve(DRAIN_TIMEOUT="2")
    missed = await open_client(server, "missed", group="0")

    server.sigterm()
    seen = await until_closed(missed, time.monotonic(), timeout=2 + 1)
    assert seen["reconnect"] is None  # nobody told the consumer...
    assert (seen["code"], seen["reason"]) == (CloseCode.SERVER_RESTART, "server restarting")  # ...but
    assert server.wait_exit(within=2 + 3) == 0

    assert by_event(read_records(records_file), "finalised")["missed"]["reason"] == "network_error"
    [finished] = server.events("server_drain_finished")
    assert (finished["closed_by_server"], finished["cancelled"]) == (1, 0)


async def test_a_handshake_caught_by_the_drain_is_refused_with_503(serve, records_file):
    server = serve(DRAIN_TIMEOUT="8")
    live = await open_client(server, "live")
    late = asyncio.ensure_future(connect(f"{server.ws_base}/ws/audio/scene?id=late&accept_delay=1",
                                         origin=server.origin, open_timeout=10))
    await asyncio.sleep(0.3)  # the late consumer is now inside connect(), before accept
    server.sigterm()

    with pytest.raises(InvalidStatus) as refused:
        await asyncio.wait_for(late, timeout=5)
    assert refused.value.response.status_code == 503
    assert (await until_closed(live, time.monotonic(), timeout=2))["code"] == CloseCode.SERVER_RESTART
    assert server.wait_exit(within=8) == 0
    assert "late" in by_event(read_records(records_file), "finalised")  # its disconnect() ran


async def test_the_drain_group_is_per_process_on_a_shared_redis(serve, records_file):
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("needs Redis at 127.0.0.1:6379")
    shared = {"REDIS_URL": "redis://127.0.0.1:6379/0", "CHANNEL_PREFIX": f"t{uuid.uuid4().hex[:10]}"}
    stopping, staying = serve(DRAIN_TIMEOUT="8", **shared), serve(DRAIN_TIMEOUT="8", **shared)
    leaving = await open_client(stopping, "leaving")
    remaining = await open_client(staying, "remaining")

    stopping.sigterm()
    assert (await until_closed(leaving, time.monotonic(), timeout=2))["code"] == CloseCode.SERVER_RESTART
    assert stopping.wait_exit(within=8) == 0

    # The other instance's client noticed nothing and still plays.
    await remaining.send(json.dumps({"type": "text", "text": "still here"}))
    await next_of_type(remaining, "transcript", timeout=5)
    assert "remaining" not in by_event(read_records(records_file), "finalised")
    staying.sigterm()
    assert (await until_closed(remaining, time.monotonic(), timeout=2))["code"] == CloseCode.SERVER_RESTART
    assert staying.wait_exit(within=8) == 0


@pytest.mark.slow
async def test_fifty_sockets_drain_together(serve, records_file, capsys):
    server = serve(DRAIN_TIMEOUT="8")
    clients = await asyncio.gather(*(open_client(server, f"s{i}") for i in range(50)))
    sent = time.monotonic()
    server.sigterm()
    results = await asyncio.gather(*(until_closed(ws, sent, timeout=2) for ws in clients))
    code = server.wait_exit(within=8)
    exited = time.monotonic() - sent

    assert all(r["code"] == CloseCode.SERVER_RESTART and r["reconnect"] for r in results)
    assert code == 0
    assert len(by_event(read_records(records_file), "finalised")) == 50
    reconnects = [r["reconnect_at"] for r in results]
    closes = [r["closed_at"] for r in results]
    with capsys.disabled():
        print(f"\n50 sockets: reconnect median {statistics.median(reconnects):.3f}s "
              f"max {max(reconnects):.3f}s; "
              f"close median {statistics.median(closes):.3f}s max {max(closes):.3f}s; exit {exited:.3f}s; "
              f"drain {server.events('server_drain_finished')[0]['duration_s']}s")
    with contextlib.suppress(Exception):
        await asyncio.gather(*(ws.close() for ws in clients))


# --- one process per vCPU -------------------------------------------------------------------
IN_MEMORY = "channels.layers.InMemoryChannelLayer"
REDIS = "channels_redis.core.RedisChannelLayer"


def test_process_count_defaults_to_the_cpus_and_env_overrides_it():
    assert process_count({}, REDIS)[0] == usable_cpus() <= len(os.sched_getaffinity(0))
    assert process_count({"WEB_CONCURRENCY": "3"}, REDIS) == (3, "3 from WEB_CONCURRENCY")
    assert process_count({"SERVE_PROCESSES": "2", "WEB_CONCURRENCY": "3"}, REDIS)[0] == 2


def test_the_in_memory_channel_layer_keeps_one_process_and_says_why():
    count, why = process_count({"SERVE_PROCESSES": "4"}, IN_MEMORY)
    assert count == 1
    assert "REDIS_URL" in why and "4" in why


@pytest.mark.parametrize(("cpu_max", "expected"), [("max 100000\n", None), ("200000 100000\n", 2),
                                                  ("150000 100000\n", 2), ("50000 100000\n", 1)])
def test_the_containers_cpu_quota_caps_the_default(tmp_path, cpu_max, expected):
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    cpus = len(os.sched_getaffinity(0))
    assert usable_cpus(path) == (cpus if expected is None else min(cpus, expected))
    assert usable_cpus(tmp_path / "missing") == cpus


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_a_bad_process_count_is_a_clear_error(bad):
    with pytest.raises(ConfigError, match="SERVE_PROCESSES"):
        process_count({"SERVE_PROCESSES": bad}, REDIS)


def test_a_child_listens_only_on_the_socket_it_was_given():
    args = daphne_args(["--fd", "5"], {"HOST": "0.0.0.0", "PORT": "8080"})
    assert "--bind" not in args and "--port" not in args
    assert binds_itself(["--fd", "5"]) and binds_itself(["--port=9000"]) and not binds_itself(["-v", "2"])


def redis_env() -> dict[str, str]:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("needs Redis at 127.0.0.1:6379")
    return {"REDIS_URL": "redis://127.0.0.1:6379/0", "CHANNEL_PREFIX": f"t{uuid.uuid4().hex[:10]}"}


async def clients_on_every_process(server: ServerProcess, processes: int, prefix: str,
                                   at_least: int) -> dict[str, tuple[ClientConnection, int]]:
    """Opens sockets until every process serves some (the kernel picks one per connection)."""
    opened: dict[str, tuple[ClientConnection, int]] = {}
    for i in range(60):
        conn_id = f"{prefix}{i}"
        ws = await connect(f"{server.ws_base}/ws/audio/scene?id={conn_id}", origin=server.origin,
                           open_timeout=10)
        opened[conn_id] = (ws, (await next_of_type(ws, "ready", timeout=5))["pid"])
        if len(opened) >= at_least and len({pid for _, pid in opened.values()}) == processes:
            return opened
    raise AssertionError(f"60 connections reached only pids {sorted({p for _, p in opened.values()})}")


@pytest.mark.parametrize("processes", [1, 2])
async def test_several_processes_share_the_port_and_all_drain_on_one_sigterm(serve, records_file, processes):
    server = serve(DRAIN_TIMEOUT="8", SERVE_PROCESSES=str(processes), **redis_env())
    opened = await clients_on_every_process(server, processes, "m", at_least=6)
    pids = {pid for _, pid in opened.values()}
    assert (server.process.pid in pids) == (processes == 1)  # a parent of several only supervises

    sent = time.monotonic()
    server.sigterm()
    results = await asyncio.gather(*(until_closed(ws, sent, timeout=3) for ws, _ in opened.values()))
    for seen in results:
        assert seen["reconnect"] is not None and seen["reconnect"]["reason"] == "server_restart"
        assert (seen["code"], seen["reason"]) == (CloseCode.SERVER_RESTART, "server restarting")
    assert server.wait_exit(within=CLOUD_RUN_GRACE_S) == 0

    records = read_records(records_file)
    assert {i: r["reason"] for i, r in by_event(records, "finalised").items()} == dict.fromkeys(
        opened, "server_restart")
    finished = server.events("server_drain_finished")
    assert len(finished) == processes  # one drain per process
    assert sum(f["instances"] for f in finished) == len(opened)
    # Not asserted: "cancelled". With several sockets in one process on Redis, one application
    # instance may outlive its finished consumer (channels_redis's shared receive), so the
    # drain's final cancel ends it; every record above is already saved by then.


async def test_a_process_that_dies_is_replaced_and_the_port_keeps_serving(serve):
    server = serve(DRAIN_TIMEOUT="8", SERVE_PROCESSES="2", **redis_env())
    opened = await clients_on_every_process(server, 2, "d", at_least=2)
    victim_ws, victim = next(iter(opened.values()))
    await asyncio.sleep(STARTUP_S)  # past start-up: a later death is a crash, not a bad config
    os.kill(victim, signal.SIGKILL)
    await until_closed(victim_ws, time.monotonic(), timeout=5)

    # The replacement takes a few seconds to import Django; meanwhile its socket's connections wait.
    pids: set[int] = set()
    deadline = time.monotonic() + 30
    while len(pids - {victim}) < 2:
        assert time.monotonic() < deadline, f"only {pids} served the port after the crash"
        # A connection the kernel queued on the dead process's socket is reset: try again.
        with contextlib.suppress(OSError, TimeoutError, InvalidHandshake, ConnectionClosed):
            ws = await connect(f"{server.ws_base}/ws/audio/scene?id=after{len(pids)}", origin=server.origin,
                               open_timeout=10)
            pids.add((await next_of_type(ws, "ready", timeout=5))["pid"])
            await ws.close()
    assert victim not in pids
    server.sigterm()
    assert server.wait_exit(within=CLOUD_RUN_GRACE_S) == 0
    assert server.events("server_process_exited")[0]["code"] == -signal.SIGKILL


async def test_children_drain_when_the_parent_is_killed(serve, records_file):
    server = serve(DRAIN_TIMEOUT="8", SERVE_PROCESSES="2", **redis_env())
    opened = await clients_on_every_process(server, 2, "k", at_least=2)
    server.process.kill()  # no forwarding possible: the kernel tells the children (PDEATHSIG)
    since = time.monotonic()
    results = await asyncio.gather(*(until_closed(ws, since, timeout=5) for ws, _ in opened.values()))
    assert all(seen["code"] == CloseCode.SERVER_RESTART for seen in results)
    children = {pid for _, pid in opened.values()}
    while any(Path(f"/proc/{pid}").exists() for pid in children):  # noqa: ASYNC240 (a stat per 0.1 s)
        assert time.monotonic() - since < CLOUD_RUN_GRACE_S, "a child outlived its killed parent"
        await asyncio.sleep(0.1)
    assert set(by_event(read_records(records_file), "finalised")) == set(opened)
