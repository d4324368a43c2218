"""Project bodies and responses (Jan's /v1/projects shapes)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from shared.protocol import UNSET, RequestModel, ResponseModel, UnsetType
from functions.llm.projects.service import MAX_INSTRUCTION_LENGTH, MAX_NAME_LENGTH, validate_instruction, validate_name

# Checked by validate_name / validate_instruction (control characters, trimming), which name their own errors.
Name = Annotated[Any, Meta(extra_json_schema={"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH})]
Instruction = Annotated[Any, Meta(description="null or \"\" clears it",
                                  extra_json_schema={"type": ["string", "null"], "maxLength": MAX_INSTRUCTION_LENGTH})]


class CreateProjectRequest(RequestModel):
    name: Name
    instruction: Instruction = None

    def __post_init__(self):
        super().__post_init__()
        self.name = validate_name(self.name)
        self.instruction = validate_instruction(self.instruction)


class UpdateProjectRequest(RequestModel):
    """Only the fields sent change; `is_archived` sets or clears `archived_at`."""

    name: Name | UnsetType = UNSET
    instruction: Instruction | UnsetType = UNSET
    is_favorite: bool | None = None
    is_archived: bool | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.name is not UNSET:
            self.name = validate_name(self.name)
        if self.instruction is not UNSET:
            self.instruction = validate_instruction(self.instruction)


class Project(ResponseModel):
    """`instruction` and `archived_at` only when set."""

    id: str
    object: Literal["project"]
    name: str
    is_favorite: bool
    is_archived: bool
    created_at: int
    updated_at: int
    instruction: str | None = None
    archived_at: int | None = None


class ProjectList(ResponseModel):
    object: Literal["list"]
    data: list[Project]
    first_id: str | None
    last_id: str | None
    has_more: bool
    next_cursor: str | None = None
    total: int | None = None
