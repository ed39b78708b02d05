"""Conflicts answer 409, not 404: the colleague who loses a claim race, a second decision, a
stale task. Strangers still get 404."""
from __future__ import annotations

from tests.api.test_instances import act, open_tasks, start


def test_losing_a_claim_race_is_a_conflict(client, tokens):
    inst = start(client, tokens["submitter"]).get_json()["instance"]
    [task] = open_tasks(inst)
    assert act(client, tokens["promo1"], inst["id"], action="claim", task_id=task["id"]).status_code == 200
    lost = act(client, tokens["promo2"], inst["id"], action="claim", task_id=task["id"])
    assert lost.status_code == 409, lost.get_json()
    assert lost.get_json()["error"] == "conflict"
    # and promo2 may read the application that was in their queue, seeing who took it
    assert client.get(f"/api/v1/instances/{inst['id']}", headers={"Authorization": f"Bearer {tokens['promo2']}"}).status_code == 200
    # a stranger learns nothing
    assert act(client, tokens["econ"], inst["id"], action="claim", task_id=task["id"]).status_code == 404


def test_a_second_decision_is_a_conflict(client, tokens):
    inst = start(client, tokens["submitter"]).get_json()["instance"]
    [task] = open_tasks(inst)
    act(client, tokens["promo1"], inst["id"], action="claim", task_id=task["id"])
    assert act(client, tokens["promo1"], inst["id"], action="approve", task_id=task["id"]).status_code == 200
    again = act(client, tokens["promo1"], inst["id"], action="approve", task_id=task["id"])
    assert again.status_code == 409 and again.get_json()["error"] == "conflict"
