"""Project store (Jan's projects) and the project instruction that leads a project conversation's chat requests.

Lists are ordered by `updated_at` (most recently changed first, as Jan orders them), with the public id as the
tie-break, and paged with an opaque `next_cursor`: base64url of that sort key. Jan's cursor is the numeric row
id; ours never exposes a database integer.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import func, insert, literal, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from shared.times import unix as _unix
from shared import ids
from shared.db import Database
from shared.errors import BadRequest, Conflict, NotFound
from shared.pagination import Page, list_body
from shared.domain.conversations.tables import conversations, projects
from shared.domain.conversations import conversation_body

MAX_NAME_LENGTH = 120
MAX_INSTRUCTION_LENGTH = 32_768
NAME_UNIQUE_INDEX = "uq_projects_user_name_live"
PROJECT_ID = re.compile(r"proj_[0-9a-z]{16}")
PROJECT_PRIORITY = ("Project priority: These project-specific instructions have the highest priority. If any user "
                    "settings, style preferences, or other guidance conflict with these project instructions, you "
                    "must follow the project instructions.")

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_CURSOR_VERSION = "p1"
# Control characters: never in a name; in an instruction only tab, newline and carriage return.
_NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_INSTRUCTION_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def project_body(row) -> dict:
    """Jan's project shape (`instruction` and `archived_at` only when set)."""
    body = {"id": row.public_id, "object": "project", "name": row.name}
    if row.instruction is not None:
        body["instruction"] = row.instruction
    body["is_favorite"] = row.is_favorite
    body["is_archived"] = row.archived_at is not None
    if row.archived_at is not None:
        body["archived_at"] = _unix(row.archived_at)
    body["created_at"] = _unix(row.created_at)
    body["updated_at"] = _unix(row.updated_at)
    return body


def validate_name(value) -> str:
    if value is None:
        raise BadRequest("name is required", param="name")
    if not isinstance(value, str):
        raise BadRequest("name must be a string", param="name")
    name = value.strip()
    if not name:
        raise BadRequest("name must not be empty", param="name")
    if len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"name must be at most {MAX_NAME_LENGTH} characters", param="name")
    if _NAME_CONTROL.search(name):
        raise BadRequest("name must not contain control characters", param="name")
    return name


