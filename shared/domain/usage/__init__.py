"""Usage accounting: one record per model request (tokens, latency, status), written after the response. The
table is in `.tables`."""
from shared.domain import lazy_exports

_EXPORTS = {"UsageRecord": "recorder", "UsageRecorder": "recorder"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
