"""Branches through HTTP against PostgreSQL: list (MAIN always), create (fork copies, names, 409 on duplicates),
get, activate (history and new items follow the active branch), delete (not MAIN, not the active branch),
unique names for swaps within one second, isolation, and truly parallel edits, regenerates and appends of one
conversation (threads against the live gunicorn+gevent server and the test client): every request either
succeeds or gets a clean 409, every branch is kept, no sequence number is handed out twice."""
from __future__ import annotations

import datetime as dt
import threading
import types

import httpx
import pytest

from tests.conftest import TEST_MODEL_ID
from tests.llm.conversation_support import (
    BAD_BRANCH,
    assert_error,
    create,
    dialogue,
    items_of,
    stored_items,
    texts,
    user_items,
)

pytestmark = pytest.mark.usefixtures("provider")


def branches(account, conversation_id: str) -> dict:
    response = account.get(f"/v1/conversations/{conversation_id}/branches")
    assert response.status_code == 200, response.json
    return response.json


def create_branch(account, conversation_id: str, **body):
    return account.post(f"/v1/conversations/{conversation_id}/branches", json=body)


# List and get -----------------------------------------------------------------------------------------------

def test_a_new_conversation_lists_main(guest):
    created = create(guest, items=user_items(2))
    body = branches(guest, created["id"])
    assert body == {"object": "list", "active_branch": "MAIN", "data": [{
        "name": "MAIN", "description": None, "parent_branch": None, "forked_at": None, "forked_from_item_id": None,
        "item_count": 2, "created_at": created["created_at"], "updated_at": body["data"][0]["updated_at"],
        "is_active": True}]}
    for name in ("MAIN", "main", "Main"):
        assert guest.get(f"/v1/conversations/{created['id']}/branches/{name}").json == body["data"][0]


def test_create_a_branch_forked_from_an_item(guest):
    created = create(guest, items=dialogue(2))
    main = items_of(guest, created["id"])
    response = create_branch(guest, created["id"], name="idea-1.b", fork_from_item_id=main[1]["id"],
                             description="what if")
    assert response.status_code == 201, response.json
    branch = response.json
    assert isinstance(branch.pop("forked_at"), int) and isinstance(branch.pop("created_at"), int)
    branch.pop("updated_at")
    assert branch == {"name": "idea-1.b", "description": "what if", "parent_branch": "MAIN",
                      "forked_from_item_id": main[1]["id"], "item_count": 2, "is_active": False}
    copies = items_of(guest, created["id"], branch="idea-1.b")
    assert texts(copies) == ["question 1", "answer 1"]
    assert [c["sequence_number"] for c in copies] == [1, 2] and {c["branch"] for c in copies} == {"idea-1.b"}
    assert not {c["id"] for c in copies} & {m["id"] for m in main}  # new ids
    assert items_of(guest, created["id"]) == main  # MAIN untouched, still active
    listed = branches(guest, created["id"])
    assert [(b["name"], b["item_count"], b["is_active"]) for b in listed["data"]] == [
        ("MAIN", 4, True), ("idea-1.b", 2, False)]
    assert guest.get(f"/v1/conversations/{created['id']}/branches/idea-1.b").json == listed["data"][1]


def test_create_without_a_fork_point_is_an_empty_branch_of_the_active_one(guest):
    created = create(guest, items=user_items(2))
    response = create_branch(guest, created["id"], name="scratch")
    assert response.status_code == 201
    assert (response.json["item_count"], response.json["parent_branch"]) == (0, "MAIN")
    nested = create_branch(guest, created["id"], name="nested", parent_branch="scratch")
    assert nested.json["parent_branch"] == "scratch"


