"""Starting and acting through the API: the full path, visibility (404, never 403), conflicts,
validation errors and Idempotency-Key replays."""
from __future__ import annotations

from sqlalchemy import func, select

from tests.api.conftest import DATA, bearer
from workflow_app.models import ProcessInstance, SecurityEvent, TrailEvent


def start(client, token, data=DATA, **headers):
    return client.post("/api/v1/instances", headers=bearer(token, **headers),
                       json={"process": "review", "department": "zhentou", "data": data})


def act(client, token, iid, **body):
    headers = body.pop("headers", {})
    return client.post(f"/api/v1/instances/{iid}/actions", headers=bearer(token, **headers), json=body)


def open_tasks(instance: dict) -> list[dict]:
    return [t for t in instance["tasks"] if t["status"] == "open"]


def counts(app) -> tuple[int, int]:
    with app.extensions["parkflow"].db.read() as s:
        return (s.scalar(select(func.count()).select_from(ProcessInstance)),
                s.scalar(select(func.count()).select_from(TrailEvent)))


def test_start_then_approve_to_the_end(client, tokens, people):
    r = start(client, tokens["submitter"])
    assert r.status_code == 201
    body = r.get_json()
    iid = body["result"]["instance_id"]
    assert body["result"]["replayed"] is False and body["result"]["current_step"] == "assess"
    inst = body["instance"]
    assert inst["id"] == iid and inst["status"] == "running" and inst["submitter_id"] == people["submitter"]
    assert inst["data"]["project_name"] == DATA["project_name"] and inst["definition_version"] == "1"
    assert [e["action"] for e in inst["trail"]] == ["start"]
    [assess] = open_tasks(inst)
    assert assess["step"] == "assess" and assess["assignee_id"] is None and assess["due_at"]

    # the reviewer sees it in the department queue, claims it, then finds it among their tasks
    queue = client.get("/api/v1/queue", headers=bearer(tokens["promo1"])).get_json()
    assert [i["task_id"] for i in queue["items"]] == [assess["id"]]
    claimed = act(client, tokens["promo1"], iid, action="claim", task_id=assess["id"])
    assert claimed.status_code == 200
    mine = client.get("/api/v1/tasks", headers=bearer(tokens["promo1"])).get_json()
    assert [i["task_id"] for i in mine["items"]] == [assess["id"]]

    r = act(client, tokens["promo1"], iid, action="approve", task_id=assess["id"], opinion="同意")
    assert r.status_code == 200
    inst = r.get_json()["instance"]
    assert inst["current_step"] == "joint"
    for task in open_tasks(inst):
        who = "econ" if task["branch"] == "industry" else next(
            n for n in ("plan1", "plan2") if people[n] == task["assignee_id"])
        assert act(client, tokens[who], iid, action="approve", task_id=task["id"]).status_code == 200
    inst = client.get(f"/api/v1/instances/{iid}", headers=bearer(tokens["submitter"])).get_json()
    [final] = open_tasks(inst)
    assert final["step"] == "sasac"
    r = act(client, tokens["sasac"], iid, action="approve", task_id=final["id"], opinion="合规")
    assert r.status_code == 200
    result, inst = r.get_json()["result"], r.get_json()["instance"]
    assert result["status"] == "approved" and inst["status"] == "approved" and inst["ended_at"]
    assert inst["trail"][-1]["action"] == "approve" and inst["trail"][-1]["opinion"] == "合规"

    done = client.get("/api/v1/tasks/done", headers=bearer(tokens["promo1"])).get_json()
    assert [i["task_id"] for i in done["items"]] == [assess["id"]]
    started = client.get("/api/v1/instances?mine=1", headers=bearer(tokens["submitter"])).get_json()
    assert [i["instance_id"] for i in started["items"]] == [iid]


def test_strangers_get_404_for_reading_and_acting(app, client, tokens):
    iid = start(client, tokens["submitter"]).get_json()["result"]["instance_id"]
    for token in (tokens["haijiang"], tokens["econ"]):  # not involved in the current step
        r = client.get(f"/api/v1/instances/{iid}", headers=bearer(token))
        assert r.status_code == 404 and r.get_json()["error"] == "not_found"
        before = counts(app)
        r = act(client, token, iid, action="comment", opinion="我看看")
        assert r.status_code == 404
        assert counts(app) == before
    # exactly like an id that does not exist at all
    assert client.get("/api/v1/instances/999999", headers=bearer(tokens["haijiang"])).status_code == 404
    assert client.get(f"/api/v1/instances/{2**40}", headers=bearer(tokens["haijiang"])).status_code == 404


