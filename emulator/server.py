"""The emulator's HTTPS/WSS server: TLS from a local CA, routing, in-process start and stop."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import trustme
from aiohttp import web

from emulator import rest
from emulator.live import LiveSession
from emulator.state import Options, ServerState

_LIVE_PATHS = re.compile(
    r"^/ws/(?:google\.cloud\.aiplatform\.(?:v1|v1beta1)\.LlmBidiService/BidiGenerateContent"
    r"|google\.ai\.generativelanguage\.(?:v1|v1beta|v1alpha)\.GenerativeService\."
    r"BidiGenerateContent(?:Constrained)?)$"
)
_REST_PATHS = re.compile(
    r"^/(?:v1|v1beta|v1beta1|v1alpha)/(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/google/)?"
    r"models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"
)
_CONTROL = re.compile(r"^/emulator/(?P<what>faults|stats|conversations)$")
_SLASHES = re.compile(r"/{2,}")


def load_or_create_ca(state_dir: Path) -> tuple[trustme.CA, Path]:
    """Reuses the CA kept in `state_dir`, so clients holding its PEM survive an emulator restart."""
    state_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = state_dir / "ca.pem", state_dir / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        ca = trustme.CA.from_pem(cert_path.read_bytes(), key_path.read_bytes())
    else:
        ca = trustme.CA(organization_name="ai4joy Gemini emulator (test only)")
        key_path.touch(mode=0o600)
        ca.private_key_pem.write_to_path(str(key_path))
        ca.cert_pem.write_to_path(str(cert_path))
    return ca, cert_path.resolve()


def _server_ssl(ca: trustme.CA, host: str) -> ssl.SSLContext:
    names = dict.fromkeys([host, "127.0.0.1", "localhost", "::1"])
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(ctx)
    return ctx


def build_app(state: ServerState) -> web.Application:
    async def dispatch(request: web.Request) -> web.StreamResponse:
        # The SDK's default base URLs end in "/", so real paths arrive as "//ws/...".
        path = _SLASHES.sub("/", request.path)
        if _LIVE_PATHS.match(path):
            if request.headers.get("upgrade", "").lower() != "websocket":
                return rest.google_error(400, "This endpoint only accepts WebSocket connections.")
            if not rest.has_auth(request):
                return rest.google_error(401, "Request is missing required authentication credential.")
            vertex = "aiplatform" in path
            return await LiveSession(request, state, state.faults.take_live(), vertex=vertex).run()
        match = _REST_PATHS.match(path)
        if match:
            return await rest.generate_content(
                request, state, match["model"], stream=match["method"] == "streamGenerateContent"
            )
        control = _CONTROL.match(path)
        if control:
            return await rest.control(request, state, control["what"])
        return rest.google_error(404, f"The requested URL {path} was not found on this server.")

    # client_max_size is a backstop; generateContent enforces its own, smaller, limit.
    app = web.Application(client_max_size=state.options.max_body_bytes + 1)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


class EmulatorServer:
    """Runs the emulator inside the current event loop (for tests).

    server = EmulatorServer(state_dir=tmp_path)
    await server.start()   # server.url, server.ca_file
    ...
    await server.stop()
    """

    def __init__(
        self, *, state_dir: Path | str, host: str = "127.0.0.1", port: int = 0, options: Options | None = None
    ) -> None:
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self.state = ServerState(options or Options())
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.ca_file = Path()

    async def start(self) -> None:
        ca, self.ca_file = load_or_create_ca(self.state_dir)
        # No access log: a line per request would dominate a load test's CPU profile.
        self._runner = web.AppRunner(
            build_app(self.state), handle_signals=False, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=_server_ssl(ca, self.host))
        await site.start()
        bound_port = self._runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"https://{host}:{bound_port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
