"""Isolation matrix (issue 3, "Isolation and bad input") over every llm route that names a user-owned resource.

The routes come from `app.url_map`: every rule with a path argument is either covered here or listed in EXEMPT
with a reason, so a new route cannot be forgotten. One owner (a permanent account) gets real resources once per
module: a conversation with items, a function call and a branch, a live and a revoked share, a project with a
conversation in it, a live and a revoked API key. Each (method, rule) is then called by:

* another user's token, another user's API key (`X-API-Key` and `Authorization: Bearer sk_…`), a guest's token,
  another user's token with forged `X-User-ID` / `X-Principal-Id` / `X-Auth-Method` headers naming the owner:
  404 with exactly the body (bar request_id) the same caller gets for ids that never existed;
* another user, pointing at their own conversation but at the owner's item / share: 404 like a missing child;
* no credentials, and forged identity headers without credentials: 401 like for missing ids;

and the database (`snapshot()`) must be unchanged. The only column masked is `api_keys.last_used_at` of the
*caller's own* key: authenticating with a key legitimately records its use (at most every 5 minutes, see
shared/auth/principal.py); the key is used once before the matrix so in practice it does not move either.
`rate_limit_counters` (public share reads only) and `usage_records` (chat only) are not touched by these routes
and are compared in full.

The owner is checked separately on a fresh world per route (so destructive routes do not disturb each other):
the same paths built the same way must not be 404 for the owner. Minimal valid bodies are sent so that no route
rejects a request for its body before checking ownership.
"""
from __future__ import annotations

import uuid

import pytest

from shared import ids
from tests.conftest import Account

# Rules with a path argument that are deliberately not in the matrix.
EXEMPT = {
    "/v1/public/shares/<slug>": "public read of a share by its unguessable slug; no credentials by design",
    "/static/<path:filename>": "Flask's static files, no user data",
    "/v1/models/<path:model_id>": "model catalog, shared by every user",
    "/llm/v1/models/<path:model_id>": "model catalog, shared by every user",
    "/v1/models/catalogs/<path:catalog_id>": "model catalog, shared by every user",
    "/llm/v1/models/catalogs/<path:catalog_id>": "model catalog, shared by every user",
}
EXEMPT_PREFIXES = {
    "/v1/admin/": "admin routes (role-checked, not owner-scoped; covered by the admin tests)",
    "/llm/v1/admin/": "admin routes (role-checked, not owner-scoped; covered by the admin tests)",
}

# Minimal valid body per endpoint (the blueprint name without the /llm alias's `llm_` prefix).
BODIES = {
    "conversations.update_conversation": {"title": "stolen"},
    "conversations.branches.create_branch": {"name": "stolen"},
    "conversations.items.add_items": {"items": [{"type": "message", "role": "user", "content": "stolen"}]},
    "conversations.items.edit_item": {"content": "stolen"},
    "conversations.items.regenerate_item": {},
    "conversations.items.write_back_by_call_id": {"status": "completed", "output": "stolen"},
    "shares.create_share": {"scope": "conversation"},
    "projects.update_project": {"name": "stolen"},
}
# Arguments that name a child inside a parent conversation (for the "own parent, foreign child" case).
CHILD_ARGS = {"item_id", "share_id"}


def _endpoint(rule) -> str:
    return rule.endpoint.removeprefix("llm_")


def _exempt_reason(rule) -> str | None:
    if rule.rule in EXEMPT:
        return EXEMPT[rule.rule]
    for prefix, reason in EXEMPT_PREFIXES.items():
        if rule.rule.startswith(prefix):
            return reason
    return None


