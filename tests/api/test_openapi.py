"""The OpenAPI document: valid OpenAPI 3.1, request bodies required, the error shape documented on
every operation; and a schemathesis contract run against the app (WSGI, in process) with the
tokens of a submitter, an approver and a compliance reviewer: no server errors, documented status
codes, responses that match their schemas.

openapi-spec-validator is not a dependency: schemathesis validates the document against the
official OpenAPI 3.1 meta-schema itself (`BaseSchema.validate`, jsonschema-rs), which is used here.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import DATA, bearer

SPEC = "/api/v1/openapi.json"
ERRORS = {"401", "403", "404", "409", "422"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection, ignored_auth]


@pytest.fixture
def document(client) -> dict:
    r = client.get(SPEC)
    assert r.status_code == 200
    return r.get_json()


def api_operations(document: dict):
    for path, item in document["paths"].items():
        if path.startswith("/api/v1/"):
            for method, operation in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    yield f"{method.upper()} {path}", operation


def test_document_is_valid_openapi(document):
    assert document["openapi"].startswith("3.1")
    schemathesis.openapi.from_dict(document).validate()  # raises on any violation
    broken = {**document, "paths": {"/x": {"get": {"responses": "nope"}}}}
    with pytest.raises(Exception):
        schemathesis.openapi.from_dict(broken).validate()  # the check is not vacuous


def test_every_operation_is_documented_fully(document):
    operations = dict(api_operations(document))
    assert set(operations) == set(OPERATIONS)
    schemas = document["components"]["schemas"]
    for label, operation in operations.items():
        assert operation["security"] == [{"BearerAuth": []}], label
        assert ERRORS <= set(operation["responses"]), label
        for code in ERRORS:
            ref = operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
            error = schemas[ref.rsplit("/", 1)[1]]
            assert error["required"] == ["error", "message"] and "details" in error["properties"], label
        if "requestBody" in operation:
            assert operation["requestBody"]["required"] is True, label
    for label in ("POST /api/v1/instances", "POST /api/v1/instances/{instance_id}/actions"):
        assert "requestBody" in operations[label]
        headers = {p["name"] for p in operations[label]["parameters"] if p["in"] == "header"}
        assert "Idempotency-Key" in headers


def test_successful_responses_match_the_document(app, client, tokens, people):
    """The generated run below mostly meets error paths; here every operation's success path is
    checked against its documented response schema."""
    schema = schemathesis.openapi.from_wsgi(SPEC, app)
    # schemathesis' WSGI calls register as failed authentications on the shared per-address
    # counter (two per call, measured); more than ten operations here would trip it.
    app.config["API_AUTH_FAILURE_LIMIT"] = "100000 per minute"
    auth = bearer(tokens["submitter"])
    started = schema["/api/v1/instances"]["POST"].Case(
        body={"process": "review", "department": "zhentou", "data": DATA}, headers=auth)
    response = started.call()
    assert response.status_code == 201
    started.validate_response(response)
    instance = response.json()["instance"]
    task = instance["tasks"][-1]
    cases = [
        schema["/api/v1/instances/{instance_id}"]["GET"].Case(
            path_parameters={"instance_id": instance["id"]}, headers=auth),
        schema["/api/v1/instances"]["GET"].Case(query={"mine": True, "limit": 1}, headers=auth),
        schema["/api/v1/instances/{instance_id}/actions"]["POST"].Case(
            path_parameters={"instance_id": instance["id"]}, headers=bearer(tokens["promo1"]),
            body={"action": "approve", "task_id": task["id"], "opinion": "同意"}),
        schema["/api/v1/tasks"]["GET"].Case(headers=bearer(tokens["econ"])),
        schema["/api/v1/queue"]["GET"].Case(headers=bearer(tokens["plan1"])),
        schema["/api/v1/tasks/done"]["GET"].Case(headers=bearer(tokens["promo1"])),
        schema["/api/v1/definitions"]["GET"].Case(headers=auth),
        schema["/api/v1/me"]["GET"].Case(headers=auth),
        schema["/api/v1/instances/{instance_id}/attachments"]["GET"].Case(
            path_parameters={"instance_id": instance["id"]}, headers=auth),
        schema["/api/v1/trail/verify"]["POST"].Case(headers=bearer(tokens["auditor"])),
    ]
    for case in cases:
        response = case.call()
        assert response.status_code == 200, (case.operation.label, response.text)
        case.validate_response(response)
        assert response.json(), case.operation.label


OPERATIONS = ["POST /api/v1/instances", "GET /api/v1/instances", "GET /api/v1/instances/{instance_id}",
              "POST /api/v1/instances/{instance_id}/actions", "GET /api/v1/tasks", "GET /api/v1/queue",
              "GET /api/v1/tasks/done", "POST /api/v1/trail/verify", "GET /api/v1/definitions",
              "GET /api/v1/me", "POST /api/v1/instances/with-files",
              "POST /api/v1/instances/{instance_id}/actions/with-files",
              "GET /api/v1/instances/{instance_id}/attachments", "GET /api/v1/attachments/{attachment_id}"]
# Whose token the generated requests carry: the submitter (owns the instance), an approver (has
# it in their department queue) and the compliance reviewer (read-only, sees everything).
TOKEN_USERS = {"submitter": 25, "promo1": 10, "reviewer_c": 10}  # user -> examples per operation


# schemathesis' own pytest integration (`schemathesis.pytest.from_fixture`, needed because the app
# is built per test and per backend) reads `Node._nodeid`, which pytest 9 removed; so the cases
# come from the operation's Hypothesis strategy instead, with the same checks.
@pytest.mark.parametrize("user", list(TOKEN_USERS))
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("label", OPERATIONS)
def test_contract(app, client, tokens, label, mode, user):
    # `ignored_auth` probes every example without and with a wrong token; those refusals would
    # trip the per-address failure limit (tested in test_auth.py) long before the run ends.
    app.config["API_AUTH_FAILURE_LIMIT"] = "100000 per minute"
    # Something to find: one running instance, visible to the token's user.
    r = client.post("/api/v1/instances", headers=bearer(tokens["submitter"]),
                    json={"process": "review", "department": "zhentou", "data": DATA})
    assert r.status_code == 201
    operation = schemathesis.openapi.from_wsgi(SPEC, app).find_operation_by_label(label)
    auth = bearer(tokens[user])

    # One app (and database) per operation, shared by that operation's examples on purpose.
    @settings(max_examples=TOKEN_USERS[user], deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        case.call_and_validate(headers=auth, checks=CHECKS)

    run()
