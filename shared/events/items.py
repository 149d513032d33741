"""Conversation items and their content parts.

`ConversationItem` is the loose shape (every field optional) used by client events and the
beta protocol. `GAConversationItem` is the GA item union, keyed by `type`: known GA item types
get their typed model, any other type falls back to `ConversationItem`.
"""

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag

from .common import EventModel, type_literal


class ContentPart(EventModel):
    """A content part of a message item (`input_text`, `output_audio`, `text`, ...)."""

    type: str | None = None
    text: str | None = None
    audio: str | None = None
    transcript: str | None = None
    image_url: str | None = None
    detail: str | None = None
    id: str | None = None


class ConversationItem(EventModel):
    """Any conversation item; the union of every item type's fields, all optional."""

    id: str | None = None
    type: str | None = None
    object: str | None = None
    status: str | None = None
    role: str | None = None
    content: list[ContentPart] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    server_label: str | None = None
    approval_request_id: str | None = None
    approve: bool | None = None
    reason: str | None = None
    tools: list[dict[str, Any]] | None = None
    error: dict[str, Any] | None = None


class _GAItem(EventModel):
    id: str | None = None
    object: str | None = None
    status: str | None = None


class MessageItem(_GAItem):
    type: Literal["message"]
    role: Literal["system", "user", "assistant"]
    content: list[ContentPart]


class FunctionCallItem(_GAItem):
    type: Literal["function_call"]
    name: str
    arguments: str
    call_id: str | None = None


class FunctionCallOutputItem(_GAItem):
    type: Literal["function_call_output"]
    call_id: str
    output: str


class McpApprovalRequestItem(EventModel):
    type: Literal["mcp_approval_request"]
    id: str
    name: str
    arguments: str
    server_label: str


class McpApprovalResponseItem(EventModel):
    type: Literal["mcp_approval_response"]
    id: str
    approval_request_id: str
    approve: bool
    reason: str | None = None


class McpToolInfo(EventModel):
    name: str
    input_schema: Any
    description: str | None = None
    annotations: Any = None


class McpListToolsItem(EventModel):
    type: Literal["mcp_list_tools"]
    server_label: str
    tools: list[McpToolInfo]
    id: str | None = None


class McpCallItem(EventModel):
    type: Literal["mcp_call"]
    id: str
    name: str
    arguments: str
    server_label: str
    approval_request_id: str | None = None
    output: str | None = None
    error: dict[str, Any] | None = None


_GA_ITEM_MODELS: tuple[type[EventModel], ...] = (
    MessageItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    McpApprovalRequestItem,
    McpApprovalResponseItem,
    McpListToolsItem,
    McpCallItem,
)
_GA_ITEM_TYPES = frozenset(type_literal(model) for model in _GA_ITEM_MODELS)


def _ga_item_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in _GA_ITEM_TYPES else "other"


GAConversationItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[McpApprovalRequestItem, Tag("mcp_approval_request")]
    | Annotated[McpApprovalResponseItem, Tag("mcp_approval_response")]
    | Annotated[McpListToolsItem, Tag("mcp_list_tools")]
    | Annotated[McpCallItem, Tag("mcp_call")]
    | Annotated[ConversationItem, Tag("other")],
    Discriminator(_ga_item_tag),
]
"""A GA conversation item: typed for the known `type`s, loose for any other."""