@pytest.mark.parametrize("body, status, message, param", [
    ({}, 400, BAD_BRANCH.format("name"), "name"),
    ({"name": ""}, 400, BAD_BRANCH.format("name"), "name"),
    ({"name": "has space"}, 400, BAD_BRANCH.format("name"), "name"),
    ({"name": "a/b"}, 400, BAD_BRANCH.format("name"), "name"),
    ({"name": "ünïcode"}, 400, BAD_BRANCH.format("name"), "name"),
    ({"name": "b" * 65}, 400, BAD_BRANCH.format("name"), "name"),
    ({"name": 5}, 400, BAD_BRANCH.format("name"), "name"),
    ({"name": "MAIN"}, 400, "cannot create branch named MAIN", "name"),
    ({"name": "main"}, 400, "cannot create branch named MAIN", "name"),
    ({"name": "taken"}, 409, "branch already exists", "name"),
    ({"name": "ok", "parent_branch": "nowhere"}, 404, "branch not found", "parent_branch"),
    ({"name": "ok", "parent_branch": "bad name"}, 400, BAD_BRANCH.format("parent_branch"), "parent_branch"),
    ({"name": "ok", "fork_from_item_id": "msg_0000000000000000"}, 404, "fork item not found", "fork_from_item_id"),
    ({"name": "ok", "description": "d" * 1025}, 400, "description must be at most 1024 characters", "description"),
    ({"name": "ok", "description": 5}, 400, "description must be a string", "description"),
])
def test_invalid_branch_creation_changes_nothing(guest, snapshot, body, status, message, param):
    created = create(guest, items=user_items(2))
    assert create_branch(guest, created["id"], name="taken").status_code == 201
    before = snapshot()
    assert_error(create_branch(guest, created["id"], **body), status, message, param=param)
    assert snapshot() == before


def test_a_fork_point_must_be_on_the_parent_branch(guest, snapshot):
    created = create(guest, items=user_items(2))
    create_branch(guest, created["id"], name="empty")
    item = items_of(guest, created["id"])[0]["id"]
    before = snapshot()
    assert_error(create_branch(guest, created["id"], name="x", parent_branch="empty", fork_from_item_id=item), 404,
                 "fork item not found", param="fork_from_item_id")
    assert snapshot() == before


@pytest.mark.parametrize("name, status, message", [
    ("nowhere", 404, "branch not found"),
    ("b" * 65, 400, BAD_BRANCH.format("branch")),
    ("bad name", 400, BAD_BRANCH.format("branch")),
])
def test_get_activate_and_delete_of_unknown_or_bad_names(guest, snapshot, name, status, message):
    created = create(guest, items=user_items(1))
    path = f"/v1/conversations/{created['id']}/branches/{name}"
    before = snapshot()
    param = None if status == 404 else "branch"
    for response in (guest.get(path), guest.post(f"{path}/activate"), guest.delete(path)):
        assert_error(response, status, message, param=param)
    assert snapshot() == before


# Activate ---------------------------------------------------------------------------------------------------

def test_the_active_branch_drives_listing_new_items_and_chat_history(guest, upstream):
    created = create(guest, items=dialogue(2))
    fork_point = items_of(guest, created["id"])[1]["id"]
    create_branch(guest, created["id"], name="alt", fork_from_item_id=fork_point)
    response = guest.post(f"/v1/conversations/{created['id']}/branches/alt/activate")
    assert response.status_code == 200
    assert response.json == {"active_branch": "alt", "message": "Branch activated successfully"}
    assert branches(guest, created["id"])["active_branch"] == "alt"
    assert texts(items_of(guest, created["id"])) == ["question 1", "answer 1"]
    guest.post(f"/v1/conversations/{created['id']}/items", json={"items": [{"role": "user", "content": "alt q"}]})
    assert [i["branch"] for i in items_of(guest, created["id"])] == ["alt"] * 3
    guest.post("/v1/chat/completions", json={"model": TEST_MODEL_ID, "conversation": created["id"],
                                             "messages": [{"role": "user", "content": "on alt"}]})
    assert upstream.requests[-1].body["messages"] == [
        {"role": "user", "content": "question 1"}, {"role": "assistant", "content": "answer 1"},
        {"role": "user", "content": "alt q"}, {"role": "user", "content": "on alt"}]
    assert len(items_of(guest, created["id"], branch="MAIN")) == 4
    back = guest.post(f"/v1/conversations/{created['id']}/branches/main/activate").json
    assert back == {"active_branch": "MAIN", "message": "Branch activated successfully"}


