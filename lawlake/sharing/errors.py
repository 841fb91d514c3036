"""Named errors of partner delivery, each carrying the Delta Sharing error response it becomes.

The protocol answers every failure with ``{"errorCode": …, "message": …}`` and an HTTP
status; the codes are those of the reference server (``RESOURCE_DOES_NOT_EXIST``,
``INVALID_PARAMETER_VALUE`` …) plus ``UNAUTHENTICATED`` and ``PERMISSION_DENIED`` for 401
and 403, which the reference server leaves to its HTTP layer.
"""

from __future__ import annotations

__all__ = [
    "SharingError",
    "BadRequest",
    "Unauthenticated",
    "Forbidden",
    "NotFound",
    "Malformed",
    "Unsupported",
    "RangeNotSatisfiable",
    "PayloadTooLarge",
    "GrantError",
    "DeliveryError",
]


class SharingError(Exception):
    """A request or delivery that cannot be served; ``status`` and ``error_code`` say how to answer it."""

    status: int = 500
    error_code: str = "INTERNAL_ERROR"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        """The protocol's JSON error object."""
        return {"errorCode": self.error_code, "message": self.message}


class BadRequest(SharingError):
    """A malformed request: a bad name, parameter or body (400)."""

    status = 400
    error_code = "INVALID_PARAMETER_VALUE"


class Unauthenticated(SharingError):
    """No bearer token, or one that is unknown, expired or revoked (401)."""

    status = 401
    error_code = "UNAUTHENTICATED"

    def __init__(self, message: str):
        super().__init__(message, headers={"www-authenticate": 'Bearer realm="lawlake"'})  # RFC 6750


class Forbidden(SharingError):
    """An authenticated request that may not be served: expired grant, bad or expired file URL (403)."""

    status = 403
    error_code = "PERMISSION_DENIED"


class NotFound(SharingError):
    """No such share, schema, table or file — also the answer for another partner's share (404)."""

    status = 404
    error_code = "RESOURCE_DOES_NOT_EXIST"


class Malformed(BadRequest):
    """A request body that is not the JSON object the protocol defines (400)."""

    error_code = "MALFORMED_REQUEST"


class Unsupported(BadRequest):
    """A protocol feature this server does not offer: change data feed, streaming, delta-only tables (400)."""

    error_code = "UNSUPPORTED_OPERATION"


class RangeNotSatisfiable(SharingError):
    """A byte range outside the file (416)."""

    status = 416
    error_code = "INVALID_PARAMETER_VALUE"


class PayloadTooLarge(SharingError):
    """A request body over the server's limit, refused before it is read (413)."""

    status = 413
    error_code = "RESOURCE_LIMIT_EXCEEDED"


class GrantError(ValueError):
    """A token that cannot be issued: unknown partner, or its policy has expired."""


class DeliveryError(RuntimeError):
    """A file export or database push that cannot be made; nothing was delivered."""
