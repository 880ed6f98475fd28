"""`python -m emulator` as a subprocess: ready file, clean stop, CA reuse on restart."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

from google import genai
from google.genai import types

from emulator.process import start_emulator


def _client(url: str, ca_file: str) -> genai.Client:
    ctx = ssl.create_default_context(cafile=ca_file)
    options = types.HttpOptions(base_url=url, client_args={"verify": ctx})
    return genai.Client(api_key="k", http_options=options)


def test_subprocess_writes_ready_file_and_serves(tmp_path: Path) -> None:
    handle = start_emulator(tmp_path / "emu", seed=3, live_lifetime=30)
    try:
        ready = json.loads((tmp_path / "emu" / "ready.json").read_text())
        assert ready == {"url": handle.url, "ca_file": handle.ca_file, "pid": handle.pid}
        assert ready["url"].startswith("https://127.0.0.1:")
        assert Path(ready["ca_file"]).is_absolute() and Path(ready["ca_file"]).exists()
        # Keep the client referenced: a collected genai.Client closes its HTTP client.
        client = _client(handle.url, handle.ca_file)
        reply = client.models.generate_content(model="gemini-2.5-flash", contents="a circus of snails")
        assert "snails" in (reply.text or "") or "circus" in (reply.text or "")
    finally:
        handle.stop()
    ca_before = Path(handle.ca_file).read_bytes()
    assert handle.process.returncode == 0
    assert not (tmp_path / "emu" / "ready.json").exists()
    # A restart on the same state dir reuses the CA, so clients configured with it keep working.
    with start_emulator(tmp_path / "emu") as again:
        assert Path(again.ca_file).read_bytes() == ca_before
        client = _client(again.url, handle.ca_file)
        reply = client.models.generate_content(model="m", contents="ducks")
        assert "ducks" in (reply.text or "")
