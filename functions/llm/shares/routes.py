"""Share routes: management under /v1 (also served under /llm) and the public read, root only as in Jan."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from shared.auth import authenticated, current_principal
from shared.errors import BadRequest, Forbidden
from shared.pagination import Page
from shared.protocol.flask import body, paginated, returns
from shared.ratelimit import client_address
from functions.llm.services import services
from functions.llm.shares.protocol import MAX_BRANCH_LENGTH, CreateShareRequest, Share
from functions.llm.shares.service import ShareRequest

bp = Blueprint("shares", __name__, url_prefix="/v1")
public_bp = Blueprint("public_shares", __name__, url_prefix="/v1/public")

def _sharing_enabled() -> None:
    if not services().settings.conversation_sharing_enabled:
        raise Forbidden("conversation sharing is not enabled")


def _base_url() -> str:
    configured = services().settings.public_base_url
    return configured.rstrip("/") if configured else f"{request.scheme}://{request.host}"


def _include_revoked() -> bool:
    raw = request.args.get("include_revoked")
    if raw in (None, ""):
        return True  # Jan's default
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequest("include_revoked must be true or false", param="include_revoked")


def _share_request(body: CreateShareRequest) -> ShareRequest:
    branch = request.args.get("branch") or body.branch  # ?branch= wins, as in Jan
    if branch is not None and branch != "" and not (0 < len(branch) <= MAX_BRANCH_LENGTH):
        raise BadRequest("branch is not a valid branch name", param="branch")
    return ShareRequest(
        scope=body.scope,
        item_id=body.item_id or None,
        title=body.title or None,
        include_images=bool(body.include_images),
        include_context_messages=bool(body.include_context_messages),
        branch=branch.upper() if branch else None,
    )


@bp.post("/conversations/<conversation_id>/share")
@authenticated
@body(CreateShareRequest)
@returns(Share, 201)
def create_share(conversation_id: str, body: CreateShareRequest):
    """Share a conversation (or one assistant message) as a public, frozen snapshot; earlier shares are revoked."""
    _sharing_enabled()
    share_request = _share_request(body)
    principal = current_principal()
    body = services().shares.create(principal.user_id, principal.public_id, conversation_id, share_request,
                                    _base_url())
    return body, 201


@bp.get("/conversations/<conversation_id>/shares")
@authenticated
@paginated(default_limit=100, max_limit=100)
def list_conversation_shares(conversation_id: str, page: Page):
    """The conversation's shares, newest first (`include_revoked`, default true)."""
    _sharing_enabled()
    return services().shares.list_for_conversation(current_principal().user_id, conversation_id, page,
                                                   _include_revoked(), _base_url())


@bp.delete("/conversations/<conversation_id>/shares/<share_id>")
@authenticated
def revoke_conversation_share(conversation_id: str, share_id: str):
    """Revoke one of the conversation's shares."""
    _sharing_enabled()
    return services().shares.revoke(current_principal().user_id, share_id, conversation_id)


@bp.get("/shares")
@authenticated
@paginated(default_limit=100, max_limit=100)
def list_shares(page: Page):
    """All of the caller's shares, newest first (`include_revoked`, default true)."""
    _sharing_enabled()
    return services().shares.list_for_user(current_principal().user_id, page, _include_revoked(), _base_url())


@bp.delete("/shares/<share_id>")
@authenticated
def revoke_share(share_id: str):
    """Revoke one of the caller's shares."""
    _sharing_enabled()
    return services().shares.revoke(current_principal().user_id, share_id)


@public_bp.get("/shares/<slug>")
def public_share(slug: str):
    """A shared snapshot, without authentication (GET and HEAD; rate-limited per client address)."""
    shares = services().shares
    shares.limit_public_reads(client_address(request, services().settings.client_address_header))
    body = shares.public(slug, count_view=request.method != "HEAD")
    response = jsonify(body)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