def test_an_edit_on_a_side_branch_becomes_main_and_keeps_both(guest):
    created = create(guest, items=dialogue(2))
    create_branch(guest, created["id"], name="alt", fork_from_item_id=items_of(guest, created["id"])[2]["id"])
    guest.post(f"/v1/conversations/{created['id']}/branches/alt/activate")
    target = items_of(guest, created["id"])[2]["id"]
    body = guest.post(f"/v1/conversations/{created['id']}/items/{target}/edit", json={"content": "edited"}).json
    assert body["new_branch"]["parent_branch"] == "alt"
    listed = branches(guest, created["id"])
    assert listed["active_branch"] == "MAIN"
    assert {b["name"]: b["item_count"] for b in listed["data"]} == {
        "MAIN": 3, "alt": 3, body["old_main_backup"]: 4}
    assert texts(items_of(guest, created["id"])) == ["question 1", "answer 1", "edited"]


# Delete -----------------------------------------------------------------------------------------------------

def test_delete_a_branch_and_its_items(app, guest):
    created = create(guest, items=user_items(2))
    create_branch(guest, created["id"], name="gone", fork_from_item_id=items_of(guest, created["id"])[1]["id"])
    response = guest.delete(f"/v1/conversations/{created['id']}/branches/gone")
    assert response.status_code == 204 and response.get_data() == b""
    assert [b["name"] for b in branches(guest, created["id"])["data"]] == ["MAIN"]
    assert {row.branch for row in stored_items(app, created["id"])} == {"MAIN"}
    assert_error(guest.get(f"/v1/conversations/{created['id']}/branches/gone"), 404, "branch not found")


def test_main_and_the_active_branch_cannot_be_deleted(guest, snapshot):
    created = create(guest, items=user_items(2))
    create_branch(guest, created["id"], name="side")
    guest.post(f"/v1/conversations/{created['id']}/branches/side/activate")
    before = snapshot()
    for name in ("MAIN", "main"):
        assert_error(guest.delete(f"/v1/conversations/{created['id']}/branches/{name}"), 400,
                     "cannot delete MAIN branch", param="branch")
    assert_error(guest.delete(f"/v1/conversations/{created['id']}/branches/side"), 400,
                 "cannot delete active branch", param="branch")
    assert snapshot() == before


# Names ------------------------------------------------------------------------------------------------------

class _FrozenClock(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=tz)


def test_swaps_within_one_second_get_distinct_names(guest, monkeypatch):
    from shared.domain.conversations import branches as module

    monkeypatch.setattr(module, "dt", types.SimpleNamespace(datetime=_FrozenClock, timezone=dt.timezone))
    created = create(guest, items=dialogue(2))
    backups = []
    for n in range(3):
        target = items_of(guest, created["id"])[2]["id"]
        body = guest.post(f"/v1/conversations/{created['id']}/items/{target}/edit", json={"content": f"e{n}"}).json
        backups.append(body["old_main_backup"])
    last = items_of(guest, created["id"])[-1]["id"]
    backups.append(guest.delete(f"/v1/conversations/{created['id']}/items/{last}").json["old_main_backup"])
    assert backups == ["MAIN_20300102030405", "MAIN_20300102030405_2", "MAIN_20300102030405_3",
                       "MAIN_20300102030405_4"]
    listed = branches(guest, created["id"])["data"]
    assert listed[0]["name"] == "MAIN"
    assert {b["name"]: b["item_count"] for b in listed} == {"MAIN": 2, **dict(zip(backups, [4, 3, 3, 3]))}


# Isolation --------------------------------------------------------------------------------------------------

def test_every_branch_route_answers_404_for_another_users_conversation(guest, new_guest, snapshot):
    created = create(guest, items=user_items(2))
    create_branch(guest, created["id"], name="side")
    other = new_guest()
    before = snapshot()
    for conversation_id in (created["id"], "conv_0000000000000000"):
        path = f"/v1/conversations/{conversation_id}/branches"
        for response in (other.get(path), other.post(path, json={"name": "mine"}), other.get(f"{path}/side"),
                         other.get(f"{path}/MAIN"), other.delete(f"{path}/side"),
                         other.post(f"{path}/side/activate")):
            assert_error(response, 404, "conversation not found")
    assert snapshot() == before