def owned_routes(app) -> list[tuple[str, str, str]]:
    """(method, rule, endpoint) of every rule with a path argument that is not exempt."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.arguments and _exempt_reason(rule) is None:
            found += [(method, rule.rule, _endpoint(rule)) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return sorted(found, key=lambda r: (r[1], r[0]))


def _build_app():
    """The session app, for parametrisation at collection time (rules do not depend on the database)."""
    import os
    import tempfile
    from pathlib import Path

    from functions.llm.app import create_app
    from functions.llm.settings import LlmSettings
    from shared.keys import ensure_dev_keys
    from shared.settings import from_env

    env = {**ensure_dev_keys(Path(tempfile.mkdtemp(prefix="isolation-keys-"))),
           "DATABASE_URL": "postgresql://collect@127.0.0.1:1/collect"}
    return create_app(from_env(LlmSettings, environ=env))


ROUTES = owned_routes(_build_app())
ROUTE_IDS = [f"{method} {rule}" for method, rule, _ in ROUTES]

# The covered rules, by resource, each with the status its owner gets (Jan's); a rule with an argument that is in
# none of these and not exempt fails the test.
SUCCESS_STATUS = {
    "conversations.get_conversation": 200, "conversations.update_conversation": 200,
    "conversations.delete_conversation": 200,
    "conversations.branches.list_branches": 200, "conversations.branches.create_branch": 201,
    "conversations.branches.get_branch": 200, "conversations.branches.delete_branch": 204,
    "conversations.branches.activate_branch": 200,
    "conversations.items.list_items": 200, "conversations.items.add_items": 200, "conversations.items.get_item": 200,
    "conversations.items.delete_item": 200, "conversations.items.edit_item": 200,
    "conversations.items.regenerate_item": 200, "conversations.items.write_back_by_call_id": 200,
    "shares.create_share": 201, "shares.list_conversation_shares": 200, "shares.revoke_conversation_share": 200,
    "shares.revoke_share": 200,
    "projects.get_project": 200, "projects.update_project": 200, "projects.delete_project": 200,
    "projects.list_project_conversations": 200,
    "usage.project_usage": 200,
    "auth.delete_api_key": 204,
}
COVERED_ENDPOINTS = set(SUCCESS_STATUS)


def test_every_rule_with_an_argument_is_covered_or_exempt(app):
    rules = [rule for rule in app.url_map.iter_rules() if rule.arguments]
    unknown = [rule.rule for rule in rules if _exempt_reason(rule) is None and _endpoint(rule) not in COVERED_ENDPOINTS]
    assert unknown == [], f"add these rules to the isolation matrix or to EXEMPT with a reason: {unknown}"
    # the matrix is what was enumerated at collection time (the same app factory)
    assert sorted(owned_routes(app)) == sorted(ROUTES)
    assert {endpoint for _, _, endpoint in ROUTES} == COVERED_ENDPOINTS
    assert len(ROUTES) == 2 * 26  # 26 method-routes, each also under the /llm alias


# The owner's world ----------------------------------------------------------------------------------------------

def _account(client, permanent: bool) -> Account:
    response = client.post("/auth/guest-login")
    assert response.status_code == 201, response.json
    account = Account(client, response.json)
    if permanent:
        upgraded = account.post("/auth/upgrade", json={"email": f"iso-{uuid.uuid4().hex[:10]}@example.com",
                                                       "password": "correct horse battery"})
        assert upgraded.status_code == 200, upgraded.json
    return account


def _ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    return response.json


def build_world(client, permanent: bool = True) -> dict:
    """An owner with one of every owned resource; returns the ids the routes name."""
    owner = _account(client, permanent)
    project = _ok(owner.post("/v1/projects", json={"name": f"Private {uuid.uuid4().hex[:6]}",
                                                  "instruction": "secret"}), 201)
    conv = _ok(owner.post("/v1/conversations", json={"title": "owner secret", "project_id": project["id"], "items": [
        {"type": "message", "role": "user", "content": "owner question"},
        {"type": "message", "role": "assistant", "content": "owner answer"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}]}))
    items = _ok(owner.get(f"/v1/conversations/{conv['id']}/items", query_string={"order": "asc"}))["data"]
    _ok(owner.post(f"/v1/conversations/{conv['id']}/branches", json={"name": "side"}), 201)
    revoked_share = _ok(owner.post(f"/v1/conversations/{conv['id']}/share", json={"scope": "conversation"}), 201)
    live_share = _ok(owner.post(f"/v1/conversations/{conv['id']}/share", json={"scope": "conversation"}), 201)
    revoked_key = _ok(owner.post("/auth/api-keys", json={"name": "revoked"}), 201)
    assert owner.delete(f"/auth/api-keys/{revoked_key['id']}").status_code == 204
    key = _ok(owner.post("/auth/api-keys", json={"name": "owner key"}), 201)
    return {
        "owner": owner, "conversation": conv, "project": project, "items": items, "key": key,
        "shares": {"live": live_share, "revoked": revoked_share}, "revoked_key": revoked_key,
        "args": {"conversation_id": conv["id"], "item_id": items[0]["id"], "name": "side", "call_id": "c1",
                 "share_id": live_share["id"], "project_id": project["id"], "key_id": key["id"]},
    }


def _fresh_like(value: str) -> str:
    """An id of the same shape that never existed."""
    prefix, sep, rest = value.rpartition("_")
    if sep:
        return ids.public_id(prefix, len(rest))
    return str(uuid.uuid4())


MISSING = {"name": "never-existed", "call_id": "never-existed"}


def missing_args(args: dict) -> dict:
    return {name: MISSING.get(name) or _fresh_like(value) for name, value in args.items()}


def path_of(rule: str, args: dict) -> str:
    path = rule
    for name, value in args.items():
        path = path.replace(f"<{name}>", value)
    assert "<" not in path, path
    return path


@pytest.fixture(scope="module")
def world(app):
    client = app.test_client()
    world = build_world(client)
    owner = world["owner"]
    other = _account(client, permanent=True)
    guest = _account(client, permanent=False)
    other_key = _ok(other.post("/auth/api-keys", json={"name": "other key"}), 201)
    # the key's first use records last_used_at; from now on it is not written again for 5 minutes
    _ok(client.get("/auth/me", headers={"X-API-Key": other_key["key"]}))
    # the other user's own resources, for the "own parent, foreign child" case and the lists
    own_conv = _ok(other.post("/v1/conversations", json={"title": "mine", "items": [
        {"type": "message", "role": "user", "content": "my question"},
        {"type": "message", "role": "assistant", "content": "my answer"}]}))
    _ok(other.post(f"/v1/conversations/{own_conv['id']}/share", json={"scope": "conversation"}), 201)
    own_project = _ok(other.post("/v1/projects", json={"name": "mine"}), 201)
    forged = {"X-User-ID": owner.user_id, "X-Principal-Id": owner.user_id, "X-Auth-Method": "apikey"}
    world["callers"] = {
        "other user's token": other.headers,
        "other user's API key (X-API-Key)": {"X-API-Key": other_key["key"]},
        "other user's API key (Bearer sk_)": {"Authorization": f"Bearer {other_key['key']}"},
        "a guest's token": guest.headers,
        "other user's token + forged identity headers": {**other.headers, **forged},
        "other user's token + forged gateway consumer headers": {
            **other.headers, **forged, "X-Consumer-Username": owner.user_id, "X-User-Subject": owner.user_id},
    }
    world["unauthenticated"] = {"no credentials": {}, "forged identity headers only": forged}
    world.update(client=client, other=other, guest=guest, other_key=other_key, own_conv=own_conv,
                 own_project=own_project)
    return world


def _masked(snap: dict, caller_key_id: str) -> dict:
    """The caller's own key's last_used_at is legitimately written by authenticating with it (see module doc)."""
    rows = []
    for row in snap["api_keys"]:
        mapping = dict(row._mapping)
        if str(mapping["id"]) == str(caller_key_id):
            mapping.pop("last_used_at")
        rows.append(mapping)
    return {**snap, "api_keys": rows}


def _without_request_id(response) -> tuple:
    body = response.get_json(silent=True)
    if isinstance(body, dict):
        assert body.pop("request_id", None) == response.headers.get("X-Request-Id")
    else:
        body = response.get_data(as_text=True)
    return response.status_code, response.mimetype, body


def _send(client, method, path, headers, endpoint):
    kwargs = {"json": BODIES[endpoint]} if endpoint in BODIES else {}
    response = client.open(path, method=method, headers=headers, **kwargs)
    response.get_data()
    response.close()
    return response


def _secrets(world) -> list[str]:
    """Every string that would betray the owner's data in another user's answer."""
    values = [world["owner"].user_id, world["conversation"]["id"], world["project"]["id"], world["key"]["id"],
              world["revoked_key"]["id"], world["key"]["key"], "owner secret", "owner question", "owner answer"]
    values += [item["id"] for item in world["items"]]
    for share in world["shares"].values():
        values += [share["id"], share["slug"]]
    return values


# The matrix -----------------------------------------------------------------------------------------------------

CALLERS = ["other user's token", "other user's API key (X-API-Key)", "other user's API key (Bearer sk_)",
           "a guest's token", "other user's token + forged identity headers",
           "other user's token + forged gateway consumer headers"]


def _variants(world, rule: str) -> list[dict]:
    """The owner's ids for this rule; a share or key route is also tried with the owner's revoked one (a 400
    "already revoked" to a stranger would reveal that it exists)."""
    args = world["args"]
    variants = [args]
    if "<share_id>" in rule:
        variants.append({**args, "share_id": world["shares"]["revoked"]["id"]})
    if "<key_id>" in rule:
        variants.append({**args, "key_id": world["revoked_key"]["id"]})
    return variants


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method, rule, endpoint", ROUTES, ids=ROUTE_IDS)
def test_a_non_owner_gets_the_not_found_answer_and_changes_nothing(world, snapshot, method, rule, endpoint, caller):
    client, headers = world["client"], world["callers"][caller]
    key_id = world["other_key"]["id"]
    before = _masked(snapshot(), key_id)
    for args in _variants(world, rule):
        names = {name: value for name, value in args.items() if f"<{name}>" in rule}
        foreign = _send(client, method, path_of(rule, names), headers, endpoint)
        missing = _send(client, method, path_of(rule, missing_args(names)), headers, endpoint)
        assert foreign.status_code == 404, (caller, foreign.status_code, foreign.get_data(as_text=True))
        assert _without_request_id(foreign) == _without_request_id(missing)
        text = foreign.get_data(as_text=True)
        assert not any(secret in text for secret in _secrets(world))
    assert _masked(snapshot(), key_id) == before


@pytest.mark.parametrize("method, rule, endpoint", [r for r in ROUTES if CHILD_ARGS & {
    a.strip("<>") for a in r[1].split("/") if a.startswith("<")} and "<conversation_id>" in r[1]],
    ids=[i for i, r in zip(ROUTE_IDS, ROUTES) if CHILD_ARGS & {
        a.strip("<>") for a in r[1].split("/") if a.startswith("<")} and "<conversation_id>" in r[1]])
def test_the_owners_item_or_share_under_ones_own_conversation_is_not_found(world, snapshot, method, rule, endpoint):
    """Another user names their own conversation and the owner's item or share: like an item that never existed."""
    other = world["other"]
    before = snapshot()
    for args in _variants(world, rule):
        names = {name: value for name, value in args.items() if f"<{name}>" in rule}
        foreign = {**names, "conversation_id": world["own_conv"]["id"]}
        missing = {**missing_args(names), "conversation_id": world["own_conv"]["id"]}
        got = _send(world["client"], method, path_of(rule, foreign), other.headers, endpoint)
        expected = _send(world["client"], method, path_of(rule, missing), other.headers, endpoint)
        assert got.status_code == 404, got.get_data(as_text=True)
        assert _without_request_id(got) == _without_request_id(expected)
    assert snapshot() == before