def test_compliance_and_audit_may_read_everything(client, tokens):
    iid = start(client, tokens["submitter"]).get_json()["result"]["instance_id"]
    for name in ("reviewer_c", "auditor"):
        assert client.get(f"/api/v1/instances/{iid}", headers=bearer(tokens[name])).status_code == 200


def test_forbidden_action_on_a_visible_instance_is_403(client, tokens):
    inst = start(client, tokens["submitter"]).get_json()["instance"]
    [task] = open_tasks(inst)
    r = act(client, tokens["submitter"], inst["id"], action="approve", task_id=task["id"])
    assert r.status_code == 403 and r.get_json()["error"] == "forbidden"


def test_second_decision_on_a_done_task_is_409_and_writes_nothing(app, client, tokens):
    inst = start(client, tokens["submitter"]).get_json()["instance"]
    [task] = open_tasks(inst)
    assert act(client, tokens["promo1"], inst["id"], action="approve", task_id=task["id"]).status_code == 200
    before = counts(app)
    r = act(client, tokens["promo1"], inst["id"], action="reject", task_id=task["id"], opinion="不同意")
    assert r.status_code == 409
    body = r.get_json()
    assert body["error"] == "conflict" and body["details"]["task_id"] == task["id"]
    # The department colleague who lost the race is told so: 409, as on the pages (the task was
    # queued for their department, so they may see the application). Either way nothing is written.
    r = act(client, tokens["promo2"], inst["id"], action="approve", task_id=task["id"])
    assert r.status_code == 409 and r.get_json()["error"] == "conflict"
    assert counts(app) == before


def test_request_validation_is_422_with_field_errors(client, tokens):
    r = client.post("/api/v1/instances", headers=bearer(tokens["submitter"]),
                    json={"department": "zhentou", "data": [], "extra": 1})
    assert r.status_code == 422
    body = r.get_json()
    assert body["error"] == "invalid" and body["message"]
    fields = body["details"]["json"]
    assert set(fields) == {"process", "data", "extra"}
    r = act(client, tokens["promo1"], 1, action="add_signer", task_id="7", position="sideways", users=[0])
    assert r.status_code == 422
    assert set(r.get_json()["details"]["json"]) == {"task_id", "position", "users"}
    r = act(client, tokens["promo1"], 1, action="approve", department="invest_promo")
    assert r.status_code == 422 and "department" in r.get_json()["details"]["json"]
    r = client.get("/api/v1/tasks?limit=500", headers=bearer(tokens["promo1"]))
    assert r.status_code == 422 and "limit" in r.get_json()["details"]["query"]


def test_form_errors_from_the_definition_are_422(client, tokens):
    r = start(client, tokens["submitter"], data={"project_name": "x", "investment_wan": "-1", "industry": "造船"})
    assert r.status_code == 422
    body = r.get_json()
    assert body["error"] == "invalid" and set(body["details"]["fields"]) == {"investment_wan", "industry"}


def test_nul_characters_are_refused_before_the_database(client, tokens):
    r = act(client, tokens["promo1"], 1, action="comment", opinion="a\x00b")
    assert r.status_code == 422 and "opinion" in r.get_json()["details"]["json"]
    r = client.get("/api/v1/tasks?q=%00", headers=bearer(tokens["promo1"]))
    assert r.status_code == 422


def test_submitting_for_a_department_you_do_not_belong_to_is_403(client, tokens):
    r = client.post("/api/v1/instances", headers=bearer(tokens["submitter"]),
                    json={"process": "review", "department": "haijiang", "data": DATA})
    assert r.status_code == 403


def test_unknown_process_is_404(client, tokens):
    r = client.post("/api/v1/instances", headers=bearer(tokens["submitter"]),
                    json={"process": "nope", "department": "zhentou", "data": {}})
    assert r.status_code == 404 and r.get_json()["error"] == "not_found"


