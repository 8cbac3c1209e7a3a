"""The OpenAPI document (/api/v1/openapi.json): valid, complete about errors, and true: real
answers match the shapes it promises."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from werkzeug.test import TestResponse

from tests.slackbot import Bot
from tests.test_api import API, Caller, token_caller
from tests.test_api_screenshots import png

ERRORS_BY_OPERATION = {
    ("get", "/incidents"): {"401", "422"},
    ("post", "/incidents"): {"400", "401", "422"},
    ("get", "/incidents/{incident_id}"): {"401", "404"},
    ("patch", "/incidents/{incident_id}"): {"400", "401", "403", "404", "409", "422"},
    ("delete", "/incidents/{incident_id}"): {"401", "403", "404"},
    ("post", "/incidents/{incident_id}/status"): {"400", "401", "403", "404", "409", "422"},
    ("get", "/incidents/{incident_id}/notes"): {"401", "404"},
    ("post", "/incidents/{incident_id}/notes"): {"400", "401", "404", "422"},
    ("delete", "/incidents/{incident_id}/notes/{note_id}"): {"401", "403", "404"},
    ("get", "/incidents/{incident_id}/timeline"): {"401", "404"},
    ("put", "/incidents/{incident_id}/roles/{role}"): {"400", "401", "403", "404", "409", "422"},
    ("post", "/incidents/{incident_id}/updates"): {"400", "401", "403", "404", "409", "422"},
    ("get", "/incidents/{incident_id}/updates"): {"401", "404"},
    ("get", "/incidents/{incident_id}/screenshots"): {"401", "404"},
    ("post", "/incidents/{incident_id}/screenshots"): {"401", "404", "413", "422"},
    ("get", "/incidents/{incident_id}/screenshots/{screenshot_id}"): {"401", "404"},
    ("delete", "/incidents/{incident_id}/screenshots/{screenshot_id}"): {"401", "403", "404"},
    ("get", "/stats"): {"401", "422"},
    ("post", "/intake"): {"400", "401", "422"},
    ("post", "/incidents/{incident_id}/followups"): {"400", "401", "404", "422"},
    ("get", "/incidents/{incident_id}/followups"): {"401", "404"},
    ("get", "/followups"): {"401", "422"},
    ("get", "/followups/{followup_id}"): {"401", "404"},
    ("patch", "/followups/{followup_id}"): {"400", "401", "403", "404", "409", "422"},
    ("post", "/followups/{followup_id}/export"): {"401", "403", "404", "409", "422"},
}


@pytest.fixture
def spec(slackbot: Bot) -> dict[str, Any]:
    answer = slackbot.web.test_client().get(f"{API}/openapi.json")
    assert answer.status_code == 200
    return answer.get_json()


@dataclass
class Forged:
    """An answer the API never gave, to show `check` refuses a wrong shape."""

    body: dict[str, Any]
    status_code: int = 200

    def get_json(self) -> dict[str, Any]:
        return self.body


def check(spec: dict[str, Any], answer: TestResponse, method: str, template: str) -> Any:
    """Validate a real answer against the schema the document gives its status; return it."""
    documented = spec["paths"][API + template][method]["responses"]
    status = str(answer.status_code)
    assert status in documented, (method, template, status, answer.get_json())
    schema = documented[status]["content"]["application/json"]["schema"]
    body = answer.get_json()
    # The document's own references (#/components/...) resolve inside it.
    jsonschema.Draft202012Validator({**schema, "components": spec["components"]}).validate(body)
    return body


def test_the_document_is_valid_openapi_and_lists_every_operation_with_its_errors(
    spec: dict[str, Any],
):
    validate(spec)
    operations = {
        (method, path.removeprefix(API)): set(op["responses"])
        for path, ops in spec["paths"].items()
        if path.startswith(API)
        for method, op in ops.items()
    }
    # Other modules may add operations; each of them needs a token too.
    assert set(ERRORS_BY_OPERATION) <= set(operations)
    assert all("401" in responses for responses in operations.values())
    for operation, errors in ERRORS_BY_OPERATION.items():
        documented = {code for code in operations[operation] if code.startswith("4")}
        assert documented == errors, operation
    assert not [name for name in spec["components"]["schemas"] if name[-1].isdigit()]
    title = spec["components"]["schemas"]["IncidentCreate"]["properties"]["title"]
    assert (title["minLength"], title["maxLength"]) == (3, 255)
    # The check below notices an answer that breaks its schema.
    forged = Forged({"id": "one", "title": "x", "unexpected": True})
    with pytest.raises(jsonschema.ValidationError):
        check(spec, forged, "get", "/incidents/{incident_id}")  # type: ignore[arg-type]


def test_real_answers_match_the_document(slackbot: Bot, spec: dict[str, Any]):
    tool: Caller = token_caller(slackbot)
    created = check(
        spec,
        tool.post("/incidents", json={"title": "Checkout down", "severity": "SEV2"}),
        "post",
        "/incidents",
    )
    number = created["id"]
    check(spec, tool.get(f"/incidents/{number}"), "get", "/incidents/{incident_id}")
    check(spec, tool.get("/incidents?limit=5"), "get", "/incidents")
    check(
        spec,
        tool.patch(f"/incidents/{number}", json={"owner": "U0OWNER001"}),
        "patch",
        "/incidents/{incident_id}",
    )
    note = tool.post(f"/incidents/{number}/notes", json={"text": "Looking"})
    check(spec, note, "post", "/incidents/{incident_id}/notes")
    check(spec, tool.get(f"/incidents/{number}/notes"), "get", "/incidents/{incident_id}/notes")
    check(
        spec, tool.get(f"/incidents/{number}/timeline"), "get", "/incidents/{incident_id}/timeline"
    )
    role = tool.call("PUT", f"/incidents/{number}/roles/comms", json={"user": "U0COMMS001"})
    assert check(spec, role, "put", "/incidents/{incident_id}/roles/{role}")["roles"]["comms"]
    update = tool.post(
        f"/incidents/{number}/updates",
        json={"summary": "Rolled back", "impact": "Checkout slow", "next_update_in": 1800},
    )
    assert check(spec, update, "post", "/incidents/{incident_id}/updates")["impact"]
    shown = check(spec, tool.get(f"/incidents/{number}"), "get", "/incidents/{incident_id}")
    assert shown["latest_update"]["summary"] == "Rolled back"
    listed = tool.get(f"/incidents/{number}/updates")
    assert len(check(spec, listed, "get", "/incidents/{incident_id}/updates")["items"]) == 1
    refused = tool.post(f"/incidents/{number}/updates", json={"summary": "x", "next_update_in": 7})
    check(spec, refused, "post", "/incidents/{incident_id}/updates")
    alert = {"title": "Queue stuck", "severity": "SEV3", "service": "jobs", "fingerprint": "q"}
    assert check(spec, tool.post("/intake", json=alert), "post", "/intake")["created"] is True
    noted = check(spec, tool.post("/intake", json=alert), "post", "/intake")
    assert noted["note"]["text"] == "Alert fired again: Queue stuck"
    shot = tool.post(
        f"/incidents/{number}/screenshots",
        data={"file": (io.BytesIO(png()), "a.png")},
        content_type="multipart/form-data",
    )
    check(spec, shot, "post", "/incidents/{incident_id}/screenshots")
    check(
        spec,
        tool.get(f"/incidents/{number}/screenshots"),
        "get",
        "/incidents/{incident_id}/screenshots",
    )
    check(spec, tool.get("/stats"), "get", "/stats")
    # Errors are documented as they are sent.
    check(spec, tool.get("/incidents/999999"), "get", "/incidents/{incident_id}")
    check(spec, tool.post("/incidents", json={}), "post", "/incidents")
    check(
        spec,
        tool.post("/incidents", data="{", content_type="application/json"),
        "post",
        "/incidents",
    )
    check(spec, tool.delete(f"/incidents/{number}"), "delete", "/incidents/{incident_id}")
    moved = tool.post(f"/incidents/{number}/status", json={"status": "open"})
    check(spec, moved, "post", "/incidents/{incident_id}/status")
    anonymous = slackbot.web.test_client().get(f"{API}/incidents")
    check(spec, anonymous, "get", "/incidents")


def test_follow_up_and_review_answers_match_the_document(slackbot: Bot, spec: dict[str, Any]):
    tool: Caller = token_caller(slackbot)
    number = tool.declare()["id"]
    added = check(
        spec,
        tool.post(f"/incidents/{number}/followups", json={"title": "Add a canary", "due": "1w"}),
        "post",
        "/incidents/{incident_id}/followups",
    )
    one = "/followups/{followup_id}"
    check(spec, tool.get(f"/followups/{added['id']}"), "get", one)
    listed = tool.get(f"/incidents/{number}/followups")
    assert check(spec, listed, "get", "/incidents/{incident_id}/followups")["items"]
    assert check(spec, tool.get("/followups?owner=me"), "get", "/followups")["total"] == 0
    changed = tool.patch(f"/followups/{added['id']}", json={"owner": "U0OWNER001"})
    assert check(spec, changed, "patch", one)["owner"] == "U0OWNER001"
    check(spec, tool.patch(f"/followups/{added['id']}", json={}), "patch", one)
    check(spec, tool.get("/followups/999999"), "get", one)
    check(spec, tool.get("/followups?status=finished"), "get", "/followups")
    export = tool.post(f"/followups/{added['id']}/export")
    assert check(spec, export, "post", one + "/export")["detail"]["field"] == "tracker"
    reviewed = tool.patch(
        f"/incidents/{number}", json={"customer_impact": "Slow checkout", "reviewer": "U0REV0001"}
    )
    body = check(spec, reviewed, "patch", "/incidents/{incident_id}")
    assert (body["customer_impact"], body["review_status"]) == ("Slow checkout", "draft")
    tool.post(f"/incidents/{number}/followups", json={"title": "Nobody's yet"})
    refused = tool.post(
        f"/incidents/{number}/status", json={"status": "closed", "resolution": "Rolled back"}
    )
    assert check(spec, refused, "post", "/incidents/{incident_id}/status")["detail"] == {
        "field": "status"
    }
    properties = spec["components"]["schemas"]["IncidentPatch"]["properties"]
    assert {"impact_started_at", "review_status", "reviewer"} <= set(properties)
    assert "override" in spec["components"]["schemas"]["StatusChange"]["properties"]
