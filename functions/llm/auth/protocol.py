"""Jan's /auth bodies and responses."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from shared.errors import BadRequest
from shared.protocol import RequestModel, ResponseModel

Email = Annotated[str, Meta(max_length=320)]
Password = Annotated[str, Meta(extra={"error": "password is required"})]
ShortText = Annotated[str, Meta(max_length=255)]
# Jan's token expiry: an RFC 3339 UTC timestamp.
RFC3339 = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]


class RefreshTokenBody(RequestModel):
    """Optional: the refresh token may come in the body, the `refresh_token` cookie or `Authorization: Bearer rt_…`
    (Jan's order); a body value that is not a non-empty string falls through to the next."""

    refresh_token: Annotated[Any, Meta(extra_json_schema={"type": ["string", "null"]})] = None


class RevokeRequest(RequestModel):
    __trimmed__ = ("refresh_token",)

    refresh_token: str


class UpgradeRequest(RequestModel):
    __trimmed__ = ("email", "username", "full_name")

    email: Email
    password: Password
    username: ShortText | None = None
    full_name: ShortText | None = None

    def __post_init__(self):
        super().__post_init__()
        if not self.password:
            raise BadRequest("password is required", param="password")


class LoginRequest(RequestModel):
    __trimmed__ = ("email",)

    email: Email
    password: Password

    def __post_init__(self):
        super().__post_init__()
        if not self.password:
            raise BadRequest("password is required", param="password")


class CreateApiKeyRequest(RequestModel):
    """`expires_in` (seconds) or `expires_in_days`; 0 or absent is the default lifetime, capped at the maximum."""

    __trimmed__ = ("name",)

    name: ShortText
    expires_in: int | None = None
    expires_in_days: int | None = None


class ValidateApiKeyRequest(RequestModel):
    __trimmed__ = ("api_key",)

    api_key: str


# Responses ----------------------------------------------------------------------------------------------------

class TokenResponse(ResponseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    expires_at: RFC3339


class LoginResponse(ResponseModel):
    user_id: str
    username: str | None
    principal_id: str
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    expires_at: RFC3339


class Me(ResponseModel):
    id: str
    username: str | None
    email: str | None
    name: str | None
    subject: str | None
    auth_method: str
    roles: list[str]
    is_admin: bool
    is_guest: bool


class ApiKey(ResponseModel):
    """Times are RFC 3339; `key` (the secret) only in the response that created it."""

    id: str
    name: str
    prefix: str
    suffix: str
    created_at: str
    expires_at: str | None
    status: str
    revoked_at: str | None = None
    last_used_at: str | None = None
    key: str | None = None


class ApiKeyList(ResponseModel):
    items: list[ApiKey]


class DelegationTokenRequest(RequestModel):
    """`POST /internal/delegation-tokens`: a delegation token for `user_id` at `audience`, or a service token."""

    audience: Annotated[str, Meta(min_length=1, max_length=64, extra={"error": "audience must name a function"})]
    user_id: Annotated[str, Meta(max_length=64, extra={"error": "user_id must be a user id"})] | None = None
