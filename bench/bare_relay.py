"""`python -m bench.bare_relay`: the floor the app is measured against.

A minimal relay of the same traffic with nothing else: a websockets server for the load
generator, a websockets client per session to the Gemini emulator's Live endpoint. Browser PCM
(binary) goes upstream as the Live API's base64 JSON in 100 ms batches; partner audio comes back
as binary; `interrupted` and `turn_complete` are passed on so the load generator runs the same
script against both. No Django, Channels, SDK, database, auth, logging or keepalive.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import ssl
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

LIVE_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
BATCH_BYTES = 16_000 * 2 // 10  # 100 ms of 16 kHz PCM16
SETUP = json.dumps({
    "setup": {
        "model": "models/gemini-live-bench",
        "generationConfig": {"responseModalities": ["AUDIO"]},
        "systemInstruction": {"parts": [{"text": "You are an improv partner."}]},
        "inputAudioTranscription": {},
        "outputAudioTranscription": {},
    }
})
AUDIO_HEAD = '{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=16000","data":"'
AUDIO_TAIL = '"}}}'
READY = json.dumps({"type": "ready"})
INTERRUPTED = json.dumps({"type": "interrupted"})
TURN_COMPLETE = json.dumps({"type": "turn_complete"})


def relay_handler(upstream_url: str, tls: ssl.SSLContext):
    async def handle(browser: ServerConnection) -> None:
        async with connect(upstream_url, ssl=tls, max_size=None, compression=None) as live:
            await live.send(SETUP)
            await live.recv()  # setupComplete
            await browser.send(READY)

            async def up() -> None:
                buf = bytearray()
                async for frame in browser:
                    if isinstance(frame, str):
                        if '"end"' in frame:
                            return  # the session is over: close both sockets (1000)
                        continue
                    if isinstance(frame, bytes):
                        buf += frame
                        if len(buf) >= BATCH_BYTES:
                            data = base64.b64encode(buf).decode("ascii")
                            buf.clear()
                            await live.send(AUDIO_HEAD + data + AUDIO_TAIL)

            async def down() -> None:
                async for raw in live:
                    content = json.loads(raw).get("serverContent")
                    if not content:
                        continue
                    parts = content.get("modelTurn", {}).get("parts")
                    if parts and "inlineData" in parts[0]:
                        await browser.send(base64.b64decode(parts[0]["inlineData"]["data"]))
                    if content.get("interrupted"):
                        await browser.send(INTERRUPTED)
                    if content.get("turnComplete"):
                        await browser.send(TURN_COMPLETE)

            tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()

    return handle


async def main_async(args: argparse.Namespace) -> None:
    tls = ssl.create_default_context(cafile=args.ca_file)
    url = args.emulator_url.replace("https://", "wss://") + LIVE_PATH + "?key=bench"
    async with serve(relay_handler(url, tls), "127.0.0.1", args.port, compression=None):
        if args.ready_file:
            args.ready_file.write_text("ready")
        await asyncio.Future()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_relay", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--emulator-url", required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args()
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
