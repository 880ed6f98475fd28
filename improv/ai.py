"""Structured calls to the text model: schemas in, validated pydantic objects out.

Every call sends a response schema and reads `response.parsed`; nothing is parsed out of free
text. Retries with backoff on 408/429/5xx and transport errors are the SDK's (configured in
`improv.gemini.retry_options`, one place); what is still failing after that becomes
`GeminiUnavailable`, which the API shows as 503 with a retry hint and the pages as a message.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from google.genai import errors as genai_errors
from google.genai import types
from pydantic import BaseModel, Field, ValidationError

from improv import gemini, telemetry
from improv.errors import GeminiUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


class RoomVibe(BaseModel):
    energy: int = Field(ge=1, le=10, description="How lively the audience is, 1-10.")
    engagement: int = Field(ge=1, le=10, description="How invested the audience is in the scene, 1-10.")
    mood: str = Field(description="The audience's mood in one or two words.", max_length=40)


class PartnerTurn(BaseModel):
    line: str = Field(min_length=1, description="The partner's spoken line.")
    room: RoomVibe


class AudienceShout(BaseModel):
    suggestion: str = Field(
        min_length=1, description="The audience member's suggestion, at most eight words."
    )


class RoomOnly(BaseModel):
    room: RoomVibe


class CoachReviewReply(Protocol):
    """What a CoachReview holds (its class is built per principle set by coach_schemas)."""

    overall_feedback: str
    strengths: list[Any]
    growth: list[Any]
    next_tip: str


@lru_cache(maxsize=8)
def _principle_enum(slugs: tuple[str, ...]) -> type[enum.Enum]:
    # An enum keeps the coach grounded: the model can only name principles we have.
    # mypy types Enum(...) with non-literal members as a member, not the class it returns.
    return cast(
        "type[enum.Enum]",
        enum.Enum("PrincipleSlug", {s.replace("-", "_").upper(): s for s in slugs}, type=str),
    )


class CoachSchemas(NamedTuple):
    """Response schemas that name a principle, built for the current set of principles."""

    note: type[BaseModel]
    partner_turn: type[PartnerTurn]  # the partner's line, plus a coach note
    room: type[RoomOnly]  # the room's vibe, plus a coach note
    review: type[BaseModel]  # the end-of-scene review


@lru_cache(maxsize=8)
def coach_schemas(slugs: tuple[str, ...]) -> CoachSchemas:
    """The principle-naming schemas for the current principles, built once per set: a pydantic
    model class costs milliseconds to build and lives in a reference cycle."""
    slug_enum = _principle_enum(slugs)

    class CoachNote(BaseModel):
        principle: slug_enum  # type: ignore[valid-type]
        note: str = Field(
            min_length=1, description="One or two sentences of specific, kind, actionable coaching."
        )

    class PartnerTurnWithCoach(PartnerTurn):
        coach: CoachNote

    class RoomWithCoach(RoomOnly):
        coach: CoachNote

    class CoachReview(BaseModel):
        overall_feedback: str = Field(description="Two or three sentences on the whole scene.")
        strengths: list[CoachNote] = Field(min_length=1, max_length=3)
        growth: list[CoachNote] = Field(min_length=1, max_length=3, description="Things to work on.")
        next_tip: str = Field(description="One concrete tip for the next scene.")

    return CoachSchemas(
        note=CoachNote, partner_turn=PartnerTurnWithCoach, room=RoomWithCoach, review=CoachReview
    )


def _config(system: str, schema: type[BaseModel]) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        system_instruction=system,
        response_mime_type="application/json",
        response_schema=schema,
        temperature=0.9,
        max_output_tokens=1024,
    )


def _contents(messages: Sequence[tuple[str, str]]) -> list[types.Content]:
    return [types.Content(role=role, parts=[types.Part(text=text)]) for role, text in messages if text]


def _parse(response: Any, schema: type[T], purpose: str) -> T | None:
    parsed = getattr(response, "parsed", None)
    if isinstance(parsed, schema):
        return parsed
    try:  # the SDK leaves `parsed` empty when its own validation failed; say why in the log
        return schema.model_validate_json(response.text or "")
    except (ValidationError, ValueError, TypeError) as exc:
        telemetry.gemini_error(api="text", kind="bad_reply", status=type(exc).__name__)
        log.warning(
            "model reply did not match the schema",
            extra={
                "event": "gemini_error",
                "kind": "text",
                "status": "bad_reply",
                "purpose": purpose,
                "error": type(exc).__name__,
            },
        )
        return None


def _failed(exc: BaseException, purpose: str) -> GeminiUnavailable:
    status: Any = getattr(exc, "code", None) if isinstance(exc, genai_errors.APIError) else type(exc).__name__
    telemetry.gemini_error(api="text", kind="quota" if status == 429 else "unavailable", status=status)
    log.warning(
        "text model call failed",
        extra={
            "event": "gemini_error",
            "kind": "text",
            "status": status,
            "purpose": purpose,
        },
    )
    retry_after = 30 if status == 429 else 5
    return GeminiUnavailable(retry_after=retry_after)


# Two tries at most for a reply that does not fit the schema; HTTP-level retries are the SDK's.
_BAD_REPLY_TRIES = 2


def generate(*, purpose: str, system: str, messages: Sequence[tuple[str, str]], schema: type[T]) -> T:
    """One structured generate_content call (sync). Raises GeminiUnavailable."""
    for _ in range(_BAD_REPLY_TRIES):
        with telemetry.generate_span(purpose=purpose, model=gemini.text_model()) as span:
            try:
                response = gemini.get_client().models.generate_content(
                    model=gemini.text_model(), contents=_contents(messages), config=_config(system, schema)
                )
            except Exception as exc:  # the SDK raises APIError, httpx/aiohttp errors, timeouts
                raise _failed(exc, purpose) from exc
            telemetry.record_usage(span, response)
        parsed = _parse(response, schema, purpose)
        if parsed is not None:
            return parsed
    raise GeminiUnavailable("Your scene partner lost their words. Your line is saved; try again.")


async def agenerate(*, purpose: str, system: str, messages: Sequence[tuple[str, str]], schema: type[T]) -> T:
    """The async twin of `generate` (voice path: no thread held while the model thinks)."""
    for _ in range(_BAD_REPLY_TRIES):
        with telemetry.generate_span(purpose=purpose, model=gemini.text_model()) as span:
            try:
                response = await gemini.get_client().aio.models.generate_content(
                    model=gemini.text_model(), contents=_contents(messages), config=_config(system, schema)
                )
            except Exception as exc:
                raise _failed(exc, purpose) from exc
            telemetry.record_usage(span, response)
        parsed = _parse(response, schema, purpose)
        if parsed is not None:
            return parsed
    raise GeminiUnavailable("The coach lost their words. Try again.")
