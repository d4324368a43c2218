"""Branches of a conversation (Jan's model): items carry a branch name; MAIN exists implicitly and every other
branch has a row. Forking copies a prefix of a branch under fresh item ids; swapping a branch to MAIN renames
the old MAIN to a `MAIN_<time>` backup, so nothing is ever lost.

Every change here runs in the caller's transaction after `owned(..., lock=True)`: the conversation row lock
serialises forks, swaps, appends and deletes of one conversation, so parallel requests never interleave (no
lost update, no duplicate sequence numbers) and names chosen under the lock are unique.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared import ids
from shared.db import Database
from shared.errors import BadRequest, Conflict, NotFound
from shared.domain.conversations.tables import conversation_branches, conversation_items, conversations
from shared.domain.conversations.access import owned
from shared.domain.conversations.shapes import branch_body
from shared.domain.conversations.validation import MAIN, MAX_BRANCH_DESCRIPTION_LENGTH

# Columns copied when an item is forked onto another branch (everything but identity and position).
_COPIED = [column.name for column in conversation_items.columns
           if column.name not in ("id", "public_id", "branch", "sequence_number")]


def unique_branch_name(conn, conversation_id: int, prefix: str) -> str:
    """`<prefix>_<yyyymmddhhmmss>` (UTC), with `_2`, `_3`, … when that name is taken: several forks within one
    second stay distinct. Unique because the caller holds the conversation lock."""
    base = f"{prefix}_{dt.datetime.now(dt.timezone.utc):%Y%m%d%H%M%S}"
    taken = set(conn.execute(select(conversation_branches.c.name).where(
        conversation_branches.c.conversation_id == conversation_id,
        (conversation_branches.c.name == base)
        | conversation_branches.c.name.startswith(base + "_", autoescape=True))).scalars())
    if base not in taken:
        return base
    suffix = 2
    while f"{base}_{suffix}" in taken:
        suffix += 1
    return f"{base}_{suffix}"


def branch_exists(conn, conversation_id: int, name: str) -> bool:
    if name == MAIN:
        return True
    return conn.execute(select(conversation_branches.c.id).where(
        conversation_branches.c.conversation_id == conversation_id,
        conversation_branches.c.name == name)).first() is not None


def fork(conn, conversation_id: int, source: str, name: str, *, through_sequence: int, description: str | None):
    """Create branch `name` holding copies (new `msg_` ids, sequence 1…n) of `source`'s items up to and including
    `through_sequence` (0: an empty branch). Returns the copied rows, oldest first."""
    source_rows = conn.execute(select(conversation_items).where(
        conversation_items.c.conversation_id == conversation_id, conversation_items.c.branch == source,
        conversation_items.c.sequence_number <= through_sequence)
        .order_by(conversation_items.c.sequence_number)).all() if through_sequence > 0 else []
    conn.execute(insert(conversation_branches).values(
        conversation_id=conversation_id, name=name, description=description, parent_branch=source,
        forked_at=func.now(), forked_from_item_id=source_rows[-1].public_id if source_rows else None))
    if not source_rows:
        return []
    copies = [{**{column: getattr(row, column) for column in _COPIED}, "public_id": ids.public_id("msg"),
               "branch": name, "sequence_number": position}
              for position, row in enumerate(source_rows, start=1)]
    rows = conn.execute(insert(conversation_items).returning(conversation_items), copies).all()
    return sorted(rows, key=lambda row: row.sequence_number)


def swap_to_main(conn, conversation_id: int, branch: str) -> str:
    """Make `branch` the new MAIN and the active branch; the old MAIN (row and items) becomes a `MAIN_<time>`
    backup, whose name is returned ("" when MAIN held nothing, as Jan)."""
    backup = unique_branch_name(conn, conversation_id, MAIN)
    renamed = conn.execute(update(conversation_branches).where(
        conversation_branches.c.conversation_id == conversation_id, conversation_branches.c.name == MAIN)
        .values(name=backup, updated_at=func.now())).rowcount
    moved = conn.execute(update(conversation_items).where(
        conversation_items.c.conversation_id == conversation_id, conversation_items.c.branch == MAIN)
        .values(branch=backup)).rowcount
    if not renamed:
        if moved:
            conn.execute(insert(conversation_branches).values(
                conversation_id=conversation_id, name=backup, description="Backup of original MAIN branch"))
        else:
            backup = ""
    conn.execute(update(conversation_branches).where(
        conversation_branches.c.conversation_id == conversation_id, conversation_branches.c.name == branch)
        .values(name=MAIN, updated_at=func.now()))
    conn.execute(update(conversation_items).where(
        conversation_items.c.conversation_id == conversation_id, conversation_items.c.branch == branch)
        .values(branch=MAIN))
    conn.execute(update(conversations).where(conversations.c.id == conversation_id)
                 .values(active_branch=MAIN, updated_at=func.now()))
    return backup


def item_counts(conn, conversation_id: int, names: list[str] | None = None) -> dict[str, int]:
    query = (select(conversation_items.c.branch, func.count()).where(
        conversation_items.c.conversation_id == conversation_id).group_by(conversation_items.c.branch))
    if names is not None:
        query = query.where(conversation_items.c.branch.in_(names))
    return dict(conn.execute(query).all())


def branch_row(conn, conversation_id: int, name: str):
    return conn.execute(select(conversation_branches).where(
        conversation_branches.c.conversation_id == conversation_id,
        conversation_branches.c.name == name)).first()


def describe(conn, conversation, name: str, *, active_branch: str | None = None) -> dict:
    """One branch's body; 404 when it does not exist (MAIN always does)."""
    row = branch_row(conn, conversation.id, name)
    if row is None and name != MAIN:
        raise NotFound("branch not found")
    count = item_counts(conn, conversation.id, [name]).get(name, 0)
    return branch_body(name, row, item_count=count, active_branch=active_branch or conversation.active_branch,
                       conversation=conversation)


