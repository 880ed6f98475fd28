"""Domain errors with the HTTP status and error code the API and pages report them as."""

from __future__ import annotations


class ImprovError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def as_json(self) -> dict[str, object]:
        return {"error": self.code, "detail": self.detail, **self.extra}


class SceneMissing(ImprovError):
    """No such scene, or not yours: both look the same from outside."""

    status = 404
    code = "not_found"


class WrongState(ImprovError):
    status = 409
    code = "wrong_state"


class UnknownGame(ImprovError):
    status = 422
    code = "unknown_game"


class InvalidLine(ImprovError):
    status = 422
    code = "invalid_line"


class UnsafeLine(ImprovError):
    status = 422
    code = "unsafe_input"


class LimitReached(ImprovError):
    status = 429
    code = "limit_reached"


class GeminiUnavailable(ImprovError):
    """The model could not answer after retries. Nothing the user sent is lost; they can retry."""

    status = 503
    code = "gemini_unavailable"

    def __init__(self, detail: str = "", *, retry_after: int = 5, **extra: object) -> None:
        super().__init__(
            detail
            or "Your scene partner is unavailable right now. Your line is saved; try again in a moment.",
            retry_after=retry_after,
            **extra,
        )
        self.retry_after = retry_after
