"""A local stand-in for the Gemini API: a TEST DOUBLE for a paid cloud service.

It speaks the real wire protocol of generateContent (REST) and the Live API
(BidiGenerateContent WebSocket) on both the Vertex AI and the Developer-API paths, over TLS from
a throwaway local CA, so the unmodified google-genai SDK can talk to it. Replies are
deterministic improv lines built from the user's words; voice replies are espeak-ng speech.
Faults (errors, latency, close codes, dropped connections, slow pongs, short lifetimes) are
armed through `/emulator/faults`.

Production code never imports or branches on this package; only tests and the dev runner do.

    python -m emulator --state-dir var/emulator --ready-file var/emulator/ready.json
    server = EmulatorServer(state_dir=tmp_path); await server.start()
    handle = emulator.process.start_emulator(tmp_path)
"""

from emulator.server import EmulatorServer
from emulator.state import Options

__all__ = ["EmulatorServer", "Options"]
