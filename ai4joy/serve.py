"""The Daphne entry point every deployment and `make run` use: `python -m ai4joy.serve`.

Reads HOST (default 127.0.0.1; the container sets 0.0.0.0) and PORT (default 8000; the
container sets 8080), trusts X-Forwarded-* (Cloud Run's front end), and serves
`ai4joy.asgi:application` with websocket limits that leave policy to the app. Extra Daphne
options may follow (`python -m ai4joy.serve -v 1`), and so may another `module:app`. With
REDIS_URL set it runs one such process per vCPU on the same port and supervises them
(ai4joy/supervise.py; SERVE_PROCESSES overrides the count); each one drains as below.

Why not plain `daphne`: on SIGTERM stock Daphne cancels every consumer and drops every
WebSocket without a close frame, so `disconnect()` never runs and a voice scene ends in
silence (notes/daphne-shutdown.md). Cloud Run sends SIGTERM and kills the instance 10 s
later. Here SIGTERM (or Ctrl-C) instead:

1. stops listening, so new connections are refused (and handshakes still in flight are
   answered 503), and the load balancer moves on to another instance;
2. sends the drain event to this process's group (`audio.drain`), so every live voice socket
   says `reconnect`, saves its state and closes with 4012 (audio/protocol.py CloseCode);
3. waits for all application instances, at most DRAIN_TIMEOUT seconds (default 8); near
   the end it closes any socket still open with 4012 itself (also at once if the event could
   not be sent), so no browser is left with a bare TCP drop;
4. cancels what is left and exits 0. Further SIGTERMs are ignored; a second Ctrl-C skips
   the rest of the wait.

This leans on Daphne internals (`Server.kill_all_applications`, `connections`,
`listen_success`, `ws_factory`), so daphne and autobahn are pinned and
ai4joy/tests/test_serve.py drives a real process through all of it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
import time
from typing import Any

# Importing daphne (cli imports server) installs Twisted's asyncio reactor; nothing may
# import twisted.internet.reactor before it, which the sorted order below keeps true.
from autobahn.util import encode_truncate
from autobahn.websocket.types import ConnectionDeny
from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import defer, reactor

from audio.protocol import MAX_FRAME_BYTES

log = logging.getLogger("ai4joy.serve")

DEFAULT_APP = "ai4joy.asgi:application"
# Incoming message/frame cap, tied to the consumer's own limit (audio/protocol.py
# MAX_FRAME_BYTES, 64 KiB; ~87 KiB as base64 JSON). Up to this size a frame reaches the
# consumer, which refuses it with an `error` and 4013; past it autobahn refuses it itself
# with a 1009 close frame (failByDrop off, below) and the consumer records `too_big`.
MAX_MESSAGE_BYTES = MAX_FRAME_BYTES * 4
# The app closes a voice socket at WEBSOCKET_TIMEOUT with a warning first; Daphne's own cap
# (a bare 1000) must never fire before it.
WEBSOCKET_TIMEOUT_MARGIN_S = 60
CLOUD_RUN_GRACE_S = 10
# Time the cancelled leftovers get to run their `finally` blocks, inside DRAIN_TIMEOUT.
CANCEL_GRACE_S = 0.5
_APP_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
# Close codes a server may put on the wire (RFC 6455 §7.4; 1004-1006 and 1015 are reserved).
_SENDABLE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)})


class ClosingWebSocketProtocol(WebSocketProtocol):
    """Daphne's protocol, plus: the app's close *reason* reaches the browser (stock Daphne drops
    it, django/daphne#374), a handshake that completes during a drain is refused with 503
    (the browser retries elsewhere), and sends after the close frame are dropped instead of
    raising `Disconnected` into whichever consumer task made them."""

    refused = False

    def handle_reply(self, message: dict[str, Any]) -> None:
        if self.refused:
            return
        if message.get("type") == "websocket.close" and self.state != self.STATE_CONNECTING:
            self.serverClose(code=message.get("code"), reason=message.get("reason"))
            return
        super().handle_reply(message)

    def serverAccept(self, subprotocol: str | None = None) -> None:
        if getattr(self.server, "draining", False):
            self.refused = True
            self.handshake_deferred.errback(ConnectionDeny(503, "Server restarting"))
            del self.handshake_deferred
            self.server.protocol_disconnected(self)
            return
        super().serverAccept(subprotocol)

    def serverSend(self, content: bytes | str, binary: bool = False) -> None:
        if self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            return  # nobody can read it any more
        super().serverSend(content, binary)

    def serverClose(self, code: int | None = None, reason: str | None = None) -> None:
        code = 1000 if code is None else int(code)
        if code not in _SENDABLE_CODES:
            raise ValueError(f"WebSocket close code {code} cannot be sent by a server")
        payload = encode_truncate(reason, 123) if isinstance(reason, str) and reason else None
        # sendCloseFrame, unlike sendClose, also allows 1001/1011/1012 (Daphne uses it for 1011).
        self.sendCloseFrame(code=code, reasonUtf8=payload, isReply=False)


class DrainingServer(Server):
    """Daphne's Server with a drain in place of `kill_all_applications` (module docstring)."""

    def __init__(self, *args: Any, drain_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if drain_timeout is None:
            from django.conf import settings

            drain_timeout = float(settings.DRAIN_TIMEOUT)
        if drain_timeout <= 0:
            raise ValueError("DRAIN_TIMEOUT must be a positive number of seconds")
        if drain_timeout > CLOUD_RUN_GRACE_S - 1:
            log.warning("DRAIN_TIMEOUT=%ss leaves no room inside Cloud Run's %ss between SIGTERM and SIGKILL",
                        drain_timeout, CLOUD_RUN_GRACE_S)
        self.drain_timeout = drain_timeout
        self.draining = False
        self._cut_short = False
        self._ports: list[Any] = []

    def run(self) -> None:
        # The WebSocket factory is made inside run(); swap its protocol before the reactor
        # accepts the first connection.
        reactor.callWhenRunning(self._use_closing_protocol)
        super().run()

    def _use_closing_protocol(self) -> None:
        self.ws_factory.protocol = ClosingWebSocketProtocol
        # autobahn's default answers a protocol violation (a frame over the size cap, say) by
        # dropping TCP, which a browser sees as 1006 with no reason; send the close frame instead.
        self.ws_factory.setProtocolOptions(failByDrop=False)

    def listen_success(self, port: Any) -> None:
        self._ports.append(port)
        super().listen_success(port)
        # Which process serves is in the log: with several on one port, a test (or a person
        # reading the log) can tell when each of them accepts connections.
        log.info("server listening", extra={"event": "server_listening", "pid": os.getpid()})

    # Registered by Server.run as the reactor's "before shutdown" trigger; the reactor
    # waits for the Deferred before it drops the remaining connections and stops.
    def kill_all_applications(self) -> defer.Deferred:
        self.draining = True
        signal.signal(signal.SIGTERM, self._signal_while_draining)
        signal.signal(signal.SIGINT, self._signal_while_draining)
        deferred = defer.Deferred.fromFuture(asyncio.ensure_future(self.drain()))
        deferred.addErrback(lambda failure: log.error("drain failed: %s", failure.getErrorMessage()))
        # From here until the process is gone a late SIGTERM must not kill it with -15: a
        # Python-level handler is reset to the default during interpreter shutdown, SIG_IGN is not.
        deferred.addBoth(_ignore_sigterm)
        return deferred

    def _signal_while_draining(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT:
            self._cut_short = True
            log.warning("second interrupt: cutting the drain short")
        else:
            log.info("already draining; SIGTERM ignored", extra={"event": "server_drain_signal_ignored"})

    def running_instances(self) -> list[asyncio.Future]:
        return [
            instance
            for details in list(self.connections.values())
            if (instance := details.get("application_instance")) is not None and not instance.done()
        ]

    async def drain(self) -> None:
        from audio.drain import drain_broadcast

        started = time.monotonic()
        # The last stretch of DRAIN_TIMEOUT: close what is still open ourselves, then cancel.
        grace = min(CANCEL_GRACE_S, self.drain_timeout / 4)
        close_at = started + self.drain_timeout - 2 * grace
        for port in self._ports:
            port.stopListening()
        seen = set(self.running_instances())
        log.info(
            "server draining",
            extra={"event": "server_drain_started", "instances": len(seen), "timeout_s": self.drain_timeout},
        )
        closed = 0
        try:
            await asyncio.wait_for(drain_broadcast(), timeout=max(0.1, close_at - time.monotonic()))
        except Exception:
            # The channel layer is down or slow, so the consumers cannot be told. A restart close
            # from here still sends browsers elsewhere, and each consumer's disconnect() runs.
            log.exception("could not send the drain event", extra={"event": "server_drain_broadcast_failed"})
            closed += self.close_open_websockets()
        await self._wait_for_instances(seen, until=close_at)
        # Sockets whose consumer never acted on the event (it missed it, or is stuck): closing
        # them here beats the bare TCP drop (1006) that cancelling would leave the browser with.
        closed += self.close_open_websockets()
        await self._wait_for_instances(seen, until=close_at + grace)
        left = self.running_instances()
        for instance in left:
            instance.cancel()
        if left:
            await asyncio.wait(left, timeout=grace)
        log.info(
            "server drained",
            extra={
                "event": "server_drain_finished",
                "instances": len(seen),
                "closed_by_server": closed,
                "cancelled": len(left),
                "duration_s": round(time.monotonic() - started, 3),
            },
        )

    async def _wait_for_instances(self, seen: set[asyncio.Future], *, until: float) -> None:
        while not self._cut_short:
            pending = self.running_instances()
            seen.update(pending)
            remaining = until - time.monotonic()
            if not pending or remaining <= 0:
                return
            # Short slices: instances created meanwhile (keep-alive HTTP) are picked up too.
            await asyncio.wait(pending, timeout=min(remaining, 0.1), return_when=asyncio.FIRST_COMPLETED)

    def close_open_websockets(self) -> int:
        """Close every open WebSocket with the restart code; returns how many."""
        from audio.protocol import CloseCode

        count = 0
        for protocol in list(self.connections):
            if isinstance(protocol, WebSocketProtocol) and protocol.state == protocol.STATE_OPEN:
                protocol.serverClose(code=int(CloseCode.SERVER_RESTART), reason="server restarting")
                count += 1
        return count


def _ignore_sigterm(_: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class ServeCommandLineInterface(CommandLineInterface):
    description = "ai4joy: Daphne with a graceful drain on SIGTERM"
    server_class = DrainingServer

    def __init__(self) -> None:
        super().__init__()
        self.parser.prog = "python -m ai4joy.serve"


# Options with which the caller picks the listening socket (a child gets `--fd` from the parent).
_BINDING_OPTIONS = frozenset(
    {"--fd", "-u", "--unix-socket", "-e", "--endpoint", "-b", "--bind", "-p", "--port"}
)


def binds_itself(argv: list[str]) -> bool:
    return any(arg.split("=", 1)[0] in _BINDING_OPTIONS for arg in argv)


def daphne_args(argv: list[str], environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """Our defaults, then the caller's options (argparse keeps the last value), then the app."""
    from django.conf import settings

    # Daphne listens on every binding it is given: with --fd (a child of the supervisor) only there.
    binding = [] if "--fd" in argv else [
        "--bind", environ.get("HOST", "127.0.0.1"),
        "--port", environ.get("PORT", "8000"),
    ]
    args = [
        *binding,
        "--proxy-headers",
        "--websocket_timeout", str(settings.WEBSOCKET_TIMEOUT + WEBSOCKET_TIMEOUT_MARGIN_S),
        "--websocket_connect_timeout", "10",
        "--ping-interval", "20",
        "--ping-timeout", "30",
        "--websocket-max-message-size", str(MAX_MESSAGE_BYTES),
        "--websocket-max-frame-size", str(MAX_MESSAGE_BYTES),
        "--application-close-timeout", "10",
        # Cloud Run logs every request itself; -v 1 brings Daphne's access log back.
        "--verbosity", "1" if settings.DEBUG else "0",
    ]
    args += argv
    if not any(_APP_PATH.match(arg) for arg in argv):
        args.append(DEFAULT_APP)
    return args


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ai4joy.settings")
    from django.conf import settings
    from django.utils.log import configure_logging

    from ai4joy.supervise import ConfigError, Supervisor, process_count

    cli = ServeCommandLineInterface()
    if not settings.DRAIN_TIMEOUT > 0:
        cli.parser.error(f"DRAIN_TIMEOUT must be a positive number of seconds, not {settings.DRAIN_TIMEOUT}")
    argv = sys.argv[1:] if argv is None else argv
    try:
        backend = str(settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", ""))
        count, why = process_count(os.environ, backend)
    except ConfigError as exc:
        cli.parser.error(str(exc))
    host = os.environ.get("HOST", "127.0.0.1")
    if count > 1 and (binds_itself(argv) or ":" in host):
        count, why = 1, "one process: the caller chose the socket (or an IPv6 HOST), which cannot be shared"
    if count > 1 or "SERVE_PROCESS_INDEX" not in os.environ:
        configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)
        level = logging.WARNING if why.startswith("one process") else logging.INFO
        log.log(level, "server processes: %s", why, extra={"event": "serve_processes", "processes": count})
    if count > 1:
        supervisor = Supervisor(count=count, host=host, port=int(os.environ.get("PORT", "8000")), argv=argv,
                                grace_s=CLOUD_RUN_GRACE_S - 0.5)
        code = supervisor.run()
        logging.shutdown()
        sys.exit(code)
    from ai4joy import telemetry

    telemetry.configure()  # per serving process (the supervisor parent serves nothing)
    cli.run(daphne_args(argv, os.environ))
    telemetry.shutdown()  # the last metrics interval and pending spans, before the fast exit
    # The reactor has stopped after the drain: everything worth keeping is saved. Tearing
    # down the interpreter (GC of the SDKs' many objects) was measured at 1.5-2.5 s, which
    # would push the exit past Cloud Run's 10 s; skip it.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
