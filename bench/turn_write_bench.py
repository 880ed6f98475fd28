"""`python -m bench.turn_write_bench`: the database work of one completed voice turn, measured.

    python -m bench.turn_write_bench [--scenes 6] [--modes sync,relay] [--backends sqlite,postgres]
                                     [--postgres-url postgres://postgres@127.0.0.1:5432/postgres]
                                     [--out var/bench/turn_writes.json]

Each backend gets a fresh, migrated database of its own: a SQLite file in a temporary directory,
and (when Postgres answers at --postgres-url) a throwaway database `turnbench_<pid>_<hex>`,
created and dropped here; no other database is touched. Each backend runs in a child process
(Django's settings are fixed at start-up) and plays --scenes active scenes of IMPROV_SCENE_TURNS
(15) voice turns each, after one warm-up scene:

- `sync`: `improv.voice_turns.voice_turn_record` and the audio session's counters flush, on this
  thread: the store's own work, no model call.
- `relay`: the relay's own write path: `audio.persist.TurnWriter` (one per scene, as one per voice
  session), which calls `audio.services.voice_turn_save` (the model's room vibe from the Gemini
  emulator, a real process) and `audio.services.audio_session_flush`, through `store_call`. Its
  CPU includes the SDK's model call; `sync` isolates the database work.

Per turn it reports CPU (time.process_time of the child, all its threads), the CPU of the thread
the store's calls run on (in `relay`, asgiref's one sync thread, which every voice session's
database work queues on; in `sync`, all of it), wall time, queries
(django.test.utils.CaptureQueriesContext, on the thread that runs them), commits (explicit ones,
counted on BaseDatabaseWrapper.commit, plus writes made in autocommit) and connections opened
(the connection_created signal). Postgres' CONN_HEALTH_CHECKS probe (a SELECT 1 that bypasses
Django's cursor) is not a counted query. CPU and wall time depend on the machine and its load:
compare runs made one after the other on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PG_URL = "postgres://postgres@127.0.0.1:5432/postgres"
USER_LINES = [
    "Captain, the penguins have taken the wheel!",
    "Why would they steer us toward the iceberg?",
    "I brought fish. Lots of fish. Maybe they want fish?",
    "Fine, I will dance for them.",
]
PARTNER_LINES = [
    "Yes, and they have drawn a map on the deck in sardines!",
    "Because the iceberg is their ancestral home, Captain.",
    "They want herring, and a formal apology.",
]


# --- the parent: one child per backend ------------------------------------------------------
def _postgres_db(url: str) -> tuple[str, str] | None:
    """A fresh database next to `url`'s, as (its URL, its name); None if Postgres does not answer."""
    try:
        import psycopg

        conn = psycopg.connect(url, connect_timeout=3, autocommit=True)
    except Exception as exc:
        print(f"postgres: not reachable at {url} ({type(exc).__name__}); skipped", file=sys.stderr)
        return None
    name = f"turnbench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name, name


def _postgres_drop(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _child(db_url: str, args: argparse.Namespace, emulator: dict[str, str]) -> dict[str, Any]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "ai4joy.settings",
        "DATABASE_URL": db_url,
        "SESSION_STORE": "django",
        "LOG_LEVEL": "WARNING",
        "GEMINI_BACKEND": "emulator",
        "GEMINI_EMULATOR_URL": emulator.get("url", ""),
        "GEMINI_EMULATOR_CA_FILE": emulator.get("ca_file", ""),
    }
    cmd = [sys.executable, "-m", "bench.turn_write_bench", "--child", "--scenes", str(args.scenes),
           "--modes", args.modes]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("backend", "mode", "turns", "cpu_ms/turn", "store_thread_cpu_ms/turn", "wall_ms/turn",
            "queries/turn", "commits/turn", "connects/turn", "queries by kind (per turn)")
    lines = [" | ".join(head)]
    for r in rows:
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["kinds_per_turn"].items()))
        lines.append(" | ".join(str(x) for x in (
            r["backend"], r["mode"], r["turns"], f"{r['cpu_ms']:.3f}", f"{r['store_thread_cpu_ms']:.3f}",
            f"{r['wall_ms']:.3f}",
            f"{r['queries']:.2f}", f"{r['commits']:.2f}", f"{r['connects']:.2f}", kinds,
        )))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=6, help="measured scenes per mode (15 turns each)")
    parser.add_argument("--modes", default="sync,relay")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL", PG_URL),
                        help="an existing database to connect to; the bench creates and drops its own")
    parser.add_argument("--sqlite-options", default="",
                        help="a query string for the SQLite URL (DATABASE_URL OPTIONS), to compare settings")
    parser.add_argument("--out", default="")
    parser.add_argument("--show-sql", action="store_true", help="print the statements of sample turns")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _run_child(args)

    from emulator.process import start_emulator

    work = Path(tempfile.mkdtemp(prefix="ai4joy-turnbench-"))
    emulator = None
    if "relay" in args.modes.split(","):
        emulator = start_emulator(work / "emulator", seed=1)
    rows: list[dict[str, Any]] = []
    samples: dict[str, dict[str, list[str]]] = {}
    try:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                query = f"?{args.sqlite_options}" if args.sqlite_options else ""
                result = _child(f"sqlite:///{work / 'turns.sqlite3'}{query}", args, _info(emulator))
            elif backend == "postgres":
                made = _postgres_db(args.postgres_url)
                if made is None:
                    continue
                try:
                    result = _child(made[0], args, _info(emulator))
                finally:
                    _postgres_drop(args.postgres_url, made[1])
            else:
                parser.error(f"unknown backend {backend!r}")
            rows += [{"backend": backend, **row} for row in result["rows"]]
            samples[backend] = result["sample_sql"]
    finally:
        if emulator is not None:
            emulator.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(_table(rows))
    if args.show_sql:
        for backend, sample in samples.items():
            for name, sql in sample.items():
                print(f"\n{backend}, {name}: {len(sql)} statements")
                print("\n".join(f"  {q}" for q in sql))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows},
                                             indent=2))
    return 0


