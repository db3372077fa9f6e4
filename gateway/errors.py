"""One error tree for the whole gateway.

Every failure a client can see is a ``GatewayError``; each knows its HTTP status and renders
OpenAI's error body ``{"error": {"message", "type", "param", "code"}}``. Lower layers (aiohttp,
SQLAlchemy, the OPA engines) raise their own exceptions; they are translated into this tree
only at the boundary that calls them.

    GatewayError                      500 api_error
    ├── InvalidRequestError           400 invalid_request_error
    │   ├── BodyTooLargeError         413
    │   └── UnsupportedParameterError 400 (names the parameter)
    ├── AuthenticationError           401 (missing, malformed, unknown, revoked, expired key)
    ├── PermissionDeniedError         403 (admin calls without rights)
    ├── NotFoundError                 404
    │   └── ModelNotFoundError        404 model_not_found
    ├── PolicyDeniedError             policy's status (default 403) policy_denied
    ├── RateLimitError                429 rate_limit_exceeded (+ Retry-After, x-ratelimit-*)
    │   └── BudgetExceededError       429 or 402 budget_exceeded
    ├── PolicyUnavailableError        503 (engine error or undefined decision: fail closed)
    ├── ServiceUnavailableError       503
    └── UpstreamError                 502
        ├── UpstreamUnreachableError  502 (connect error, TLS verification failure)
        ├── UpstreamTimeoutError      504
        └── UpstreamStatusError       upstream's own status and body, passed through

``ConfigError`` is not an HTTP error: it stops the process at start with a message naming the
file, the field and what was expected.
"""

from __future__ import annotations

from typing import Any

import orjson


class GatewayError(Exception):
    status: int = 500
    type: str = "api_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def body_bytes(self) -> bytes:
        return orjson.dumps(self.body())

    @property
    def error_type(self) -> str:
        """Short name recorded with usage (``policy_denied``, ``upstream_timeout`` …)."""
        return self.code or self.type


class InvalidRequestError(GatewayError):
    status = 400
    type = "invalid_request_error"


class BodyTooLargeError(InvalidRequestError):
    status = 413
    code = "request_too_large"


class UnsupportedParameterError(InvalidRequestError):
    code = "unsupported_parameter"


class AuthenticationError(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status = 403
    type = "permission_denied"
    code = "permission_denied"


class NotFoundError(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class PolicyDeniedError(GatewayError):
    status = 403
    type = "permission_denied"
    code = "policy_denied"


class RateLimitError(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    #: Which limit refused the request and on what (requests, tokens, cost, budget): metrics.
    limit_name: str = "unknown"
    limit_kind: str = "unknown"


class BudgetExceededError(RateLimitError):
    type = "insufficient_quota"
    code = "budget_exceeded"


class PolicyUnavailableError(GatewayError):
    status = 503
    type = "api_error"
    code = "policy_unavailable"


class ServiceUnavailableError(GatewayError):
    status = 503
    type = "api_error"
    code = "service_unavailable"


class UpstreamError(GatewayError):
    status = 502
    type = "api_error"
    code: str | None = "upstream_error"


class UpstreamUnreachableError(UpstreamError):
    code = "upstream_unreachable"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamStatusError(UpstreamError):
    """An error answered by the provider, passed to the client with the provider's status.

    ``retryable`` marks statuses the router may fail over on (429 and 5xx).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        type: str = "api_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code, status=status, headers=headers)
        self.type = type
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500

    @property
    def error_type(self) -> str:
        return f"upstream_{self.status}"


class ConfigError(Exception):
    """A configuration problem found at start; the message names file, field and expectation."""
