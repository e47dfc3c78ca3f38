"""One error tree for the arena. Routes turn these into JSON (or htmx fragments)."""

from __future__ import annotations


class ArenaError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, detail: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidInput(ArenaError):
    status_code = 422
    code = "invalid_input"


class InvalidAudio(ArenaError):
    status_code = 422
    code = "invalid_audio"


class TooLarge(ArenaError):
    status_code = 413
    code = "too_large"


class NotFound(ArenaError):
    status_code = 404
    code = "not_found"


class Conflict(ArenaError):
    status_code = 409
    code = "conflict"


class Forbidden(ArenaError):
    status_code = 403
    code = "forbidden"


class Unauthorized(ArenaError):
    status_code = 401
    code = "unauthorized"


class Gone(ArenaError):
    status_code = 410
    code = "gone"

