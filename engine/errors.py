"""The error tree. Services raise these; the API maps each to one status code (app/api/errors.py)
and pages show `.message`. Nothing here carries a stack trace of the platform."""

from __future__ import annotations


class NimbusError(Exception):
    code = "error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return {"error": body}


class Invalid(NimbusError):
    """Bad input; `field` names the offending field."""

    code = "invalid"
    status = 422

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message, field=field)


class BadRequest(NimbusError):
    code = "bad_request"
    status = 400


class Unauthorized(NimbusError):
    code = "unauthorized"
    status = 401


class Forbidden(NimbusError):
    code = "forbidden"
    status = 403


class NotFound(NimbusError):
    code = "not_found"
    status = 404


class Conflict(NimbusError):
    code = "conflict"
    status = 409


class TooLarge(NimbusError):
    code = "too_large"
    status = 413


class QuotaExceeded(NimbusError):
    """A cap was hit: concurrency, queue length, daily quota."""

    code = "quota_exceeded"
    status = 429


class Unavailable(NimbusError):
    code = "unavailable"
    status = 503
