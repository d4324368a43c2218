"""Request authentication shared by every function: JWT (our issuer or a trusted OIDC issuer) and API keys."""
from shared.auth.guard import admin_required, authenticated, current_principal
from shared.auth.principal import Principal

__all__ = ["Principal", "admin_required", "authenticated", "current_principal"]
