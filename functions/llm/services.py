"""The llm function's service objects, built once per process by the app factory."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app

from shared.auth.principal import PrincipalResolver
from shared.db import Database
from shared.inference import InferenceClient
from shared.keys import published_jwks
from shared.ratelimit import RateLimiter
from shared.domain.conversations import ConversationService
from shared.domain.models import ModelCatalog, ProviderService
from shared.domain.usage import UsageRecorder
from functions.llm.auth.accounts import AccountService
from functions.llm.auth.api_keys import ApiKeyService
from functions.llm.auth.delegation import DelegationService
from functions.llm.auth.issuer import TokenIssuer
from functions.llm.auth.oidc import OAuthLogin
from functions.llm.auth.sessions import SessionService
from functions.llm.chat.service import ChatService
from functions.llm.projects.service import ProjectService
from functions.llm.shares.service import ShareService
from functions.llm.settings import LlmSettings
from functions.llm.usage.queries import UsageQueries
from functions.llm.users.account import AccountData
from functions.llm.users.user_settings import UserSettingsService


@dataclass(frozen=True)
class LlmServices:
    settings: LlmSettings
    principals: PrincipalResolver
    sessions: SessionService
    accounts: AccountService
    api_keys: ApiKeyService
    oauth: OAuthLogin
    providers: ProviderService
    catalog: ModelCatalog
    conversations: ConversationService
    usage: UsageRecorder
    chat: ChatService
    projects: ProjectService
    shares: ShareService
    user_settings: UserSettingsService
    usage_queries: UsageQueries
    account: AccountData
    delegation: DelegationService
    cookie_origins: frozenset[str]
    jwks: dict  # the published public key set (/.well-known/jwks.json)


def build_services(settings: LlmSettings, db: Database, principals: PrincipalResolver) -> LlmServices:
    issuer = TokenIssuer(settings)
    sessions = SessionService(db, issuer, settings)
    inference = InferenceClient(connect_timeout=settings.upstream_connect_timeout_seconds,
                                read_timeout=settings.upstream_timeout_seconds)
    providers = ProviderService(db, inference, encryption_key=settings.provider_key_encryption_key,
                                sync_timeout_seconds=settings.model_sync_timeout_seconds)
    catalog = ModelCatalog(db, providers, ttl_seconds=settings.model_catalog_ttl_seconds)
    conversations = ConversationService(db)
    usage = UsageRecorder(db)
    limiter = RateLimiter(db)
    user_settings = UserSettingsService(db, lambda: next(iter(m["id"] for m in catalog.list_models()), None))
    return LlmServices(
        settings=settings,
        principals=principals,
        sessions=sessions,
        accounts=AccountService(db, sessions, settings, limiter),
        api_keys=ApiKeyService(db, settings),
        oauth=OAuthLogin(db, settings, principals, sessions),
        providers=providers,
        catalog=catalog,
        conversations=conversations,
        usage=usage,
        chat=ChatService(catalog, inference, conversations, usage, settings),
        projects=ProjectService(db),
        shares=ShareService(db, limiter, settings),
        user_settings=user_settings,
        usage_queries=UsageQueries(db),
        account=AccountData(db, user_settings, settings.token_issuer),
        delegation=DelegationService(db, issuer, settings),
        cookie_origins=cookie_origins(settings),
        jwks=published_jwks(settings.jwks, issuer.public_jwk),
    )


def cookie_origins(settings: LlmSettings) -> frozenset[str]:
    """Origins whose pages may use the refresh-token cookie: the setting's, the public base URL's, and the
    explicitly listed CORS origins (never `*`)."""
    origins = set(settings.auth_cookie_origins) | {origin for origin in settings.cors_origins if origin != "*"}
    if settings.public_base_url:
        parts = urlsplit(settings.public_base_url)
        origins.add(f"{parts.scheme}://{parts.netloc}")
    return frozenset(origin.rstrip("/") for origin in origins)


def services() -> LlmServices:
    return current_app.extensions["jan"].services["llm"]
