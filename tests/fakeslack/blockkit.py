"""Server-side Block Kit checks, modelled on what real Slack rejects.

slack_sdk's model classes validate only part of this (and not at all when the app
passes plain dicts), so the fake re-checks every payload the way Slack does.
Each problem is reported in Slack's ``response_metadata.messages`` style:
``"[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"``.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_VIEW_BYTES = 250 * 1024
# Undocumented: chat.postMessage/chat.update answer `msg_blocks_too_long` once the text
# inside the blocks adds up to roughly 12-13k characters (bolt-js#2509, #2867; one report
# was rejected at 11,341). Tests may lower this on the FakeSlack instance to be stricter.
MESSAGE_BLOCKS_TEXT_LIMIT = 12_000
MARKDOWN_BLOCKS_TEXT_LIMIT = 12_000  # documented, cumulative over `markdown` blocks

_BLOCK_TYPES = {
    "actions",
    "context",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "markdown",
    "rich_text",
    "section",
    "video",
    "call",
    "table",
    "context_actions",
}
_SELECT_PLACEHOLDER_ONLY = {
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
}
_INPUT_ELEMENTS = {
    "plain_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
    "static_select",
    "multi_static_select",
    "checkboxes",
    "radio_buttons",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "rich_text_input",
    "file_input",
} | _SELECT_PLACEHOLDER_ONLY
_ACTION_ELEMENTS = {
    "button",
    "overflow",
    "static_select",
    "multi_static_select",
    "checkboxes",
    "radio_buttons",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "workflow_button",
    "plain_text_input",
    "rich_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
} | _SELECT_PLACEHOLDER_ONLY
_ACCESSORY_ELEMENTS = {
    "button",
    "overflow",
    "static_select",
    "multi_static_select",
    "checkboxes",
    "radio_buttons",
    "datepicker",
    "timepicker",
    "image",
    "workflow_button",
} | _SELECT_PLACEHOLDER_ONLY


def _err(message: str, pointer: str) -> str:
    return f"[ERROR] {message} [json-pointer:{pointer}]"


class _Checker:
    """Collects problems for one message or view."""

    def __init__(self, surface: str) -> None:
        self.surface = surface  # "message", "modal" or "home"
        self.problems: list[str] = []

    def add(self, message: str, pointer: str) -> None:
        self.problems.append(_err(message, pointer))

    # -- primitives ---------------------------------------------------------------
    def string(
        self, value: Any, ptr: str, *, max_len: int, min_len: int = 0, required: bool = False
    ) -> None:
        if value is None:
            if required:
                self.add("missing required field", ptr)
            return
        if not isinstance(value, str):
            self.add("must be a string", ptr)
        elif len(value) < min_len:
            self.add(f"must be more than {min_len - 1} characters", ptr)
        elif len(value) > max_len:
            self.add(f"must be less than {max_len + 1} characters", ptr)

    def text(
        self, obj: Any, ptr: str, *, max_len: int, plain_only: bool = False, required: bool = True
    ) -> None:
        if obj is None:
            if required:
                self.add("missing required field", ptr)
            return
        if not isinstance(obj, dict):
            self.add("must be a text object", ptr)
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn"):
            self.add("must be a valid enum value", f"{ptr}/type")
        elif plain_only and kind != "plain_text":
            self.add("must be a valid enum value (plain_text)", f"{ptr}/type")
        self.string(obj.get("text"), f"{ptr}/text", max_len=max_len, min_len=1, required=True)

    def items(self, value: Any, ptr: str, *, max_items: int, min_items: int = 1) -> list[Any]:
        if not isinstance(value, list):
            self.add("must be an array", ptr)
            return []
        if len(value) < min_items:
            self.add(f"must provide at least {min_items} items", ptr)
        if len(value) > max_items:
            self.add(f"no more than {max_items} items allowed", ptr)
        return value

    # -- composition objects ---------------------------------------------------------
    def option(self, opt: Any, ptr: str, *, plain_only: bool) -> None:
        if not isinstance(opt, dict):
            self.add("must be an option object", ptr)
            return
        self.text(opt.get("text"), f"{ptr}/text", max_len=75, plain_only=plain_only)
        self.string(opt.get("value"), f"{ptr}/value", max_len=150, min_len=1, required=True)
        self.text(
            opt.get("description"),
            f"{ptr}/description",
            max_len=75,
            plain_only=plain_only,
            required=False,
        )
        self.string(opt.get("url"), f"{ptr}/url", max_len=3000)

    def options(
        self,
        el: dict[str, Any],
        ptr: str,
        *,
        max_items: int,
        min_items: int = 1,
        plain_only: bool = True,
        groups_allowed: bool = False,
    ) -> None:
        if groups_allowed and "option_groups" in el:
            if "options" in el:
                self.add("cannot have both options and option_groups", ptr)
            for gi, group in enumerate(
                self.items(el["option_groups"], f"{ptr}/option_groups", max_items=100)
            ):
                gptr = f"{ptr}/option_groups/{gi}"
                if not isinstance(group, dict):
                    self.add("must be an option group", gptr)
                    continue
                self.text(group.get("label"), f"{gptr}/label", max_len=75, plain_only=True)
                for oi, opt in enumerate(
                    self.items(group.get("options"), f"{gptr}/options", max_items=100)
                ):
                    self.option(opt, f"{gptr}/options/{oi}", plain_only=plain_only)
            return
        for oi, opt in enumerate(
            self.items(
                el.get("options"), f"{ptr}/options", max_items=max_items, min_items=min_items
            )
        ):
            self.option(opt, f"{ptr}/options/{oi}", plain_only=plain_only)

    def confirm(self, obj: Any, ptr: str) -> None:
        if obj is None:
            return
        if not isinstance(obj, dict):
            self.add("must be a confirm object", ptr)
            return
        self.text(obj.get("title"), f"{ptr}/title", max_len=100, plain_only=True)
        self.text(obj.get("text"), f"{ptr}/text", max_len=300)
        self.text(obj.get("confirm"), f"{ptr}/confirm", max_len=30, plain_only=True)
        self.text(obj.get("deny"), f"{ptr}/deny", max_len=30, plain_only=True)
        if obj.get("style") not in (None, "primary", "danger"):
            self.add("must be a valid enum value", f"{ptr}/style")

    # -- elements -----------------------------------------------------------------------
    def element(self, el: Any, ptr: str, *, allowed: set[str], in_input: bool = False) -> None:
        if not isinstance(el, dict):
            self.add("must be an element object", ptr)
            return
        kind = el.get("type")
        if kind not in allowed:
            self.add(f"unsupported type: {kind}", f"{ptr}/type")
            return
        self.string(el.get("action_id"), f"{ptr}/action_id", max_len=255, min_len=1)
        self.confirm(el.get("confirm"), f"{ptr}/confirm")
        if "placeholder" in el:
            self.text(el["placeholder"], f"{ptr}/placeholder", max_len=150, plain_only=True)
        if kind == "button":
            self.text(el.get("text"), f"{ptr}/text", max_len=75, plain_only=True)
            self.string(el.get("value"), f"{ptr}/value", max_len=2000)
            self.string(el.get("url"), f"{ptr}/url", max_len=3000)
            if el.get("style") not in (None, "primary", "danger"):
                self.add("must be a valid enum value", f"{ptr}/style")
        elif kind in ("static_select", "multi_static_select"):
            self.options(el, ptr, max_items=100, groups_allowed=True)
        elif kind == "overflow":
            self.options(el, ptr, max_items=5, min_items=2)
        elif kind in ("checkboxes", "radio_buttons"):
            self.options(el, ptr, max_items=10, plain_only=False)
        elif kind == "datepicker":
            date = el.get("initial_date")
            if date is not None and not (
                isinstance(date, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", date)
            ):
                self.add("must match the format YYYY-MM-DD", f"{ptr}/initial_date")
        elif kind == "timepicker":
            time_ = el.get("initial_time")
            if time_ is not None and not (
                isinstance(time_, str) and re.fullmatch(r"\d{2}:\d{2}", time_)
            ):
                self.add("must match the format HH:mm", f"{ptr}/initial_time")
        elif kind == "plain_text_input":
            for key, low in (("min_length", 0), ("max_length", 1)):
                value = el.get(key)
                if value is not None and not (isinstance(value, int) and low <= value <= 3000):
                    self.add(f"must be between {low} and 3000", f"{ptr}/{key}")
            self.string(el.get("initial_value"), f"{ptr}/initial_value", max_len=3000)
        elif kind == "image":
            self.image(el, ptr)
        elif kind == "file_input":
            if self.surface != "modal" or not in_input:
                self.add("file_input is only allowed in input blocks in modals", f"{ptr}/type")
            max_files = el.get("max_files")
            if max_files is not None and not (isinstance(max_files, int) and 1 <= max_files <= 10):
                self.add("must be between 1 and 10", f"{ptr}/max_files")

    def image(self, obj: dict[str, Any], ptr: str) -> None:
        if "image_url" not in obj and "slack_file" not in obj:
            self.add("must provide either image_url or slack_file", ptr)
        self.string(obj.get("image_url"), f"{ptr}/image_url", max_len=3000)
        self.string(obj.get("alt_text"), f"{ptr}/alt_text", max_len=2000, min_len=1, required=True)

    # -- blocks ---------------------------------------------------------------------------
    def blocks(self, blocks: Any, ptr: str, *, max_blocks: int) -> None:
        seen_block_ids: set[str] = set()
        markdown_total = 0
        for i, block in enumerate(self.items(blocks, ptr, max_items=max_blocks, min_items=0)):
            bptr = f"{ptr}/{i}"
            if not isinstance(block, dict):
                self.add("must be a block object", bptr)
                continue
            kind = block.get("type")
            if kind not in _BLOCK_TYPES:
                self.add(f"unsupported type: {kind}", f"{bptr}/type")
                continue
            block_id = block.get("block_id")
            if block_id is not None:
                self.string(block_id, f"{bptr}/block_id", max_len=255, min_len=1)
                if block_id in seen_block_ids:
                    self.add(f"duplicate block_id: {block_id}", f"{bptr}/block_id")
                seen_block_ids.add(block_id)
            if kind == "markdown":
                self.string(
                    block.get("text"), f"{bptr}/text", max_len=12_000, min_len=1, required=True
                )
                if isinstance(block.get("text"), str):
                    markdown_total += len(block["text"])
            else:
                getattr(self, f"block_{kind}", self.block_other)(block, bptr)
        if markdown_total > MARKDOWN_BLOCKS_TEXT_LIMIT:
            self.add(
                f"markdown blocks must total less than {MARKDOWN_BLOCKS_TEXT_LIMIT + 1} characters",
                ptr,
            )

    def block_other(self, block: dict[str, Any], ptr: str) -> None:
        """Block types checked only for type and block_id (divider, rich_text, ...)."""

    def block_section(self, block: dict[str, Any], ptr: str) -> None:
        if "text" not in block and "fields" not in block:
            self.add("must provide text or fields", ptr)
        self.text(block.get("text"), f"{ptr}/text", max_len=3000, required=False)
        if "fields" in block:
            for fi, field in enumerate(self.items(block["fields"], f"{ptr}/fields", max_items=10)):
                self.text(field, f"{ptr}/fields/{fi}", max_len=2000)
        if "accessory" in block:
            self.element(block["accessory"], f"{ptr}/accessory", allowed=_ACCESSORY_ELEMENTS)

    def block_header(self, block: dict[str, Any], ptr: str) -> None:
        self.text(block.get("text"), f"{ptr}/text", max_len=150, plain_only=True)

    def block_context(self, block: dict[str, Any], ptr: str) -> None:
        for ei, el in enumerate(self.items(block.get("elements"), f"{ptr}/elements", max_items=10)):
            eptr = f"{ptr}/elements/{ei}"
            if isinstance(el, dict) and el.get("type") == "image":
                self.image(el, eptr)
            else:
                self.text(el, eptr, max_len=3000)

    def block_actions(self, block: dict[str, Any], ptr: str) -> None:
        seen: set[str] = set()
        for ei, el in enumerate(self.items(block.get("elements"), f"{ptr}/elements", max_items=25)):
            self.element(el, f"{ptr}/elements/{ei}", allowed=_ACTION_ELEMENTS)
            action_id = el.get("action_id") if isinstance(el, dict) else None
            if action_id is not None:
                if action_id in seen:
                    self.add(f"duplicate action_id: {action_id}", f"{ptr}/elements/{ei}/action_id")
                seen.add(action_id)

    def block_input(self, block: dict[str, Any], ptr: str) -> None:
        self.text(block.get("label"), f"{ptr}/label", max_len=2000, plain_only=True)
        self.text(block.get("hint"), f"{ptr}/hint", max_len=2000, plain_only=True, required=False)
        if "element" not in block:
            self.add("missing required field", f"{ptr}/element")
        else:
            self.element(block["element"], f"{ptr}/element", allowed=_INPUT_ELEMENTS, in_input=True)

    def block_image(self, block: dict[str, Any], ptr: str) -> None:
        self.image(block, ptr)
        self.text(block.get("title"), f"{ptr}/title", max_len=2000, plain_only=True, required=False)


def message_text_length(blocks: Any) -> int:
    """Total length of every ``text`` string inside ``blocks`` (what Slack seems to count)."""
    if isinstance(blocks, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else message_text_length(v)
            for k, v in blocks.items()
        )
    if isinstance(blocks, list):
        return sum(message_text_length(v) for v in blocks)
    return 0


def validate_message_blocks(blocks: Any, pointer: str = "/blocks") -> list[str]:
    """Problems with a message's ``blocks`` (empty list when Slack would accept them)."""
    checker = _Checker("message")
    checker.blocks(blocks, pointer, max_blocks=MAX_MESSAGE_BLOCKS)
    return checker.problems


