"""Project routes (Jan's /v1/projects shapes and status codes)."""
from __future__ import annotations

from flask import Blueprint, request

from shared.auth import authenticated, current_principal
from shared.pagination import Page
from shared.protocol import UNSET
from shared.protocol.flask import body, paginated, returns
from functions.llm.projects.protocol import CreateProjectRequest, Project, ProjectList, UpdateProjectRequest
from functions.llm.projects.service import ProjectChanges
from functions.llm.services import services

bp = Blueprint("projects", __name__, url_prefix="/v1/projects")


@bp.get("")
@authenticated
@paginated()
@returns(ProjectList)
def list_projects(page: Page):
    """The caller's projects, most recently updated first; `next_cursor` pages (pass it back as `cursor`)."""
    cursor_param = "cursor" if request.args.get("cursor") else "after"
    cursor = request.args.get("cursor") or page.after
    return services().projects.list(current_principal().user_id, page, cursor, cursor_param)


@bp.post("")
@authenticated
@body(CreateProjectRequest)
@returns(Project, 201)
def create_project(body: CreateProjectRequest):
    """Create a project: `name` (1–120 characters, unique among your projects), `instruction`."""
    return services().projects.create(current_principal().user_id, body.name, body.instruction), 201


@bp.get("/<project_id>")
@authenticated
@returns(Project)
def get_project(project_id: str):
    """One of the caller's projects."""
    return services().projects.get(current_principal().user_id, project_id)


@bp.patch("/<project_id>")
@authenticated
@body(UpdateProjectRequest, optional=True)
@returns(Project)
def update_project(project_id: str, body: UpdateProjectRequest):
    """Rename, change the instruction, favourite, archive (`is_archived` sets or clears `archived_at`)."""
    changes = ProjectChanges(
        name=body.name if body.name is not UNSET else None,
        set_instruction=body.instruction is not UNSET,
        instruction=body.instruction if body.instruction is not UNSET else None,
        is_favorite=body.is_favorite,
        is_archived=body.is_archived,
    )
    return services().projects.update(current_principal().user_id, project_id, changes)


@bp.delete("/<project_id>")
@authenticated
def delete_project(project_id: str):
    """Soft delete; the project's conversations are kept, detached from it."""
    return services().projects.delete(current_principal().user_id, project_id)


@bp.get("/<project_id>/conversations")
@authenticated
@paginated()
def list_project_conversations(project_id: str, page: Page):
    """The project's conversations (conversation list shape, newest first)."""
    return services().projects.conversations(current_principal().user_id, project_id, page)