# ------------------------------------------------------------------ Idempotency-Key
def test_replayed_start_returns_the_first_result_and_writes_nothing(app, client, tokens):
    first = start(client, tokens["submitter"], **{"Idempotency-Key": "batch-7/row-1"})
    assert first.status_code == 201
    before = counts(app)
    again = start(client, tokens["submitter"], **{"Idempotency-Key": "batch-7/row-1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["result"] == {**first.get_json()["result"], "replayed": True}
    assert counts(app) == before
    # another key is another request; the same key of another user is theirs alone
    assert start(client, tokens["submitter"], **{"Idempotency-Key": "batch-7/row-2"}).status_code == 201
    assert counts(app)[0] == before[0] + 1


def test_replayed_decision_returns_the_first_result(app, client, tokens):
    inst = start(client, tokens["submitter"]).get_json()["instance"]
    [task] = open_tasks(inst)
    key = {"Idempotency-Key": "approve-once"}
    first = act(client, tokens["promo1"], inst["id"], action="approve", task_id=task["id"], headers=key)
    assert first.status_code == 200
    before = counts(app)
    again = act(client, tokens["promo1"], inst["id"], action="approve", task_id=task["id"], headers=key)
    assert again.status_code == 200 and again.get_json()["result"]["replayed"] is True
    assert again.get_json()["result"]["trail_event_id"] == first.get_json()["result"]["trail_event_id"]
    assert counts(app) == before
    # without the key the engine still refuses a second decision
    plain = act(client, tokens["promo1"], inst["id"], action="approve", task_id=task["id"])
    assert plain.status_code == 409


def test_reusing_a_key_for_another_request_is_422(app, client, tokens):
    key = {"Idempotency-Key": "k-1"}
    assert start(client, tokens["submitter"], **key).status_code == 201
    before = counts(app)
    other = start(client, tokens["submitter"], data={**DATA, "project_name": "另一个项目"}, **key)
    assert other.status_code == 422
    assert other.get_json()["details"]["reason"] == "idempotency_key_reused"
    assert counts(app) == before


def test_failed_requests_are_not_remembered(app, client, tokens):
    key = {"Idempotency-Key": "retry-me"}
    bad = start(client, tokens["submitter"], data={"project_name": "x"}, **key)
    assert bad.status_code == 422
    with app.extensions["parkflow"].db.read() as s:
        assert s.scalar(select(func.count()).select_from(SecurityEvent)
                        .where(SecurityEvent.event == "api_idempotency")) == 0
    assert start(client, tokens["submitter"], data={**DATA, "project_name": "x"}, **key).status_code == 201


def test_keys_expire_after_a_day(app, client, tokens, clock):
    from datetime import timedelta

    key = {"Idempotency-Key": "daily"}
    assert start(client, tokens["submitter"], **key).status_code == 201
    clock.now += timedelta(hours=25)
    again = start(client, tokens["submitter"], **key)
    assert again.status_code == 201 and again.get_json()["result"]["replayed"] is False


def test_concurrent_copies_of_a_keyed_request_start_one_instance(app, tokens):
    """Two copies of the same keyed POST at the same moment: the user-row lock makes the second
    wait and replay (on SQLite, BEGIN IMMEDIATE serialises them)."""
    import threading

    barrier, results = threading.Barrier(4), []

    def send():
        client = app.test_client()
        barrier.wait()
        r = start(client, tokens["submitter"], **{"Idempotency-Key": "double-click"})
        results.append((r.status_code, r.get_json()["result"]["replayed"], r.get_json()["result"]["instance_id"]))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r[:2] for r in results) == [(201, False), (201, True), (201, True), (201, True)]
    assert len({r[2] for r in results}) == 1
    assert counts(app)[0] == 1


def test_a_decision_identifies_its_token_once(app, client, tokens):
    """The 三员 gate (web/security.py) and the API's authentication share one token lookup: a
    decision POST reads `api_token` once, outside any transaction (Database.peek)."""
    from sqlalchemy import event

    iid = start(client, tokens["submitter"]).get_json()["result"]["instance_id"]
    task = open_tasks(client.get(f"/api/v1/instances/{iid}", headers=bearer(tokens["submitter"])).get_json())[0]
    engine = app.extensions["parkflow"].db.engine
    lookups = []

    def seen(_conn, _cursor, statement, _params, _context, _many):
        if "FROM api_token" in statement:
            lookups.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        r = act(client, tokens["promo1"], iid, action="claim", task_id=task["id"])
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert r.status_code == 200
    assert len(lookups) == 1
