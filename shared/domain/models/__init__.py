"""The model registry: OpenAI-compatible providers (API keys encrypted at rest), the model catalog, and routing a
public model id to a provider's endpoint. The tables are in `.tables`."""
from shared.domain import lazy_exports

_EXPORTS = {
    "CAPABILITIES": "catalog",
    "ModelCatalog": "catalog",
    "ModelRoute": "catalog",
    "bool_filters": "catalog",
    "ProviderService": "providers",
    "canonical_model_id": "providers",
    "SecretBox": "crypto",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