def _info(emulator: Any) -> dict[str, str]:
    return {"url": emulator.url, "ca_file": emulator.ca_file} if emulator is not None else {}


# --- the child: one backend, every mode -----------------------------------------------------
class _Tally:
    """Commits, autocommitted writes and new connections, from every thread of the process."""

    def __init__(self) -> None:
        self.commits = 0
        self.autocommit_writes = 0
        self.connects = 0

    def snapshot(self) -> tuple[int, int]:
        return self.commits + self.autocommit_writes, self.connects


TALLY = _Tally()


def _instrument() -> None:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.signals import connection_created

    real_commit = BaseDatabaseWrapper.commit

    def counted_commit(self: BaseDatabaseWrapper) -> None:
        TALLY.commits += 1
        real_commit(self)

    BaseDatabaseWrapper.commit = counted_commit  # type: ignore[method-assign]

    def on_connect(sender: Any, connection: Any, **kwargs: Any) -> None:
        TALLY.connects += 1
        if _autocommit_writes not in connection.execute_wrappers:  # the wrapper outlives reconnects
            connection.execute_wrappers.append(_autocommit_writes)

    connection_created.connect(on_connect, weak=False)


def _autocommit_writes(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    conn = context["connection"]
    if not conn.in_atomic_block and sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
        TALLY.autocommit_writes += 1
    return execute(sql, params, many, context)


class _Queries:
    """CaptureQueriesContext entered and left on the thread that runs the store's queries."""

    def __init__(self) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        self.ctx = CaptureQueriesContext(connection)

    def start(self) -> None:
        self.ctx.__enter__()

    def stop(self) -> list[str]:
        self.ctx.__exit__(None, None, None)
        return [q["sql"] for q in self.ctx.captured_queries]


def _kind(sql: str) -> str:
    word = sql.lstrip().split(None, 1)[0].upper()
    known = ("SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")
    return word if word in known else "other"


def _turn(i: int) -> Any:
    from audio.turns import CompletedTurn

    now = time.time()
    return CompletedTurn(
        user_text=USER_LINES[i % len(USER_LINES)],
        partner_text=PARTNER_LINES[i % len(PARTNER_LINES)],
        typed=False,
        interrupted=i % 7 == 3,
        latency_ms=400 + i % 50,
        user_started_at=now - 4.0,
        user_ended_at=now - 1.5,
        partner_started_at=now - 1.1,
        partner_ended_at=now,
    )


COUNTERS = {"bytes_in": 96_000, "bytes_out": 144_000, "turns": 1, "tokens_in": 900, "tokens_out": 1400,
            "tokens_total": 2300, "tokens_in_audio": 850, "tokens_out_audio": 1350, "cost_micro_usd": 4100}


def _scene(user_id: int) -> tuple[str, str]:
    from improv.store import get_store

    store = get_store()
    scene = store.scene_create(user_id=user_id, status="active", game_slug="questions-only", mode="voice")
    store.scene_update(scene.id, suggestion="a penguin mutiny")
    audio = store.audio_session_start(user_id=user_id, scene_id=scene.id, instance="bench")
    return scene.id, audio.id


SAMPLE: dict[str, list[str]] = {}  # the statements of a few turns of the first measured scene
SAMPLED = (2, 5, 15)  # an ordinary turn, one with a coach note, the last


def _sync_scene(user_id: int, scene_id: str, session_id: str, turns: int, first: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i in range(first, first + turns):
        with CaptureQueriesContext(connection) as one:
            _sync_turn(user_id, scene_id, session_id, i)
        name = f"turn {i - first + 1}"
        if i - first + 1 in SAMPLED and name not in SAMPLE:
            SAMPLE[name] = [q["sql"][:160] for q in one.captured_queries]


def _sync_turn(user_id: int, scene_id: str, session_id: str, i: int) -> None:
    from improv.store import get_store
    from improv.voice_turns import voice_turn_record

    voice_turn_record(scene_id=scene_id, user_id=user_id, **_turn(i).record_fields())
    # What audio_session_flush does after each turn.
    get_store().audio_session_update(session_id, resume_handle=f"handle-{i}", **COUNTERS)


class _Sink:
    """Where the relay's room/coach messages go (the consumer's socket, in the app)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def send_json(self, message: Any) -> None:
        self.messages.append(message)

    async def send_bytes(self, data: bytes) -> None:
        pass

    async def close(self, code: int, reason: str | None = None) -> None:
        pass


async def _relay_scene(user_id: int, scene_id: str, session_id: str, turns: int, first: int) -> int:
    from audio.browser import Browser
    from audio.metrics import VoiceObserver
    from audio.persist import TurnWriter

    sink = _Sink()
    handle = {"value": ""}
    writer = TurnWriter(
        scene_id=scene_id,
        user_id=user_id,
        session_id=session_id,
        browser=Browser(sink, session_id=session_id),
        resume_handle=lambda: handle["value"] or None,
        observer=VoiceObserver(record_id=session_id, scene_id=scene_id, resumed=False),
    )
    runner = asyncio.create_task(writer.run())
    for i in range(first, first + turns):
        handle["value"] = f"handle-{i}"
        await writer.put(_turn(i), dict(COUNTERS))
    writer.finish(None)
    await asyncio.wait_for(runner, timeout=600)
    assert writer.pending == 0
    return len(sink.messages)


def _measure(mode: str, user_id: int, scenes: list[tuple[str, str]], per_scene: int) -> dict[str, Any]:
    from improv.store import store_call

    queries = _Queries()
    n = per_scene * len(scenes)
    if mode == "sync":
        commits0, connects0 = TALLY.snapshot()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        queries.start()
        for k, (scene_id, session_id) in enumerate(scenes):
            _sync_scene(user_id, scene_id, session_id, per_scene, k * per_scene)
        sql = queries.stop()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        store_cpu = cpu  # all of it ran on this thread
        commits1, connects1 = TALLY.snapshot()
        messages = 0
    else:

        async def run() -> tuple[float, float, float, list[str], int, int, int]:
            await store_call(queries.start)()  # the thread store_call runs on: where the queries are
            c0, k0 = TALLY.snapshot()
            thread0 = await store_call(time.thread_time)()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            sent = 0
            for k, (scene_id, session_id) in enumerate(scenes):
                sent += await _relay_scene(user_id, scene_id, session_id, per_scene, k * per_scene)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            thread = await store_call(time.thread_time)() - thread0
            c1, k1 = TALLY.snapshot()
            sql = await store_call(queries.stop)()
            return cpu, wall, thread, sql, c1 - c0, k1 - k0, sent

        cpu, wall, store_cpu, sql, commits, connects, messages = asyncio.run(run())
        commits0, connects0, commits1, connects1 = 0, 0, commits, connects
    kinds = Counter(_kind(s) for s in sql)
    return {
        "mode": mode,
        "turns": n,
        "cpu_ms": cpu * 1000 / n,
        "wall_ms": wall * 1000 / n,
        "store_thread_cpu_ms": store_cpu * 1000 / n,
        "queries": len(sql) / n,
        "commits": (commits1 - commits0) / n,
        "connects": (connects1 - connects0) / n,
        "kinds_per_turn": {k: v / n for k, v in kinds.items()},
        "browser_messages": messages,
    }


def _check(scenes: list[tuple[str, str]], per_scene: int) -> None:
    """Every measured scene really played: its turns gap-free, the right count, complete."""
    from improv.store import get_store

    store = get_store()
    for scene_id, session_id in scenes:
        scene = store.scene_get(scene_id)
        turns = store.turns_list(scene_id)
        assert scene.turn_count == per_scene and scene.status == "scene_complete", scene
        assert [t.index for t in turns] == list(range(1, len(turns) + 1))
        assert sum(t.speaker == "user" for t in turns) == per_scene
        assert sum(t.speaker == "partner" for t in turns) == per_scene
        audio = store.audio_session_get(session_id)
        assert audio is not None and audio.turns == per_scene and audio.resume_handle


def _run_child(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    _instrument()
    user = get_user_model().objects.create(username=f"turnbench-{uuid.uuid4().hex[:8]}")
    per_scene = int(settings.IMPROV_SCENE_TURNS)
    rows = []
    for mode in args.modes.split(","):
        warm = [_scene(user.pk)]
        measured = [_scene(user.pk) for _ in range(args.scenes)]
        connection.close()
        _measure(mode, user.pk, warm, per_scene)
        rows.append(_measure(mode, user.pk, measured, per_scene))
        _check(measured, per_scene)
    db = settings.DATABASES["default"]
    print("RESULT " + json.dumps({
        "sample_sql": SAMPLE,
        "vendor": connection.vendor,
        "conn_max_age": db.get("CONN_MAX_AGE"),
        "options": {k: v for k, v in db.get("OPTIONS", {}).items() if k != "password"},
        "rows": rows,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
