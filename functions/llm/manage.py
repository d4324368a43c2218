"""Operator commands for the llm function (run once per rollout or by hand, never at function start).

    python -m functions.llm.manage load-providers FILE   register/update providers from a YAML file, sync models
    python -m functions.llm.manage sync-models           refresh every active provider's models now
    python -m functions.llm.manage admin EMAIL           create or promote an admin; print a one-time API key
    python -m functions.llm.manage rotate-signing-key --key-file PEM --jwks-file JSON
                                                         a new token signing key; the key set keeps the old one
"""
from __future__ import annotations

import argparse
import os
import re
import sys

from shared.audit import Actor, AuditLog
from functions.llm.app import create_app


def _expand_env(value):
    """`${NAME}` in the providers file reads the environment, so keys stay out of the file."""
    if isinstance(value, str):
        return re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, dict):
        return {key: _expand_env(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand_env(item) for item in value]
    return value


def load_providers(path: str) -> int:
    import yaml

    with open(path, encoding="utf-8") as handle:
        document = _expand_env(yaml.safe_load(handle) or {})
    entries = document.get("providers") or []
    app = create_app()
    with app.app_context():
        llm = app.extensions["jan"].services["llm"]
        for entry in entries:
            if entry.get("enabled") is False:
                continue
            result = llm.providers.upsert_from_config(entry)
            models = ", ".join(model["id"] for model in result.get("models", [])) or "none"
            error = f" (sync failed: {result['last_sync_error']})" if result.get("last_sync_error") else ""
            print(f"provider {result['name']} ({result['id']}): models {models}{error}")
    return 0


def sync_models() -> int:
    app = create_app()
    with app.app_context():
        llm = app.extensions["jan"].services["llm"]
        for provider in llm.providers.list():
            if provider["active"]:
                models = llm.providers.sync(provider["id"], raise_errors=False)
                print(f"provider {provider['name']}: {len(models)} models")
    return 0


def make_admin(email: str) -> int:
    app = create_app()
    with app.app_context():
        llm = app.extensions["jan"].services["llm"]
        operator = Actor(user_id=None, auth_method="operator", service="manage")
        user_id, public_id, created = llm.accounts.ensure_admin(
            email, audit=AuditLog(app.extensions["jan"].db), actor=operator)
        key = llm.api_keys.create(user_id, "admin (make admin)", llm.api_keys.default_ttl)
    print(f"{'created' if created else 'promoted'} admin {email} ({public_id})")
    print(f"one-time admin API key (shown only now): {key['key']}")
    if created:
        print("the account has no password: use this API key (X-API-Key or Authorization: Bearer)")
    return 0


def rotate_signing_key(key_file: str, jwks_file: str) -> int:
    """Replace the signing key in `key_file` and write the key set (new key, previous key) to `jwks_file`.
    Tokens of the previous key keep verifying until they expire; the next rotation drops it (docs/deploy.md)."""
    import json
    from pathlib import Path

    from shared.keys import generate_signing_key_pem, public_jwk_for_private_pem, rotated_jwks

    key_path, jwks_path = Path(key_file), Path(jwks_file)
    current = key_path.read_text()
    new = generate_signing_key_pem()
    try:
        document = rotated_jwks(new, current, json.loads(jwks_path.read_text()))
    except ValueError as error:
        print(f"rotate-signing-key: {error}", file=sys.stderr)
        return 2
    # The key set first: verifiers that reload it accept the new key before anything is signed with it.
    jwks_path.write_text(json.dumps(document))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(new)
    os.chmod(key_path, 0o600)
    print(f"new signing key {public_jwk_for_private_pem(new)['kid']}; previous key "
          f"{public_jwk_for_private_pem(current)['kid']} kept for verification")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m functions.llm.manage")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("load-providers").add_argument("file")
    commands.add_parser("sync-models")
    commands.add_parser("admin").add_argument("email")
    rotate = commands.add_parser("rotate-signing-key")
    rotate.add_argument("--key-file", required=True, help="the PEM of the current signing key (replaced)")
    rotate.add_argument("--jwks-file", required=True, help="the current public key set (replaced)")
    args = parser.parse_args(argv)
    if args.command == "rotate-signing-key":
        return rotate_signing_key(args.key_file, args.jwks_file)
    if args.command == "load-providers":
        return load_providers(args.file)
    if args.command == "sync-models":
        return sync_models()
    return make_admin(args.email)


if __name__ == "__main__":
    sys.exit(main())