@pytest.mark.parametrize("caller", ["no credentials", "forged identity headers only"])
@pytest.mark.parametrize("method, rule, endpoint", ROUTES, ids=ROUTE_IDS)
def test_without_credentials_it_is_401(world, snapshot, method, rule, endpoint, caller):
    headers = world["unauthenticated"][caller]
    before = snapshot()
    names = {name: value for name, value in world["args"].items() if f"<{name}>" in rule}
    foreign = _send(world["client"], method, path_of(rule, names), headers, endpoint)
    missing = _send(world["client"], method, path_of(rule, missing_args(names)), headers, endpoint)
    assert foreign.status_code == 401, foreign.get_data(as_text=True)
    assert foreign.json["error"]["message"] == "authentication required"
    assert _without_request_id(foreign) == _without_request_id(missing)
    assert "X-User-ID" not in foreign.headers
    assert snapshot() == before


@pytest.mark.parametrize("caller", CALLERS)
def test_lists_show_none_of_the_owners_ids(world, snapshot, caller):
    client, headers = world["client"], world["callers"][caller]
    key_id = world["other_key"]["id"]
    before = _masked(snapshot(), key_id)
    own_conv, own_project = world["own_conv"]["id"], world["own_project"]["id"]
    lists = ["/v1/conversations", "/v1/projects", "/v1/shares", "/auth/api-keys", "/v1/users/me/export",
             "/v1/conversations?limit=100", "/v1/shares?include_revoked=true", "/llm/v1/conversations",
             "/llm/v1/projects", "/llm/v1/shares", "/v1/usage/me"]
    if caller != "a guest's token":  # the guest owns nothing to list inside
        lists += [f"/v1/projects/{own_project}/conversations", f"/v1/conversations/{own_conv}/items",
                  f"/v1/conversations/{own_conv}/items?branch=side", f"/v1/conversations/{own_conv}/branches",
                  f"/v1/conversations/{own_conv}/shares"]
    secrets = _secrets(world)
    for path in lists:
        response = client.get(path, headers=headers)
        text = response.get_data(as_text=True)
        assert response.status_code in (200, 404), (path, response.status_code, text)
        leaked = [secret for secret in secrets if secret in text]
        assert leaked == [], (path, leaked)
    # filters and cursors naming the owner's resources answer like ones that never existed
    project = world["project"]["id"]
    for path in ("/v1/conversations?project_id={}", "/v1/projects?after={}", "/v1/conversations?after={}",
                 "/v1/shares?after={}"):
        owner_id = project if "project" in path else world["conversation"]["id"]
        if "shares" in path:
            owner_id = world["shares"]["live"]["id"]
        foreign = client.get(path.format(owner_id), headers=headers)
        missing = client.get(path.format(_fresh_like(owner_id)), headers=headers)
        assert _without_request_id(foreign) == _without_request_id(missing), path
    assert _masked(snapshot(), key_id) == before


