"""`services/instance_rows`: the rows written by prepared statements are what the ORM sees in the
same transaction (the session's copy of an instance is expired when its row is updated)."""
from __future__ import annotations

from tests.services.support import BIG, open_task, setup
from workflow_app.engine.runtime import Request
from workflow_app.models import ProcessInstance, Task


def test_the_orm_sees_the_rows_an_action_wrote_in_the_same_transaction(db, store, workflow, clock):
    people = setup(db, store, clock)
    with db.write() as s:
        result = workflow.start(s, people["submitter"], "review", BIG, department="zhentou")
        held = s.get(ProcessInstance, result.instance_id)  # the very object `start` added
        assert held.trail_count == 1 and held.trail_head  # set by a prepared UPDATE after the flush
    task = open_task(db, result.instance_id)
    with db.write() as s:
        before = s.get(ProcessInstance, result.instance_id)
        assert before.version == 1
        workflow.act(s, people["promo1"], result.instance_id, Request("claim", task.id),
                     department="invest_promo", role="reviewer")
        assert before.version == 2 and before.trail_count == 2  # expired, read again
