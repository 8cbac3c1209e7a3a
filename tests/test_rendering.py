"""Block Kit built as plain dicts (the list) must be what slack_sdk's models build and accept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from slack_sdk.models.blocks import Block

from bot.incidents import COUNT_AHEAD, IncidentRow, Page
from bot.slack import blocks
from db.models import Severity, Status
from tests.fakeslack import validate_message_blocks

T0 = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


def row(number: int, **fields: object) -> IncidentRow:
    values: dict[str, object] = dict(
        id=number,
        title=f"incident {number}",
        severity=Severity.SEV2,
        status=Status.OPEN,
        service="checkout",
        owner="U0OWNER01",
        assignee=None,
        created_at=T0,
        updated_at=T0,
    )
    values.update(fields)
    return IncidentRow(**values)  # type: ignore[arg-type]


def page(items: list[IncidentRow], **fields: object) -> Page:
    values: dict[str, object] = dict(
        items=items, total=len(items), page=1, page_size=20, has_next=False
    )
    values.update(fields)
    return Page(**values)  # type: ignore[arg-type]


WORST = row(
    2_147_483_647,
    title="<!channel> & " + "<" * 242,  # 255 characters, each escaped to four or five
    service="&" * 120,
    owner="not a user id <@U0>",
    severity=Severity.SEV1,
    status=Status.MITIGATED,
)

PAGES = {
    "empty": page([]),
    "empty with filters": page([], total=0, page=3),
    "one": page([row(1)]),
    "full, first of many": page([row(n) for n in range(20)], total=45, has_next=True),
    "middle": page([row(n) for n in range(20)], total=45, page=2, has_next=True),
    "last": page([row(n) for n in range(5)], total=45, page=3),
    "capped": page(
        [WORST] * 20, total=980 + COUNT_AHEAD, page=50, has_next=True, total_is_exact=False
    ),
}


@pytest.mark.parametrize("filters", ["", "active sev1 " + "x" * 3_000])
@pytest.mark.parametrize("name", PAGES)
def test_list_dicts_are_what_the_models_build_and_slack_accepts(name: str, filters: str) -> None:
    rendered = blocks.incident_list(PAGES[name], filters)
    # Parsing into the models and back runs slack_sdk's validation of every length and count.
    assert [Block.parse(b).to_dict() for b in rendered] == rendered
    assert validate_message_blocks(rendered) == []


def test_list_buttons_carry_the_filters_and_the_neighbouring_pages() -> None:
    rendered = blocks.incident_list(PAGES["middle"], "active")
    buttons = next(b for b in rendered if b["type"] == "actions")["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("incident_list_page:prev", '{"q":"active","page":1}'),
        ("incident_list_page:next", '{"q":"active","page":3}'),
    ]


def test_a_changed_incident_is_rendered_afresh() -> None:
    before = blocks.incident_list(page([row(7)]), "")
    after = blocks.incident_list(page([row(7, status=Status.RESOLVED, owner="U0OTHER01")]), "")
    assert "🆕 open" in before[1]["text"]["text"]
    assert "✅ resolved" in after[1]["text"]["text"]
    assert "<@U0OTHER01>" in after[1]["text"]["text"]


def test_escaping_reaches_every_user_field_of_a_list_line() -> None:
    text = blocks.incident_list(page([WORST]), "")[1]["text"]["text"]
    assert "<!channel>" not in text and "<@U0>" not in text
    assert "&lt;!channel&gt; &amp;" in text


def test_dates_fall_back_to_utc_whatever_the_database_time_zone() -> None:
    berlin = T0.astimezone(timezone(timedelta(hours=1)))
    assert blocks.when(berlin) == blocks.when(T0)
    assert blocks.when(berlin).endswith("|2026-03-04 05:06 UTC>")
