"""One Live API (BidiGenerateContent) connection: setup, turn detection, replies, faults.

Transcription of the user's audio is not real ASR: recognising arbitrary speech offline would
cost seconds of CPU per turn (pocketsphinx) and still be wrong, so the emulator reports what it
honestly knows, e.g. "[1.8 s of speech]", and the partner builds on the scene's context instead.
Text turns (realtimeInput.text, clientContent) are understood word for word.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from emulator import live_protocol as lp
from emulator import partner, speaker
from emulator.faults import LiveFaults
from emulator.listener import Action, Interrupt, Listener, Record, UserTurn
from emulator.state import Conversation, Said, ServerState

log = logging.getLogger(__name__)
SETUP_TIMEOUT_S = 30
_MAX_QUEUED_TURNS = 8
_RESUME_GRACE_S = 1.0
_DEADLINE_REASON = "Deadline expired before operation could complete."


class _Closed(Exception):
    """The socket is gone; stop whatever was sending."""


class LiveSession:
    def __init__(self, request: web.Request, state: ServerState, faults: LiveFaults, *, vertex: bool) -> None:
        self._request = request
        self._vertex = vertex
        self._state = state
        self._faults = faults
        opts = state.options
        self.ws = web.WebSocketResponse(max_msg_size=opts.max_frame_bytes, autoping=False, compress=False)
        self._send_lock = asyncio.Lock()
        self._turns: asyncio.Queue[UserTurn] = asyncio.Queue(maxsize=_MAX_QUEUED_TURNS)
        self._reply_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._conv: Conversation | None = None
        self._setup: lp.Setup | None = None
        self._listener: Listener | None = None
        self._number = 0  # this connection's number within its conversation (1, 2, ...)
        self._said: list[Said] = []  # replies begun on this connection
        self._closed_by = ""  # why the emulator closed it ("deadline", "fault", ...), if it did
        self._close_code: int | None = None  # the code the emulator closed with, if it did

    async def run(self) -> web.WebSocketResponse:
        await self.ws.prepare(self._request)
        stats = self._state.stats
        stats.live_connections += 1
        stats.live_active += 1
        try:
            await self._serve()
        except _Closed:
            pass
        finally:
            log.info(
                "live: connection closed after %d turns (code %s)",
                self._conv.turns if self._conv else 0,
                self.ws.close_code,
            )
            stats.live_active -= 1
            tasks = [*self._tasks, *([self._reply_task] if self._reply_task else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._conv is not None:
                self._conv.active = False
                for said in self._said:
                    said.ended = said.ended or "cut"
                self._conv.note(
                    {
                        "event": "closed",
                        "connection": self._number,
                        "code": self._close_code or self.ws.close_code,
                        "by": self._closed_by or "client",
                    }
                )
            if not self.ws.closed:
                try:
                    await self.ws.close()
                except (ConnectionError, RuntimeError):
                    pass  # the transport is already gone (a dropped-connection fault)
        return self.ws

    async def _serve(self) -> None:
        try:
            first = await asyncio.wait_for(self._next_json(), SETUP_TIMEOUT_S)
            if first is None:
                return
            setup = self._setup = lp.parse_setup(first)
        except TimeoutError:
            return await self._close(1008, "No setup message received.")
        except lp.ProtocolError as exc:
            return await self._close(1007, str(exc)[:120])
        await self._maybe_fault("setup")
        conv = await self._conversation(setup)
        if conv is None:
            return
        await self._send({"setupComplete": {}})
        if setup.resumption:
            await self._send_handle()
        await self._maybe_fault("ready")
        self._listener = Listener(setup)
        self._tasks.append(asyncio.create_task(self._lifetime()))
        self._tasks.append(asyncio.create_task(self._run_turns()))
        await self._read_loop()

    async def _conversation(self, setup: lp.Setup) -> Conversation | None:
        store = self._state.conversations
        if setup.resume_handle is None:
            conv = self._state.new_conversation(setup.system_text)
        else:
            found = store.resume(setup.resume_handle)
            if found is None:
                await self._close(1007, "Invalid session resumption handle.")
                return None
            for _ in range(int(_RESUME_GRACE_S / 0.05)):
                if not found.active:
                    break
                await asyncio.sleep(0.05)
            if found.active:
                # The real service refuses to resume a session whose old socket is still open.
                await self._close(1011, "Session is still active on another connection.")
                return None
            conv = found
            conv.system_text = setup.system_text or conv.system_text
            self._state.stats.live_resumed += 1
        conv.active = True
        conv.connections += 1
        self._number = conv.connections
        resumed = setup.resume_handle is not None
        conv.note({"event": "connected", "connection": self._number, "resumed": resumed})
        self._conv = conv
        return conv

    async def _next_json(self) -> Any:
        """The next JSON message, answering pings on the way; None once the socket closed."""
        while True:
            msg = await self.ws.receive()
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                try:
                    return json.loads(msg.data)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise lp.ProtocolError("message is not valid JSON") from exc
            if msg.type == WSMsgType.PING:
                await self._pong(msg.data)
            elif msg.type != WSMsgType.PONG:
                return None

    async def _pong(self, data: bytes) -> None:
        delay = self._faults.pong_delay_ms / 1000
        if not delay:
            await self.ws.pong(data)
            return

        async def late() -> None:
            await asyncio.sleep(delay)
            if not self.ws.closed:
                await self.ws.pong(data)

        self._tasks = [t for t in self._tasks if not t.done()]  # one per ping: keep the list short
        self._tasks.append(asyncio.create_task(late()))

    async def _read_loop(self) -> None:
        while True:
            try:
                raw = await self._next_json()
                if raw is None:
                    return
                messages = lp.parse_message(raw)
            except lp.ProtocolError as exc:
                return await self._close(1007, str(exc)[:120])
            assert self._listener is not None
            for message in messages:
                for action in self._listener.hear(message):
                    self._act(action)

    def _act(self, action: Action) -> None:
        assert self._conv is not None
        if isinstance(action, Interrupt):
            self._interrupt()
        elif isinstance(action, Record):
            self._conv.add(action.role, action.text)
        else:
            self._queue(action)

    def _queue(self, turn: UserTurn) -> None:
        try:
            self._turns.put_nowait(turn)
        except asyncio.QueueFull:
            log.warning("live: dropping a user turn, %d already queued", _MAX_QUEUED_TURNS)

    def _interrupt(self) -> None:
        task = self._reply_task
        if task is not None and not task.done() and self._setup is not None and self._setup.interrupts:
            task.cancel()

    async def _run_turns(self) -> None:
        try:
            while True:
                turn = await self._turns.get()
                spoken = speaker.Spoken(words=[])
                self._reply_task = task = asyncio.create_task(self._reply(turn, spoken))
                await asyncio.wait({task})
                if task.cancelled():
                    await self._finish_interrupted(turn, spoken)
                elif (error := task.exception()) is not None:
                    raise error
        except _Closed:
            pass
        except Exception:
            # A bug in the emulator: fail the way the real service does, loudly in our log.
            log.exception("live: reply failed")
            await self._close(1011, "Internal error encountered.")

    async def _reply(self, turn: UserTurn, spoken: speaker.Spoken) -> None:
        assert self._setup is not None and self._conv is not None
        setup, conv, opts = self._setup, self._conv, self._state.options
        transcript = turn.text or f"[{turn.heard_s:.1f} s of speech]"
        if turn.from_audio and setup.input_transcription:
            await self._send({"serverContent": {"inputTranscription": {"text": transcript}}})
        source = "audio" if turn.from_audio else "client_content" if turn.recorded else "text"
        conv.note(
            {
                "event": "heard",
                "connection": self._number,
                "text": transcript,
                "source": source,
                "heard_s": round(turn.heard_s, 3),
            }
        )
        await self._maybe_fault("turn")
        if self._faults.latency_ms:
            await asyncio.sleep(self._faults.latency_ms / 1000)
        context = conv.context()
        if not turn.recorded:
            conv.add("user", transcript)
        conv.turns += 1
        line = partner.partner_line(turn.text, context=context, salt=self._state.salt(conv.turns, turn.text))
        said = Said(connection=self._number, spoken=spoken)
        self._said.append(said)
        conv.note(said)
        await speaker.speak(
            send=self._send,
            line=line,
            pcm_for=lambda text, pitch: self._state.speech.speak(text, pitch=pitch),
            voice=setup.voice,
            audio="AUDIO" in setup.modalities,
            transcribe=setup.output_transcription,
            chunk_ms=opts.chunk_ms,
            realtime_factor=opts.realtime_factor,
            spoken=spoken,
            after_first_chunk=lambda: self._maybe_fault("reply"),
        )
        await self._send({"serverContent": {"generationComplete": True}})
        said.ended = "complete"
        conv.add("model", line)
        await self._end_turn(conv.prompt_text(), turn.heard_s, spoken, said)

    async def _finish_interrupted(self, turn: UserTurn, spoken: speaker.Spoken) -> None:
        assert self._conv is not None
        self._state.stats.live_interrupted += 1
        said = next((s for s in reversed(self._said) if s.spoken is spoken), None)
        if said is not None and said.ended != "complete":  # None: cut in before it began speaking
            said.ended = "interrupted"
        await self._send({"serverContent": {"interrupted": True}})
        # The model only "said" what the user heard before cutting in.
        self._conv.add("model", spoken.text)
        await self._end_turn(self._conv.prompt_text(), turn.heard_s, spoken, said)

    async def _end_turn(self, prompt: str, heard_s: float, spoken: speaker.Spoken, said: Said | None) -> None:
        self._state.stats.live_turns += 1
        usage = speaker.usage(prompt_text=prompt, heard_seconds=heard_s, spoken=spoken, vertex=self._vertex)
        await self._send({"serverContent": {"turnComplete": True}, "usageMetadata": usage})
        if said is not None:
            said.total_tokens = (said.total_tokens or 0) + usage["totalTokenCount"]
        if self._setup is not None and self._setup.resumption:
            await self._send_handle()

    async def _send_handle(self) -> None:
        assert self._conv is not None
        handle = self._state.conversations.new_handle(self._conv)
        await self._send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})

    async def _lifetime(self) -> None:
        opts = self._state.options
        lifetime = self._faults.lifetime_s or opts.live_lifetime_s
        lead = min(60.0, lifetime / 2) if opts.go_away_lead_s is None else min(opts.go_away_lead_s, lifetime)
        await asyncio.sleep(lifetime - lead)
        await self._send({"goAway": {"timeLeft": f"{lead:.3f}s"}})
        if self._conv is not None:
            self._conv.note({"event": "go_away", "connection": self._number, "time_left_s": round(lead, 3)})
        await asyncio.sleep(lead)
        self._closed_by = self._closed_by or "deadline"
        await self._close(1011, _DEADLINE_REASON)

    async def _maybe_fault(self, when: str) -> None:
        close, drop = self._faults.close, self._faults.drop_when
        if close is not None and close[2] == when:
            self._state.stats.faults_fired += 1
            self._fault_fired("live_close", when, close[0])
            await self._close(close[0], close[1])
            raise _Closed
        if drop == when:
            self._state.stats.faults_fired += 1
            self._fault_fired("live_drop", when, None)
            transport = self._request.transport
            if transport is not None:
                transport.abort()  # no close frame, no TLS close_notify: a dead network
            raise _Closed

    def _fault_fired(self, kind: str, when: str, code: int | None) -> None:
        self._closed_by = self._closed_by or "fault"
        if self._conv is not None:
            self._conv.note(
                {"event": "fault", "connection": self._number, "kind": kind, "when": when, "code": code}
            )

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            if self.ws.closed:
                raise _Closed
            try:
                await self.ws.send_str(json.dumps(message, separators=(",", ":")))
            except (ConnectionError, RuntimeError) as exc:
                raise _Closed from exc

    async def _close(self, code: int, reason: str) -> None:
        self._closed_by = self._closed_by or "emulator"
        async with self._send_lock:
            if not self.ws.closed:
                self._close_code = code
                await self.ws.close(code=code, message=reason.encode()[:123])
