"""Helpers for the conversation, item, branch and title tests: the one error body, creating conversations,
rows inserted directly (projects and shares, owned by other modules), SQL statement counting."""
from __future__ import annotations

import contextlib

from sqlalchemy import event, func, insert, select

from shared import ids
from shared.errors import ERROR_TYPES
from shared.domain.conversations.tables import conversation_items, conversation_shares, conversations, projects
from shared.schema import users

BAD_BRANCH = "{} is not a valid branch name (1 to 64 letters, digits, '_', '.' or '-')"


def assert_error(response, status: int, message: str, *, code: str | None = None, param: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json == {
        "error": {"message": message, "type": ERROR_TYPES[status], "param": param, "code": code},
        "message": message,
        "request_id": response.headers["X-Request-Id"],
    }


def create(account, prefix: str = "", **body) -> dict:
    response = account.post(f"{prefix}/v1/conversations", json=body)
    assert response.status_code == 200, response.json
    return response.json


def user_items(count: int, start: int = 1) -> list[dict]:
    return [{"type": "message", "role": "user", "content": f"message {n}"} for n in range(start, start + count)]


def dialogue(turns: int) -> list[dict]:
    """user/assistant pairs: `question n` answered by `answer n`."""
    items = []
    for n in range(1, turns + 1):
        items.append({"role": "user", "content": f"question {n}"})
        items.append({"role": "assistant", "content": f"answer {n}"})
    return items


def texts(items: list[dict]) -> list[str]:
    return [item["content"][0]["text"] if item.get("content") else item["type"] for item in items]


def items_of(account, conversation_id: str, branch: str | None = None) -> list[dict]:
    query = {"order": "asc", "limit": 100, **({"branch": branch} if branch else {})}
    response = account.get(f"/v1/conversations/{conversation_id}/items", query_string=query)
    assert response.status_code == 200, response.json
    return response.json["data"]


def db(app):
    return app.extensions["jan"].db


def internal_user_id(app, account) -> int:
    with db(app).read() as conn:
        return conn.execute(select(users.c.id).where(users.c.public_id == account.user_id)).scalar_one()


def internal_conversation(app, public_id: str):
    with db(app).read() as conn:
        return conn.execute(select(conversations).where(conversations.c.public_id == public_id)).first()


def insert_project(app, account, name: str | None = None, *, deleted: bool = False) -> str:
    """A project row owned by `account` (the projects API is another module's; this keeps these tests apart)."""
    public_id = ids.public_id("proj")
    with db(app).transaction() as conn:
        conn.execute(insert(projects).values(public_id=public_id, user_id=internal_user_id(app, account),
                                             name=name or public_id, instruction="be helpful",
                                             **({"deleted_at": func.now()} if deleted else {})))
    return public_id


def insert_share(app, account, conversation_id: str) -> int:
    """A live share row of the conversation (the sharing API is another module's)."""
    conversation = internal_conversation(app, conversation_id)
    with db(app).transaction() as conn:
        return conn.execute(insert(conversation_shares).values(
            public_id=ids.share_id(), slug=ids.share_slug(), conversation_id=conversation.id,
            owner_user_id=internal_user_id(app, account), snapshot={"items": []})
            .returning(conversation_shares.c.id)).scalar_one()


def share_revoked_at(app, share_id: int):
    with db(app).read() as conn:
        return conn.execute(select(conversation_shares.c.revoked_at)
                            .where(conversation_shares.c.id == share_id)).scalar_one()


def stored_items(app, conversation_id: str):
    """Every item row of a conversation, any branch."""
    conversation = internal_conversation(app, conversation_id)
    with db(app).read() as conn:
        return conn.execute(select(conversation_items).where(
            conversation_items.c.conversation_id == conversation.id)
            .order_by(conversation_items.c.branch, conversation_items.c.sequence_number)).all()


@contextlib.contextmanager
def count_queries(app):
    """Every SQL statement the app's engine sends while the block runs."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engine = db(app).engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
