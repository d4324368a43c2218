"""The shared domain library: the data more than one function owns together (design.md principle 2), used as a
library rather than over HTTP. Framework-free (no Flask, no request globals), so WSGI and ASGI functions use it
alike.

- `shared.domain.conversations`: conversations, items, branches, titles, projects' and shares' tables
- `shared.domain.models`: providers, the model catalog, routing a model id to a provider
- `shared.domain.usage`: one usage record per model request

Each package lists its public surface in `__all__` and loads a name's module on first use, so importing one
domain (or only its `tables`) loads neither the other domains nor code it does not use.
"""
from __future__ import annotations

import importlib
from typing import Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` for `package` that imports `package.<module>` for a name in `exports` (name → module)."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        globals_ = importlib.import_module(package).__dict__
        globals_[name] = value
        return value

    return __getattr__
