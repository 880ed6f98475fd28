"""Typed client messages of the Live API (BidiGenerateContent), parsed from untrusted JSON.

The SDK mixes spellings on the wire (snake_case top-level keys, camelCase nested keys, some
configs passed through as snake_case) and encodes bytes as URL-safe base64; Google's servers
accept every combination, so this parser normalises keys to camelCase and takes either base64.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

_SNAKE = re.compile(r"_([a-z0-9])")
_RATE = re.compile(r"rate=(\d+)")
VAD_RATES = (8000, 16000, 32000, 48000)


class ProtocolError(ValueError):
    """A message the real service would reject: the emulator closes with 1007."""


def camel(obj: Any) -> Any:
    """Recursively rewrites dict keys from snake_case to camelCase."""
    if isinstance(obj, dict):
        return {_SNAKE.sub(lambda m: m.group(1).upper(), k): camel(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [camel(v) for v in obj]
    return obj


def decode_bytes(data: Any) -> bytes:
    if not isinstance(data, str):
        raise ProtocolError("inline data must be a base64 string")
    text = data.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError("inline data is not valid base64") from exc


@dataclass(frozen=True)
class Setup:
    model: str
    modalities: tuple[str, ...] = ("AUDIO",)
    system_text: str = ""
    voice: str = ""
    input_transcription: bool = False
    output_transcription: bool = False
    resumption: bool = False
    resume_handle: str | None = None
    vad_disabled: bool = False
    silence_ms: int = 600
    interrupts: bool = True
    compression: bool = False


@dataclass(frozen=True)
class Audio:
    pcm: bytes
    rate: int


@dataclass(frozen=True)
class ActivityStart:
    pass


@dataclass(frozen=True)
class ActivityEnd:
    pass


@dataclass(frozen=True)
class AudioStreamEnd:
    pass


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class ClientContent:
    turns: list[tuple[str, str]] = field(default_factory=list)
    turn_complete: bool = False


@dataclass(frozen=True)
class Ignored:
    """Valid input the emulator does not act on (video frames, tool responses)."""

    what: str


Message = Audio | ActivityStart | ActivityEnd | AudioStreamEnd | Text | ClientContent | Ignored


def _texts(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts") or []
    if not isinstance(parts, list):
        raise ProtocolError("'parts' must be a list")
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def parse_setup(raw: Any) -> Setup:
    msg = camel(raw)
    if not isinstance(msg, dict) or not isinstance(msg.get("setup"), dict):
        raise ProtocolError("the first message must be a setup message")
    setup = msg["setup"]
    model = setup.get("model")
    if not isinstance(model, str) or not model:
        raise ProtocolError("setup.model is required")
    gen = setup.get("generationConfig") or {}
    modalities = tuple(str(m).upper() for m in gen.get("responseModalities") or ["AUDIO"])
    voice = (((gen.get("speechConfig") or {}).get("voiceConfig") or {}).get("prebuiltVoiceConfig") or {}).get(
        "voiceName", ""
    )
    resumption = setup.get("sessionResumption")
    rt = setup.get("realtimeInputConfig") or {}
    aad = rt.get("automaticActivityDetection") or {}
    silence = aad.get("silenceDurationMs", 600)
    if not isinstance(silence, int) or not 0 <= silence <= 10_000:
        raise ProtocolError("silenceDurationMs must be an integer between 0 and 10000")
    handle = resumption.get("handle") if isinstance(resumption, dict) else None
    return Setup(
        model=model,
        modalities=modalities,
        system_text=_texts(setup.get("systemInstruction")),
        voice=str(voice),
        input_transcription="inputAudioTranscription" in setup,
        output_transcription="outputAudioTranscription" in setup,
        resumption=isinstance(resumption, dict),
        resume_handle=handle if isinstance(handle, str) and handle else None,
        vad_disabled=bool(aad.get("disabled", False)),
        silence_ms=max(silence, 90),
        interrupts=rt.get("activityHandling") != "NO_INTERRUPTION",
        compression="contextWindowCompression" in setup,
    )


def _audio(blob: Any) -> Audio:
    if not isinstance(blob, dict):
        raise ProtocolError("audio must be a blob object")
    mime = str(blob.get("mimeType", "audio/pcm;rate=16000"))
    if not mime.startswith("audio/pcm"):
        raise ProtocolError(f"unsupported audio mime type {mime!r} (the emulator takes audio/pcm)")
    match = _RATE.search(mime)
    rate = int(match.group(1)) if match else 16000
    if rate not in VAD_RATES:
        raise ProtocolError(f"unsupported audio rate {rate}; use one of {VAD_RATES}")
    pcm = decode_bytes(blob.get("data", ""))
    if len(pcm) % 2:
        raise ProtocolError("PCM16 audio must have an even number of bytes")
    return Audio(pcm=pcm, rate=rate)


def parse_message(raw: Any) -> list[Message]:
    """One client message after setup; realtimeInput may carry several inputs at once."""
    msg = camel(raw)
    if not isinstance(msg, dict) or len(msg) != 1:
        raise ProtocolError("a client message must have exactly one top-level key")
    key, body = next(iter(msg.items()))
    if not isinstance(body, dict):
        raise ProtocolError(f"{key} must be an object")
    if key == "realtimeInput":
        out: list[Message] = []
        if "activityStart" in body:
            out.append(ActivityStart())
        for chunk in body.get("mediaChunks") or []:
            if str((chunk or {}).get("mimeType", "")).startswith("audio/"):
                out.append(_audio(chunk))
            else:
                out.append(Ignored("media"))
        if "audio" in body:
            out.append(_audio(body["audio"]))
        if "video" in body:
            out.append(Ignored("video"))
        if isinstance(body.get("text"), str) and body["text"].strip():
            out.append(Text(body["text"]))
        if body.get("audioStreamEnd"):
            out.append(AudioStreamEnd())
        if "activityEnd" in body:
            out.append(ActivityEnd())
        return out
    if key == "clientContent":
        turns = body.get("turns") or []
        if not isinstance(turns, list):
            raise ProtocolError("clientContent.turns must be a list")
        parsed = [(str((t or {}).get("role", "user")), _texts(t)) for t in turns]
        return [ClientContent(turns=parsed, turn_complete=bool(body.get("turnComplete", False)))]
    if key == "toolResponse":
        return [Ignored("toolResponse")]
    if key == "setup":
        raise ProtocolError("setup may only be sent once")
    raise ProtocolError(f"unknown client message {key!r}")
