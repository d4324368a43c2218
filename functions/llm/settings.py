"""The llm function's settings: the platform's plus token issuing, providers, chat and API-key limits."""
from __future__ import annotations

from dataclasses import dataclass

from shared.settings import PlatformSettings, from_env


@dataclass(frozen=True)
class LlmSettings(PlatformSettings):
    service_name: str = "llm"

    # Token issuing (the llm function is the issuer in every mode).
    token_signing_key: str = ""
    access_token_ttl_seconds: int = 3600
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # Service identity (docs/architecture.md "Service identity"): delegation and service tokens live minutes.
    delegation_token_ttl_seconds: int = 300
    # The services that may ask for tokens: `name:sha256-hex-of-their-SERVICE_CREDENTIAL`, comma-separated.
    service_credential_hashes: tuple[str, ...] = ()
    # Which service may obtain tokens for which function: `caller>callee`, comma-separated.
    delegation_grants: tuple[str, ...] = ()
    # Services that may obtain service tokens (never delegation tokens) for any function: the job sweep.
    job_dispatchers: tuple[str, ...] = ("jobs-sweeper",)

    # Browser origins (scheme://host[:port]) whose pages may use the refresh-token cookie (refresh, logout);
    # a cookie-authenticated request with any other Origin is refused (403). The origin of PUBLIC_BASE_URL and
    # the listed CORS_ORIGINS count too. Default: Jan's web and desktop clients, as gateway/kong.yml.
    auth_cookie_origins: tuple[str, ...] = ("http://localhost:3000", "http://localhost:1420", "http://127.0.0.1:3000",
                                            "tauri://localhost")

    # Accounts.
    admin_emails: tuple[str, ...] = ()
    password_min_length: int = 8
    # scrypt runs on this many threads per process; this many more requests may wait, further ones get 503.
    password_hash_threads: int = 2
    password_hash_queue_size: int = 16
    # Password login attempts (0 switches a limit off), counted across all pods: per (account, client address),
    # so guessing one account from one address stops while its owner elsewhere still logs in, and per client
    # address, so one address cannot try many accounts.
    login_rate_limit_per_account_address_per_minute: int = 5
    login_rate_limit_per_account_address_per_hour: int = 30
    login_rate_limit_per_address_per_minute: int = 20
    login_rate_limit_per_address_per_hour: int = 200

    # API keys: TTL in seconds (Jan used nanoseconds; see docs/compatibility.md).
    api_key_default_ttl_seconds: int = 90 * 24 * 3600
    api_key_max_ttl_seconds: int = 365 * 24 * 3600
    api_key_max_per_user: int = 5

    # External OIDC login flow (Jan's GET /auth/login + /auth/callback), used when ISSUER is set.
    oidc_authorization_url: str = ""
    oidc_token_url: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oauth_redirect_uri: str = ""  # this function's /auth/callback, as registered for the client at the issuer
    # Where a login may send the browser back to (no open redirects). The first is also where a callback
    # with an unknown state lands.
    oauth_allowed_redirect_prefixes: tuple[str, ...] = ("http://localhost", "http://127.0.0.1")

    # Providers and the model catalog.
    provider_key_encryption_key: str = ""
    model_catalog_ttl_seconds: int = 3600
    model_sync_timeout_seconds: float = 10.0

    # Chat completions.
    upstream_connect_timeout_seconds: float = 5.0
    # Generous: a slow first token on a busy GPU is normal.
    upstream_timeout_seconds: float = 600.0
    stream_keepalive_seconds: float = 10.0

    # Conversation auto-titles (Jan's rules): a public model id for model-written titles (empty: the fallback
    # title, the first user message, only), and how long a chat request waits for that model's title.
    conversation_title_model: str = ""
    conversation_title_timeout_seconds: float = 3.0

    # Conversation sharing (Jan's CONVERSATION_SHARING_ENABLED, on here by default). When off, every share
    # management route answers 403; public reads of existing shares keep working.
    conversation_sharing_enabled: bool = True
    # Public share reads per client address, across all pods (0 switches a limit off). Jan: 100/min + 1000/h.
    public_share_rate_limit_per_minute: int = 100
    public_share_rate_limit_per_hour: int = 1000
    # Base of `share_url` (e.g. https://chat.example.com); empty: the request's scheme and Host, as Jan.
    public_base_url: str = ""


def load_settings(**overrides) -> LlmSettings:
    return from_env(LlmSettings, **overrides)