@pytest.mark.parametrize("caller", ["other user's token", "a guest's token"])
def test_bodies_naming_the_owners_project_are_refused_like_a_missing_one(world, snapshot, caller):
    client, headers = world["client"], world["callers"][caller]
    project = world["project"]["id"]
    before = snapshot()
    creates = [client.post("/v1/conversations", headers=headers, json={"title": "t", "project_id": p})
               for p in (project, _fresh_like(project))]
    assert creates[0].status_code == 404
    assert _without_request_id(creates[0]) == _without_request_id(creates[1])
    if caller == "other user's token":
        own = world["own_conv"]["id"]
        moves = [client.patch(f"/v1/conversations/{own}", headers=headers, json={"project_id": p})
                 for p in (project, _fresh_like(project))]
        assert moves[0].status_code == 404
        assert _without_request_id(moves[0]) == _without_request_id(moves[1])
        item = world["items"][1]["id"]  # the owner's assistant message
        shares = [client.post(f"/v1/conversations/{own}/share", headers=headers,
                              json={"scope": "item", "item_id": i}) for i in (item, _fresh_like(item))]
        assert shares[0].status_code in (400, 404)
        assert _without_request_id(shares[0]) == _without_request_id(shares[1])
    assert snapshot() == before


# The owner -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, rule, endpoint", ROUTES, ids=ROUTE_IDS)
def test_the_owner_reaches_every_route(app, method, rule, endpoint):
    """The same paths, built the same way on a fresh world, succeed for the owner with the route's own success
    status (so the matrix's 404s are about ownership, not about a wrong path, and an owner is never refused)."""
    world = build_world(app.test_client(), permanent=False)
    owner = world["owner"]
    names = {name: value for name, value in world["args"].items() if f"<{name}>" in rule}
    # a mutation once (with the token) is enough; reads also through the owner's own API key
    auths = [owner.headers] + ([{"X-API-Key": world["key"]["key"]}] if method == "GET" else [])
    for auth in auths:
        response = _send(owner.client, method, path_of(rule, names), auth, endpoint)
        assert response.status_code == SUCCESS_STATUS[endpoint], (response.status_code,
                                                                 response.get_data(as_text=True))