class BranchStore:
    def __init__(self, db: Database):
        self.db = db

    def list(self, user_id: int, conversation_id: str) -> dict:
        """Every branch, MAIN first (always listed), then by creation. Three queries whatever the count."""
        with self.db.read() as conn:
            conversation = owned(conn, user_id, conversation_id)
            rows = conn.execute(select(conversation_branches).where(
                conversation_branches.c.conversation_id == conversation.id)
                .order_by(conversation_branches.c.created_at, conversation_branches.c.id)).all()
            counts = item_counts(conn, conversation.id)
        main = next((row for row in rows if row.name == MAIN), None)
        data = [branch_body(MAIN, main, item_count=counts.get(MAIN, 0), active_branch=conversation.active_branch,
                            conversation=conversation)]
        data += [branch_body(row.name, row, item_count=counts.get(row.name, 0),
                             active_branch=conversation.active_branch) for row in rows if row.name != MAIN]
        return {"object": "list", "data": data, "active_branch": conversation.active_branch}

    def get(self, user_id: int, conversation_id: str, name: str) -> dict:
        with self.db.read() as conn:
            return describe(conn, owned(conn, user_id, conversation_id), name)

    def create(self, user_id: int, conversation_id: str, name: str, *, parent_branch: str | None = None,
               fork_from_item_id: str | None = None, description: str | None = None) -> dict:
        """A new branch: a copy of `parent_branch` (default: the active one) up to and including
        `fork_from_item_id`, or empty without it (as Jan)."""
        if name == MAIN:
            raise BadRequest("cannot create branch named MAIN", param="name")
        if description is not None and len(description) > MAX_BRANCH_DESCRIPTION_LENGTH:
            raise BadRequest(f"description must be at most {MAX_BRANCH_DESCRIPTION_LENGTH} characters",
                             param="description")
        try:
            with self.db.transaction() as conn:
                conversation = owned(conn, user_id, conversation_id, lock=True)
                if branch_exists(conn, conversation.id, name):
                    raise Conflict("branch already exists", param="name")
                parent = parent_branch or conversation.active_branch
                if not branch_exists(conn, conversation.id, parent):
                    raise NotFound("branch not found", param="parent_branch")
                through = 0
                if fork_from_item_id:
                    through = conn.execute(select(conversation_items.c.sequence_number).where(
                        conversation_items.c.conversation_id == conversation.id,
                        conversation_items.c.branch == parent,
                        conversation_items.c.public_id == fork_from_item_id)).scalar()
                    if through is None:
                        raise NotFound("fork item not found", param="fork_from_item_id")
                fork(conn, conversation.id, parent, name, through_sequence=through, description=description)
                return describe(conn, conversation, name)
        except IntegrityError:  # the name was taken between the check and the insert (another path)
            raise Conflict("branch already exists", param="name") from None

    def delete(self, user_id: int, conversation_id: str, name: str) -> None:
        """Delete a branch and its items; MAIN and the active branch cannot be deleted."""
        if name == MAIN:
            raise BadRequest("cannot delete MAIN branch", param="branch")
        with self.db.transaction() as conn:
            conversation = owned(conn, user_id, conversation_id, lock=True)
            if name == conversation.active_branch:
                raise BadRequest("cannot delete active branch", param="branch")
            removed = conn.execute(delete(conversation_branches).where(
                conversation_branches.c.conversation_id == conversation.id,
                conversation_branches.c.name == name)).rowcount
            if not removed:
                raise NotFound("branch not found")
            conn.execute(delete(conversation_items).where(
                conversation_items.c.conversation_id == conversation.id, conversation_items.c.branch == name))

    def activate(self, user_id: int, conversation_id: str, name: str) -> dict:
        with self.db.transaction() as conn:
            conversation = owned(conn, user_id, conversation_id, lock=True)
            if not branch_exists(conn, conversation.id, name):
                raise NotFound("branch not found")
            conn.execute(update(conversations).where(conversations.c.id == conversation.id)
                         .values(active_branch=name, updated_at=func.now()))
        return {"active_branch": name, "message": "Branch activated successfully"}