def validate_instruction(value) -> str | None:
    """None or "" clears the instruction."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("instruction must be a string", param="instruction")
    if len(value) > MAX_INSTRUCTION_LENGTH:
        raise BadRequest(f"instruction must be at most {MAX_INSTRUCTION_LENGTH} characters", param="instruction")
    if _INSTRUCTION_CONTROL.search(value):
        raise BadRequest("instruction must not contain control characters other than tab and newline",
                         param="instruction")
    return value if value.strip() else None


# Cursors ------------------------------------------------------------------------------------------------------

def encode_cursor(updated_at: dt.datetime, public_id: str) -> str:
    micros = (updated_at - _EPOCH) // dt.timedelta(microseconds=1)
    raw = f"{_CURSOR_VERSION}:{micros}:{public_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, param: str) -> tuple[dt.datetime, str]:
    invalid = BadRequest(f"{param} is not a valid cursor", param=param)
    if len(cursor) > 128 or not re.fullmatch(r"[A-Za-z0-9_-]+", cursor):
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    version, _, rest = raw.partition(":")
    micros, _, public_id = rest.partition(":")
    if version != _CURSOR_VERSION or not re.fullmatch(r"-?[0-9]{1,18}", micros) or not PROJECT_ID.fullmatch(public_id):
        raise invalid
    try:
        updated_at = _EPOCH + dt.timedelta(microseconds=int(micros))
    except OverflowError:
        raise invalid from None
    return updated_at, public_id


@dataclass(frozen=True)
class ProjectChanges:
    name: str | None = None
    set_instruction: bool = False
    instruction: str | None = None
    is_favorite: bool | None = None
    is_archived: bool | None = None


def _is_name_conflict(exc: IntegrityError) -> bool:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == NAME_UNIQUE_INDEX


class ProjectService:
    def __init__(self, db: Database):
        self.db = db

    @staticmethod
    def owned(conn, user_id: int, public_id: str):
        """The caller's live project, or 404 — the same answer for another user's id and a missing one."""
        row = conn.execute(select(projects).where(projects.c.public_id == public_id, projects.c.user_id == user_id,
                                                  projects.c.deleted_at.is_(None))).first()
        if row is None:
            raise NotFound("project not found")
        return row

    def create(self, user_id: int, name: str, instruction: str | None) -> dict:
        try:
            with self.db.transaction() as conn:
                row = conn.execute(insert(projects).values(
                    public_id=ids.public_id("proj"), user_id=user_id, name=name, instruction=instruction)
                    .returning(projects)).first()
        except IntegrityError as exc:
            if _is_name_conflict(exc):
                raise Conflict("a project with this name already exists", code="project_name_taken",
                               param="name") from None
            raise
        return project_body(row)

    def get(self, user_id: int, public_id: str) -> dict:
        with self.db.read() as conn:
            return project_body(self.owned(conn, user_id, public_id))

    def update(self, user_id: int, public_id: str, changes: ProjectChanges) -> dict:
        values: dict = {}
        if changes.name is not None:
            values["name"] = changes.name
        if changes.set_instruction:
            values["instruction"] = changes.instruction
        if changes.is_favorite is not None:
            values["is_favorite"] = changes.is_favorite
        if changes.is_archived is not None:
            values["archived_at"] = func.coalesce(projects.c.archived_at, func.now()) if changes.is_archived else None
        if not values:
            return self.get(user_id, public_id)
        values["updated_at"] = func.now()
        try:
            with self.db.transaction() as conn:
                row = conn.execute(update(projects).where(
                    projects.c.public_id == public_id, projects.c.user_id == user_id, projects.c.deleted_at.is_(None))
                    .values(**values).returning(projects)).first()
        except IntegrityError as exc:
            if _is_name_conflict(exc):
                raise Conflict("a project with this name already exists", code="project_name_taken",
                               param="name") from None
            raise
        if row is None:
            raise NotFound("project not found")
        return project_body(row)

    def delete(self, user_id: int, public_id: str) -> dict:
        """Soft delete. The project's conversations stay, detached from it (and from its instruction)."""
        with self.db.transaction() as conn:
            row = conn.execute(update(projects).where(
                projects.c.public_id == public_id, projects.c.user_id == user_id, projects.c.deleted_at.is_(None))
                .values(deleted_at=func.now(), updated_at=func.now()).returning(projects.c.id)).first()
            if row is None:
                raise NotFound("project not found")
            conn.execute(update(conversations).where(conversations.c.project_id == row.id)
                         .values(project_id=None, instruction_snapshot=None))
        return {"id": public_id, "object": "project", "deleted": True}

    def list(self, user_id: int, page: Page, cursor: str | None, cursor_param: str) -> dict:
        live = (projects.c.user_id == user_id) & projects.c.deleted_at.is_(None)
        key = tuple_(projects.c.updated_at, projects.c.public_id)
        with self.db.read() as conn:
            query = select(projects).where(live)
            if cursor:
                if PROJECT_ID.fullmatch(cursor):
                    anchor = conn.execute(select(projects.c.updated_at, projects.c.public_id)
                                          .where(live, projects.c.public_id == cursor)).first()
                    if anchor is None:
                        raise BadRequest(f"{cursor_param} does not name one of your projects", param=cursor_param)
                    anchor = (anchor.updated_at, anchor.public_id)
                else:
                    anchor = decode_cursor(cursor, cursor_param)
                query = query.where(key > tuple_(*map(literal, anchor)) if page.order == "asc"
                                    else key < tuple_(*map(literal, anchor)))
            if page.order == "asc":
                query = query.order_by(projects.c.updated_at.asc(), projects.c.public_id.asc())
            else:
                query = query.order_by(projects.c.updated_at.desc(), projects.c.public_id.desc())
            rows = conn.execute(query.limit(page.limit + 1)).all()
            total = conn.execute(select(func.count()).select_from(projects).where(live)).scalar_one()
        has_more = len(rows) > page.limit
        rows = rows[:page.limit]
        data = [project_body(row) for row in rows]
        body = {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}
        if has_more:  # Jan's list: next_cursor only when there is a next page
            body["next_cursor"] = encode_cursor(rows[-1].updated_at, rows[-1].public_id)
        body.update(has_more=has_more, total=total)
        return body

    def conversations(self, user_id: int, public_id: str, page: Page) -> dict:
        """The project's live conversations, in the conversation list's shape."""
        with self.db.read() as conn:
            project = self.owned(conn, user_id, public_id)
            live = ((conversations.c.project_id == project.id) & (conversations.c.user_id == user_id)
                    & conversations.c.deleted_at.is_(None))
            query = select(conversations, literal(project.public_id).label("project_public_id")).where(live)
            if page.after:
                anchor = conn.execute(select(conversations.c.id).where(
                    live, conversations.c.public_id == page.after)).scalar()
                if anchor is None:
                    raise BadRequest("after does not name a conversation of this project", param="after")
                query = query.where(conversations.c.id > anchor if page.order == "asc" else conversations.c.id < anchor)
            ordering = conversations.c.id.asc() if page.order == "asc" else conversations.c.id.desc()
            rows = conn.execute(query.order_by(ordering).limit(page.limit + 1)).all()
            total = conn.execute(select(func.count()).select_from(conversations).where(live)).scalar_one()
        has_more = len(rows) > page.limit
        return list_body([conversation_body(row) for row in rows[:page.limit]], has_more=has_more, total=total)


def project_messages(db: Database, conversation) -> list[dict]:
    """The system message a project conversation's chat requests start with (Jan §2.7): the conversation's
    instruction snapshot if it has one, else the project's current instruction, followed by Jan's priority
    note. Nothing for a conversation outside a live project or a project without an instruction. Marks the
    project as used."""
    project_id = getattr(conversation, "project_id", None)
    if project_id is None:
        return []
    with db.transaction() as conn:
        row = conn.execute(update(projects).where(
            projects.c.id == project_id, projects.c.user_id == conversation.user_id, projects.c.deleted_at.is_(None))
            .values(last_used_at=func.now()).returning(projects.c.instruction)).first()
    if row is None:
        return []
    instruction = getattr(conversation, "instruction_snapshot", None) or row.instruction
    if not instruction or not instruction.strip():
        return []
    return [{"role": "system", "content": f"{instruction}\n\n{PROJECT_PRIORITY}"}]
