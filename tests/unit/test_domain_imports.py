"""shared.domain is a framework-free library with a public surface: each domain imports in a fresh interpreter
without Flask (so ASGI functions can use it) and without the other domains' tables or code, and every name in
its `__all__` resolves."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

DOMAINS = {
    "shared.domain.conversations": "ConversationService",
    "shared.domain.models": "ModelCatalog",
    "shared.domain.usage": "UsageRecorder",
}


def loaded_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("package, main_name", DOMAINS.items())
def test_a_domain_imports_without_flask_or_the_other_domains(package, main_name):
    modules = loaded_after(f"from {package} import {main_name}")
    assert not {m for m in modules if m.split(".")[0] in ("flask", "werkzeug", "functions")}
    others = {m for m in modules if m.startswith("shared.domain.") and not m.startswith(package)}
    assert others == set(), others


def test_a_domains_tables_load_without_its_code():
    modules = loaded_after("import shared.domain.conversations.tables")
    assert "shared.domain.conversations.service" not in modules
    assert "shared.domain.conversations.items" not in modules


def test_outbound_http_and_errors_import_without_flask():
    modules = loaded_after("import shared.outbound, shared.errors, shared.pagination, shared.inference")
    assert not {m for m in modules if m.split(".")[0] in ("flask", "werkzeug")}


@pytest.mark.parametrize("package", DOMAINS)
def test_every_public_name_resolves(package):
    module = __import__(package, fromlist=["__all__"])
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError):
        getattr(module, "not_a_public_name")


def test_the_full_metadata_holds_every_domains_tables():
    code = ("from shared.schema import full_metadata; import json; "
            "print(json.dumps(sorted(full_metadata().tables)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    tables = set(json.loads(result.stdout))
    assert {"users", "api_keys", "conversations", "conversation_items", "projects", "providers", "model_catalogs",
            "provider_models", "usage_records"} <= tables
