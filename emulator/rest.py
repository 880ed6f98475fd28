"""generateContent (unary and SSE stream) and the emulator's own control API, over aiohttp."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from emulator import partner
from emulator.faults import HTTP_STATUSES, FaultError, parse_fault
from emulator.live_protocol import camel
from emulator.schema import Inputs, SchemaError, fill
from emulator.state import ServerState

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    **HTTP_STATUSES,
}
_STATUS_MESSAGES = {
    429: "Resource exhausted. Please try again later.",
    500: "An internal error has occurred. Please retry or report in the troubleshooting guide.",
    503: "The model is overloaded. Please try again later.",
}


class BadRequest(ValueError):
    pass


def google_error(code: int, message: str) -> web.Response:
    body = {"error": {"code": code, "message": message, "status": _STATUS_NAMES.get(code, "UNKNOWN")}}
    return web.json_response(body, status=code)


def has_auth(request: web.Request) -> bool:
    """Any API key or token will do: the emulator checks that auth is sent, not who sent it."""
    return bool(
        request.headers.get("x-goog-api-key")
        or request.headers.get("authorization")
        or request.query.get("key")
        or request.query.get("access_token")
    )


async def _read_json(request: web.Request, limit: int) -> Any:
    if request.content_length is not None and request.content_length > limit:
        raise BadRequest(f"Request payload size exceeds the limit: {limit} bytes.")
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise BadRequest(f"Request payload size exceeds the limit: {limit} bytes.")
    try:
        return json.loads(body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"Invalid JSON payload received. {exc}") from exc


def _part_text(part: Any) -> str:
    if not isinstance(part, dict):
        raise BadRequest("Invalid value at 'contents[].parts[]': must be an object.")
    text = part.get("text")
    return text if isinstance(text, str) else ""


def _parse(body: Any) -> tuple[list[tuple[str, str]], str, dict[str, Any]]:
    """Returns (turns as (role, text), system text, generationConfig) or raises BadRequest."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid JSON payload received. Expected an object.")
    req = camel(body)
    contents = req.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
    turns: list[tuple[str, str]] = []
    for item in contents:
        if not isinstance(item, dict) or not isinstance(item.get("parts"), list) or not item["parts"]:
            raise BadRequest("* GenerateContentRequest.contents.parts: contents.parts must not be empty.")
        role = item.get("role", "user")
        if role not in ("user", "model", "function", "tool"):
            raise BadRequest(f"Please use a valid role: user, model. Got {role!r}.")
        turns.append((str(role), " ".join(t for t in map(_part_text, item["parts"]) if t)))
    system = req.get("systemInstruction")
    system_text = ""
    if isinstance(system, dict):
        system_text = " ".join(filter(None, map(_part_text, system.get("parts") or [])))
    elif isinstance(system, str):
        system_text = system
    elif system is not None:
        raise BadRequest("systemInstruction must be a Content object.")
    config = req.get("generationConfig") or {}
    if not isinstance(config, dict):
        raise BadRequest("generationConfig must be an object.")
    # camel() renamed keys inside schemas too ("min_items"); the filler reads both spellings.
    raw_config = body.get("generationConfig") or body.get("generation_config") or {}
    for key in ("responseSchema", "responseJsonSchema", "response_schema", "response_json_schema"):
        if isinstance(raw_config, dict) and key in raw_config:
            config[camel({key: 0}).popitem()[0]] = raw_config[key]
    return turns, system_text, config


def _reply_text(turns: list[tuple[str, str]], system_text: str, config: dict[str, Any], salt: str) -> str:
    user_texts = [t for r, t in turns if r == "user" and t]
    last_user = user_texts[-1] if user_texts else ""
    # Earlier user turns (latest first), then the system instruction: what the scene is about.
    context = (*reversed(user_texts[:-1]), system_text)
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    inputs = Inputs(user_text=last_user, context=context, salt=salt)
    if schema is not None:
        return json.dumps(fill(schema, inputs))
    line = partner.partner_line(last_user, context=context, salt=salt)
    if config.get("responseMimeType") == "application/json":
        return json.dumps({"text": line})
    return line


def _response(text: str, prompt: str, model: str, *, final: bool = True) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    body: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
    if final:
        candidate["finishReason"] = "STOP"
        p, c = partner.approx_tokens(prompt), partner.approx_tokens(text)
        body["usageMetadata"] = {"promptTokenCount": p, "candidatesTokenCount": c, "totalTokenCount": p + c}
    return body


async def generate_content(
    request: web.Request, state: ServerState, model: str, stream: bool
) -> web.StreamResponse:
    state.stats.http_requests += 1
    if request.method != "POST":
        return google_error(405, "Use POST.")
    if not has_auth(request):
        return google_error(401, "Request is missing required authentication credential.")
    faults = state.faults.take_http()
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.status is not None:
        state.stats.faults_fired += 1
        state.stats.http_errors += 1
        return google_error(faults.status, _STATUS_MESSAGES[faults.status])
    try:
        turns, system_text, config = _parse(await _read_json(request, state.options.max_body_bytes))
        text = _reply_text(turns, system_text, config, state.salt(len(turns)))
    except (BadRequest, SchemaError) as exc:
        state.stats.http_errors += 1
        return google_error(400, str(exc))
    prompt = " ".join([system_text, *(t for _, t in turns)])
    if not stream:
        return web.json_response(_response(text, prompt, model))
    # Server-sent events: the text in a few pieces, usage on the last, as the real stream does.
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    step = max(1, len(text) // 3 + 1)
    pieces = [text[i : i + step] for i in range(0, len(text), step)] or [""]
    for i, piece in enumerate(pieces):
        chunk = _response(piece, prompt, model, final=i == len(pieces) - 1)
        await resp.write(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
    await resp.write_eof()
    return resp


async def control(request: web.Request, state: ServerState, what: str) -> web.Response:
    """The emulator's own API: arm and clear faults, read counters and what each Live
    conversation heard and said. Not part of Gemini."""
    if what == "stats" and request.method == "GET":
        return web.json_response(state.describe())
    if what == "conversations" and request.method == "GET":
        return web.json_response(state.describe_conversations())
    if what != "faults":
        return google_error(404, "Unknown emulator control endpoint.")
    if request.method == "GET":
        return web.json_response({"faults": state.faults.describe()})
    if request.method == "DELETE":
        state.faults.clear()
        return web.json_response({"faults": []})
    if request.method != "POST":
        return google_error(405, "Use GET, POST or DELETE.")
    try:
        body = await _read_json(request, 64 * 1024)
        raw = body.get("faults", [body]) if isinstance(body, dict) else body
        if not isinstance(raw, list):
            raise FaultError('send a fault object, a list, or {"faults": [...]}')
        state.faults.arm([parse_fault(item) for item in raw])
    except (BadRequest, FaultError) as exc:
        return google_error(400, str(exc))
    return web.json_response({"faults": state.faults.describe()})
