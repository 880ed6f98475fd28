"""`python -m bench.loadgen`: one load-generator process playing many browsers at once.

Each client speaks the documented voice protocol (audio/protocol.py): it waits for `ready`,
then streams 16 kHz PCM16 in real-time 40 ms frames for the whole run, espeak speech for a
user turn and silence between turns (the emulator's voice detection finds the turns), answers
every `ping` with a `pong`, and on a share of turns barges in: it starts speaking again half a
second into the partner's reply, which must come back as `interrupted`.

Per turn it records the first-audio latency (the last speech frame sent -> the first partner
audio byte received) and, for every audio chunk, the relay-added latency (the emulator's send
stamp, bench/stamp.py, -> receipt here). It counts late chunks (relay-added > LATE_MS), chunks
lost on the way (gaps in the stamp's sequence), the input the server says it dropped (`usage`
dropped_audio_ms), its own late ticks (to show the load generator kept up), errors and close
codes. All clients of the process share one 40 ms ticker: one timer, not one per client.

Writes one JSON report to --out; bench/run.py merges the reports of all processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench import stamp

FRAME_S = 0.04
FRAME_BYTES = 16_000 * 2 * 40 // 1000  # 1280
SILENCE = bytes(FRAME_BYTES)
LATE_MS = 100.0  # a chunk later than this would underrun a browser's playback buffer
LAG_MS = 20.0  # a tick this late means the load generator itself is behind
BARGE_AFTER_S = 0.5
PAUSE_S = 0.6
REPLY_TIMEOUT_S = 15.0
LINE = "Welcome to the bakery on the moon."


def speech_frames(text: str = LINE) -> list[bytes]:
    """The user's line as 40 ms frames of 16 kHz PCM16 (espeak through the emulator's TTS)."""
    from emulator.tts import synthesize  # the test double's TTS, used here as a test tool

    pcm = synthesize(text, rate=16_000)
    pcm += bytes(-len(pcm) % FRAME_BYTES)
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


class Stats:
    def __init__(self) -> None:
        self.first_audio_ms: list[float] = []
        self.added_ms: list[float] = []
        self.counts: Counter[str] = Counter()
        self.close_codes: Counter[str] = Counter()
        self.errors: list[str] = []

    def error(self, text: str) -> None:
        self.counts["errors"] += 1
        if len(self.errors) < 20:
            self.errors.append(text)


class Client:
    def __init__(
        self, index: int, speech: list[bytes], stats: Stats, barge_share: float, first_turn_at: float
    ) -> None:
        self.index = index
        self.speech = speech
        self.stats = stats
        self.barge_every = round(1 / barge_share) if barge_share > 0 else 0
        self.ws: ClientConnection | None = None
        self.phase = "pause"
        self.next_at = first_turn_at
        self.frame = 0
        self.turn = 0
        self.speech_end_at: float | None = None
        self.first_audio_at: float | None = None
        self.last_seq = -1
        self.dropped_in_ms = 0

    def _barge(self) -> bool:
        return bool(self.barge_every) and (self.index + self.turn) % self.barge_every == 0

    def next_frame(self, now: float) -> bytes:
        if self.phase == "speak":
            frame = self.speech[self.frame]
            self.frame += 1
            if self.frame == len(self.speech):
                self.phase, self.speech_end_at, self.first_audio_at = "wait", time.monotonic(), None
            return frame
        if self.phase == "wait":
            if self.first_audio_at is None and now - (self.speech_end_at or now) > REPLY_TIMEOUT_S:
                self.stats.error(f"client {self.index}: no reply within {REPLY_TIMEOUT_S:.0f} s")
                self._speak()
            elif self._barge() and now - (self.first_audio_at or now) >= BARGE_AFTER_S:
                self.stats.counts["barge_ins"] += 1
                self._speak()
        elif self.phase == "pause" and now >= self.next_at:
            self._speak()
        return SILENCE

    def _speak(self) -> None:
        self.phase, self.frame = "speak", 0
        self.turn += 1
        self.stats.counts["turns_started"] += 1

    def on_audio(self, data: bytes, now: float) -> None:
        if self.phase == "wait" and self.first_audio_at is None:
            self.first_audio_at = now
            self.stats.first_audio_ms.append((now - (self.speech_end_at or now)) * 1000)
        stamped = stamp.decode(data)
        if stamped is None:
            self.stats.counts["unstamped_chunks"] += 1
            return
        seq, sent_at = stamped
        added = (now - sent_at) * 1000
        self.stats.added_ms.append(added)
        if added > LATE_MS:
            self.stats.counts["late_chunks"] += 1
        if seq > self.last_seq + 1 and self.last_seq >= 0:
            self.stats.counts["lost_chunks"] += seq - self.last_seq - 1
        self.last_seq = seq  # a lower number: a new upstream connection starts again at 0

    async def on_text(self, raw: str, now: float) -> None:
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "ping":
            assert self.ws is not None
            await self.ws.send(json.dumps({"type": "pong", "t": message.get("t")}))
            self.stats.counts["pongs"] += 1
        elif kind == "interrupted":
            self.stats.counts["interrupted"] += 1
        elif kind == "turn_complete" and self.phase == "wait" and self.first_audio_at is not None:
            self.stats.counts["turns_answered"] += 1
            self.phase, self.next_at = "pause", now + PAUSE_S
        elif kind == "usage":
            self.dropped_in_ms = max(self.dropped_in_ms, int(message.get("dropped_audio_ms", 0)))
        elif kind in ("error", "reconnect"):
            self.stats.error(f"client {self.index}: {message}")

    async def receive(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                now = time.monotonic()
                if isinstance(frame, bytes):
                    self.on_audio(frame, now)
                else:
                    await self.on_text(frame, now)
        except ConnectionClosed:
            pass


async def run(args: argparse.Namespace, seeds: list[dict[str, str]], speech: list[bytes]) -> dict[str, Any]:
    stats = Stats()
    start_mono = time.monotonic() + (args.start_at - time.time())
    end_mono = start_mono + args.duration
    rng = random.Random(args.first)
    clients = [
        Client(args.first + i, speech, stats, args.barge_share, start_mono + rng.uniform(0, 2.0))
        for i in range(len(seeds))
    ]
    gate = asyncio.Semaphore(16)  # handshakes in flight per process: a ramp, not a stampede

    async def open_one(client: Client, seed: dict[str, str]) -> asyncio.Task[None] | None:
        path = f"/ws/audio/{seed['scene']}/" if args.mode == "app" else "/"
        async with gate:
            try:
                ws = await connect(
                    args.url + path,
                    origin=args.origin,
                    additional_headers={"Cookie": f"sessionid={seed['cookie']}"},
                    open_timeout=30,
                    compression=None,
                    max_size=None,
                )
                first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            except Exception as exc:
                stats.error(f"client {client.index}: connect failed: {exc!r}")
                return None
        if first.get("type") != "ready":
            stats.error(f"client {client.index}: first message {first}")
            await ws.close()
            return None
        client.ws = ws
        stats.counts["connected"] += 1
        return asyncio.create_task(client.receive())

    opened = await asyncio.gather(*(open_one(c, s) for c, s in zip(clients, seeds, strict=True)))
    receivers = [task for task in opened if task is not None]
    live = [c for c in clients if c.ws is not None]
    # Every client streams (silence until its first turn) from the moment it is ready; the
    # measured window starts at start_at, by which time all should be connected.
    tick, lag_ticks, ticks = time.monotonic(), 0, 0
    while tick < end_mono and live:
        now = time.monotonic()
        if (now - tick) * 1000 > LAG_MS:
            lag_ticks += 1
        ticks += 1
        for client in live:
            try:
                await client.ws.send(client.next_frame(now))  # type: ignore[union-attr]
            except ConnectionClosed:
                pass
        live = [c for c in live if c.ws is not None and c.ws.close_code is None]
        tick += FRAME_S
        await asyncio.sleep(max(0.0, tick - time.monotonic()))
    for client in clients:
        if client.ws is None:
            continue
        stats.counts["server_dropped_input_ms"] += client.dropped_in_ms
        if client.ws.close_code is None:
            try:
                await client.ws.send(json.dumps({"type": "end"}))
                await asyncio.wait_for(client.ws.wait_closed(), 10)
            except (TimeoutError, ConnectionClosed):
                pass
            if client.ws.close_code is None:
                await client.ws.close()
            if client.ws.close_code != 1000:
                stats.error(f"client {client.index}: `end` was answered with close {client.ws.close_code}")
        else:
            stats.error(f"client {client.index}: closed early with {client.ws.close_code}")
        stats.close_codes[str(client.ws.close_code)] += 1
    for task in receivers:
        task.cancel()
    await asyncio.gather(*receivers, return_exceptions=True)
    return {
        "clients": len(seeds),
        "first_audio_ms": stats.first_audio_ms,
        "added_ms": stats.added_ms,
        "counts": dict(stats.counts),
        "client_lag_ticks": lag_ticks,
        "ticks": ticks,
        "close_codes": dict(stats.close_codes),
        "errors": stats.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("app", "bare"), required=True)
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT")
    parser.add_argument("--origin", required=True)
    parser.add_argument("--seeds", required=True, help="JSON list of {cookie, scene}")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--start-at", type=float, required=True, help="time.time() when turns may start")
    parser.add_argument("--duration", type=float, required=True, help="seconds from start-at")
    parser.add_argument("--barge-share", type=float, default=0.2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    seeds = json.loads(Path(args.seeds).read_text())[args.first : args.first + args.count]
    report = asyncio.run(run(args, seeds, speech_frames()))
    args.out.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
