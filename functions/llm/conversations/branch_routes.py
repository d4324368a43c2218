"""Branch routes: `/v1/conversations/{id}/branches…` (nested in the conversations blueprint; Jan's shapes)."""
from __future__ import annotations

from flask import Blueprint

from shared.auth import authenticated, current_principal
from shared.protocol.flask import body, returns
from shared.domain.conversations import branch_name
from functions.llm.conversations.protocol import Branch, CreateBranchRequest
from functions.llm.services import services

bp = Blueprint("branches", __name__, url_prefix="/<conversation_id>/branches")


def _branches():
    return services().conversations.branches


@bp.get("")
@authenticated
def list_branches(conversation_id: str):
    """Every branch (MAIN always listed) and which one is active."""
    return _branches().list(current_principal().user_id, conversation_id)


@bp.post("")
@authenticated
@body(CreateBranchRequest)
@returns(Branch, 201)
def create_branch(conversation_id: str, body: CreateBranchRequest):
    """Create a branch: `{name, parent_branch?, fork_from_item_id?, description?}`."""
    name = branch_name(body.name, param="name")
    parent = body.parent_branch
    created = _branches().create(
        current_principal().user_id, conversation_id, name,
        parent_branch=branch_name(parent, param="parent_branch") if parent not in (None, "") else None,
        fork_from_item_id=body.fork_from_item_id or None,
        description=body.description,
    )
    return created, 201


@bp.get("/<name>")
@authenticated
@returns(Branch)
def get_branch(conversation_id: str, name: str):
    """One branch."""
    return _branches().get(current_principal().user_id, conversation_id, branch_name(name))


@bp.delete("/<name>")
@authenticated
def delete_branch(conversation_id: str, name: str):
    """Delete a branch and its items (not MAIN, not the active branch)."""
    _branches().delete(current_principal().user_id, conversation_id, branch_name(name))
    return "", 204


@bp.post("/<name>/activate")
@authenticated
def activate_branch(conversation_id: str, name: str):
    """Make a branch the active one (chat history and new items use it)."""
    return _branches().activate(current_principal().user_id, conversation_id, branch_name(name))
