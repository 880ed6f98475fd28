"""The Live API's hot messages on one SDK session's socket, coded here instead of by the SDK.

A voice session sends 10 audio messages a second and receives tens more; the SDK builds a
pydantic model, walks it through its converters and encodes it for every one of them
(`send_realtime_input`, `AsyncSession._receive`), which cost a quarter of the relay's CPU
(py-spy, `make bench`). `LiveWire` does just those two messages itself, on the connection the SDK
opened, and leaves everything else to the SDK:

- `send_audio(pcm)` writes exactly the text `send_realtime_input(audio=Blob(...))` writes
  (`{"realtime_input": {"audio": {"data": <url-safe base64>, "mime_type": ...}}}`);
- `recv()` returns a message that carries audio only as a tuple of PCM chunks, and every other
  message as the SDK's own `LiveServerMessage`, parsed by the SDK's own converters;
- `send_realtime_input(...)` (typed text, push-to-talk marks) is the SDK's.

Socket errors surface as the SDK raises them (`errors.APIError` with the close code), so
`audio.live.classify` sees the same failures either way. The SDK's private parts this relies on
(`AsyncSession._ws`, `_api_client.vertexai`, its message converters) are pinned with the SDK in
requirements.txt and checked against the SDK's own output by audio/tests/test_wire.py, which
fails on an upgrade that changes them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.genai import _live_converters, errors, types
from websockets.exceptions import ConnectionClosed

from audio import protocol

_AUDIO_HEAD = '{"realtime_input": {"audio": {"data": "'
_AUDIO_TAIL = f'", "mime_type": "{protocol.IN_MIME}"}}}}}}'

AudioChunks = tuple[bytes, ...]


def encode_audio(pcm: bytes) -> str:
    """What the SDK sends for `send_realtime_input(audio=Blob(data=pcm, mime_type=IN_MIME))`."""
    return _AUDIO_HEAD + base64.urlsafe_b64encode(pcm).decode("ascii") + _AUDIO_TAIL


def _b64(text: str) -> bytes:
    # The service sends standard base64; the SDK also takes URL-safe, so this does too.
    return base64.urlsafe_b64decode(text) if "-" in text or "_" in text else base64.b64decode(text)


def audio_chunks(message: dict[str, Any]) -> AudioChunks | None:
    """The PCM of a message that carries model audio and nothing else; None for any other."""
    if len(message) != 1:
        return None
    content = message.get("serverContent")
    if type(content) is not dict or len(content) != 1:
        return None
    turn = content.get("modelTurn")
    if type(turn) is not dict or len(turn) != 1:
        return None
    parts = turn.get("parts")
    if type(parts) is not list or not parts:
        return None
    chunks = []
    for part in parts:
        blob = part.get("inlineData") if type(part) is dict and len(part) == 1 else None
        if type(blob) is not dict:
            return None
        data = blob.get("data")
        if type(data) is not str or not str(blob.get("mimeType", "")).startswith("audio/"):
            return None
        chunks.append(_b64(data))
    return tuple(chunks)


class LiveWire:
    """One open SDK Live session, with audio sent and received without the SDK's models."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._ws = session._ws
        self._to_sdk = (
            _live_converters._LiveServerMessage_from_vertex
            if session._api_client.vertexai
            else _live_converters._LiveServerMessage_from_mldev
        )

    async def send_audio(self, pcm: bytes) -> None:
        await self._ws.send(encode_audio(pcm))

    async def send_realtime_input(self, **kwargs: Any) -> None:
        await self.session.send_realtime_input(**kwargs)

    async def recv(self) -> AudioChunks | types.LiveServerMessage:
        try:
            raw = await self._ws.recv(decode=False)
        except ConnectionClosed as exc:  # as the SDK reports it
            code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (1006, "Abnormal closure.")
            errors.APIError.raise_error(code, reason, None)
        try:  # json.loads takes bytes, but decoding first is 3-4x faster (its encoding sniffing)
            message = json.loads(raw.decode() if type(raw) is bytes else raw) if raw else {}
        except ValueError:
            raise ValueError(f"Failed to parse response: {raw[:200]!r}") from None
        if type(message) is dict and (chunks := audio_chunks(message)) is not None:
            return chunks
        return self._parse(message)

    def _parse(self, message: Any) -> types.LiveServerMessage:
        """Any other message, exactly as `AsyncSession._receive` parses it."""
        converted = self._to_sdk(message)
        if not converted and message:
            errors.APIError.raise_error(message.get("code"), message, None)
        return types.LiveServerMessage._from_response(response=converted, kwargs={})