def validate_view(view: Any, pointer: str = "/view") -> list[str]:
    """Problems with a modal or Home tab view (size is checked separately: `view_size`)."""
    if not isinstance(view, dict):
        return [_err("must be an object", pointer)]
    kind = view.get("type")
    if kind not in ("modal", "home"):
        return [_err("must be a valid enum value", f"{pointer}/type")]
    checker = _Checker(kind)
    if kind == "modal":
        checker.text(view.get("title"), f"{pointer}/title", max_len=24, plain_only=True)
        checker.text(
            view.get("submit"), f"{pointer}/submit", max_len=24, plain_only=True, required=False
        )
        checker.text(
            view.get("close"), f"{pointer}/close", max_len=24, plain_only=True, required=False
        )
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and not view.get("submit"):
            checker.add("submit is required when the view has input blocks", f"{pointer}/submit")
    else:
        for key in ("submit", "close"):
            if view.get(key):
                checker.add(f"{key} is not allowed in a home view", f"{pointer}/{key}")
    if "blocks" not in view:
        checker.add("missing required field", f"{pointer}/blocks")
    else:
        checker.blocks(view["blocks"], f"{pointer}/blocks", max_blocks=MAX_VIEW_BLOCKS)
    checker.string(view.get("private_metadata"), f"{pointer}/private_metadata", max_len=3000)
    checker.string(view.get("callback_id"), f"{pointer}/callback_id", max_len=255)
    checker.string(view.get("external_id"), f"{pointer}/external_id", max_len=255)
    return checker.problems


def view_size(view: Any) -> int:
    """Serialized size in bytes, as compared against Slack's 250 KB view limit."""
    return len(json.dumps(view, separators=(",", ":")).encode("utf-8"))
