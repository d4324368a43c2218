"""Project routes (Jan's /v1/projects shapes and status codes)."""
from __future__ import annotations

from flask import Blueprint, request

from shared.auth import authenticated, current_principal
from shared.body import bool_field, json_object
from shared.pagination import page_params
from functions.llm.projects.service import ProjectChanges, validate_instruction, validate_name
from functions.llm.services import services

bp = Blueprint("projects", __name__, url_prefix="/v1/projects")


@bp.get("")
@authenticated
def list_projects():
    """The caller's projects, most recently updated first; `next_cursor` pages (pass it back as `cursor`)."""
    page = page_params()
    cursor_param = "cursor" if request.args.get("cursor") else "after"
    cursor = request.args.get("cursor") or page.after
    return services().projects.list(current_principal().user_id, page, cursor, cursor_param)


@bp.post("")
@authenticated
def create_project():
    """Create a project: `name` (1–120 characters, unique among your projects), `instruction`."""
    body = json_object()
    name = validate_name(body.get("name"))
    instruction = validate_instruction(body.get("instruction"))
    return services().projects.create(current_principal().user_id, name, instruction), 201


@bp.get("/<project_id>")
@authenticated
def get_project(project_id: str):
    """One of the caller's projects."""
    return services().projects.get(current_principal().user_id, project_id)


@bp.patch("/<project_id>")
@authenticated
def update_project(project_id: str):
    """Rename, change the instruction, favourite, archive (`is_archived` sets or clears `archived_at`)."""
    body = json_object(optional=True)
    changes = ProjectChanges(
        name=validate_name(body["name"]) if "name" in body else None,
        set_instruction="instruction" in body,
        instruction=validate_instruction(body.get("instruction")),
        is_favorite=bool_field(body, "is_favorite"),
        is_archived=bool_field(body, "is_archived"),
    )
    return services().projects.update(current_principal().user_id, project_id, changes)


@bp.delete("/<project_id>")
@authenticated
def delete_project(project_id: str):
    """Soft delete; the project's conversations are kept, detached from it."""
    return services().projects.delete(current_principal().user_id, project_id)


@bp.get("/<project_id>/conversations")
@authenticated
def list_project_conversations(project_id: str):
    """The project's conversations (conversation list shape, newest first)."""
    return services().projects.conversations(current_principal().user_id, project_id, page_params())