def test_branch_routes_are_served_under_llm(guest):
    created = create(guest, items=user_items(2))
    path = f"/llm/v1/conversations/{created['id']}/branches"
    assert guest.post(path, json={"name": "x"}).status_code == 201
    assert guest.get(path).json["data"][1]["name"] == "x"
    assert guest.get(f"{path}/x").status_code == 200
    assert guest.post(f"{path}/x/activate").status_code == 200
    assert guest.post(f"{path}/MAIN/activate").status_code == 200
    assert guest.delete(f"{path}/x").status_code == 204


# Parallel ---------------------------------------------------------------------------------------------------

PARALLEL = 6


def run_together(count: int, work) -> list:
    """Run work(n) in `count` threads released at once; the results in thread order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(n):
        barrier.wait()
        try:
            results[n] = work(n)
        except Exception as exc:  # surfaced by the assertions below
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def assert_consistent(app, conversation_id: str):
    rows = stored_items(app, conversation_id)
    by_branch: dict[str, list[int]] = {}
    for row in rows:
        by_branch.setdefault(row.branch, []).append(row.sequence_number)
    for branch, numbers in by_branch.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), (branch, numbers)
    return by_branch


@pytest.fixture
def live_guest(live_llm):
    with httpx.Client(base_url=live_llm, timeout=30) as client:
        token = client.post("/auth/guest-login").json()["access_token"]
    return live_llm, {"Authorization": f"Bearer {token}"}


def test_parallel_edits_of_one_item_all_succeed_and_every_main_is_kept(app, live_guest):
    """Each edit forks from the item's own branch (after the first, the backup it was moved to) and swaps to
    MAIN under the conversation's lock: no lost update, no half-swapped state."""
    base, headers = live_guest
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        created = client.post("/v1/conversations", json={"items": dialogue(2)}).json()
        original = client.get(f"/v1/conversations/{created['id']}/items", params={"order": "asc"}).json()["data"]

    def edit(n):
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            return client.post(f"/v1/conversations/{created['id']}/items/{original[2]['id']}/edit",
                               json={"content": f"edit {n}"})

    responses = run_together(PARALLEL, edit)
    assert all(isinstance(r, httpx.Response) for r in responses), responses
    assert [r.status_code for r in responses] == [200] * PARALLEL, [r.text for r in responses]
    backups = {r.json()["old_main_backup"] for r in responses}
    assert len(backups) == PARALLEL
    by_branch = assert_consistent(app, created["id"])
    assert set(by_branch) == backups | {"MAIN"}
    # the original four items survive in one backup; every MAIN is the first answer plus one edit
    assert sorted(len(numbers) for numbers in by_branch.values()) == [3] * PARALLEL + [4]


def test_parallel_regenerates_all_succeed_and_every_main_is_kept(app, live_guest):
    base, headers = live_guest
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        created = client.post("/v1/conversations", json={"items": dialogue(2)}).json()
        answer = client.get(f"/v1/conversations/{created['id']}/items").json()["data"][0]["id"]

    def regenerate(n):
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            return client.post(f"/v1/conversations/{created['id']}/items/{answer}/regenerate")

    responses = run_together(PARALLEL, regenerate)
    assert [r.status_code for r in responses] == [200] * PARALLEL, [getattr(r, "text", r) for r in responses]
    backups = {r.json()["old_main_backup"] for r in responses}
    assert len(backups) == PARALLEL  # every swap made its own backup: no lost update
    by_branch = assert_consistent(app, created["id"])
    assert set(by_branch) == backups | {"MAIN"}
    assert len(by_branch["MAIN"]) == 3
    assert sorted(len(numbers) for numbers in by_branch.values()) == [3] * PARALLEL + [4]


def test_parallel_appends_through_the_test_client_never_share_a_sequence_number(app, guest):
    created = create(guest, items=user_items(1))

    def append(n):
        client = app.test_client()
        with client.post(f"/v1/conversations/{created['id']}/items", headers=guest.headers,
                         json={"items": user_items(3, start=10 * n)}) as response:
            return response.status_code

    assert run_together(PARALLEL, append) == [200] * PARALLEL
    numbers = assert_consistent(app, created["id"])["MAIN"]
    assert len(numbers) == 1 + 3 * PARALLEL
    # each request's items stay together, in order
    stored = texts(items_of(guest, created["id"]))
    for n in range(PARALLEL):
        start = stored.index(f"message {10 * n}")
        assert stored[start:start + 3] == [f"message {10 * n + k}" for k in range(3)]
