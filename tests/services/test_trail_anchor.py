"""Trail anchors (services/anchor.py) catch what the chains alone cannot: a database superuser
who deletes a whole instance with its events, or cuts the tail of a chain and rewrites the
instance's head and count to match. Also: forged/edited/deleted anchors, the export file, the
window after the latest anchor, and `flask trail anchor` / `flask trail verify` on the real app.
Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""
from __future__ import annotations

import contextlib

import json
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from tests.cli.runner import Cli
from tests.services.support import SMALL, act, events, open_task, start
from tests.services.test_trail_tamper import chain, tamper  # noqa: F401  (the fixture)
from workflow_app.engine.runtime import Request
from workflow_app.engine.trail import HASHED_FIELDS, event_hash
from workflow_app.services import anchor, archive, trail

KEY = "anchor-test-key"
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)


def full_verify(db, key=KEY, exports=()) -> archive.Verification:
    with db.read() as s:
        return archive.verify(s, anchor_key=key, anchor_exports=list(exports))


def chains_ok(db) -> bool:
    with db.read() as s:
        return trail.verify(s).ok


def delete_instance(db, iid: int) -> None:
    for sql in ("DELETE FROM trail_event WHERE instance_id = :i", "DELETE FROM task WHERE instance_id = :i",
                "DELETE FROM notification WHERE instance_id = :i", "DELETE FROM carbon_copy WHERE instance_id = :i",
                "DELETE FROM process_instance WHERE id = :i"):
        tamper(db, sql, i=iid)


def cut_tail(db, iid: int, evs, keep: int) -> None:
    """Delete the events after `keep` and write the shortened chain's head back on the row."""
    tamper(db, "DELETE FROM trail_event WHERE instance_id = :i AND seq > :k", i=iid, k=keep)
    tamper(db, "UPDATE process_instance SET trail_head = :h, trail_count = :k WHERE id = :i",
           h=evs[keep - 1].hash, k=keep, i=iid)


def test_an_untouched_trail_verifies_against_its_anchor(db, chain):
    made = anchor.create(db, KEY, NOW)
    assert (made.seq, made.chains, made.events) == (1, 3, 11)
    result = full_verify(db)
    assert result.ok and "1 anchor(s) verified" in result.notes[0]


def test_deleting_a_whole_instance_is_caught_by_the_anchor(db, chain):
    first, _iid, _evs = chain
    anchor.create(db, KEY, NOW)
    delete_instance(db, first)
    assert chains_ok(db)                          # the chains alone cannot see it
    result = full_verify(db)
    assert result.where == "anchor 1" and "recorded 11 events in 3 chains" in result.broken.reason
    assert "now has 10 in 2" in result.broken.reason


def test_cutting_a_tail_and_rewriting_the_head_is_caught_by_the_anchor(db, chain):
    _first, iid, evs = chain
    anchor.create(db, KEY, NOW)
    cut_tail(db, iid, evs, keep=3)
    assert chains_ok(db)
    result = full_verify(db)
    assert result.where == "anchor 1" and "differs from anchor 1" in result.broken.reason


def test_rewriting_a_chain_with_recomputed_hashes_is_caught_by_the_anchor(db, chain):
    """The chain hash is not keyed: a superuser can edit an event and recompute every later hash
    and the head. The chains then verify; the anchor (keyed) does not."""
    _first, iid, evs = chain
    anchor.create(db, KEY, NOW)
    prev = evs[1].hash
    for e in evs[2:]:
        row = {name: getattr(e, name) for name in HASHED_FIELDS}
        if e.seq == 3:
            row["opinion"] = "不同意"
        new = event_hash(prev, row)
        tamper(db, "UPDATE trail_event SET opinion = :o, prev_hash = :p, hash = :h WHERE id = :id",
               o=row["opinion"], p=prev, h=new, id=e.id)
        prev = new
    tamper(db, "UPDATE process_instance SET trail_head = :h WHERE id = :i", h=prev, i=iid)
    assert chains_ok(db)
    result = full_verify(db)
    assert result.where == "anchor 1" and "differs from anchor 1" in result.broken.reason


def test_the_window_after_the_latest_anchor_is_the_chains_only(db, chain, store, workflow, clock):
    _first, iid, evs = chain
    anchor.create(db, KEY, NOW)
    later = start(db, workflow, evs[0].actor_id, data=SMALL)   # events after the anchor
    act(db, workflow, evs[0].actor_id, later, "comment", opinion="补充说明")
    later_events = events(db, later)
    cut_tail(db, later, later_events, keep=1)
    assert full_verify(db).ok                     # documented window: not detectable yet
    second = anchor.create(db, KEY, NOW)
    assert second.seq == 2 and full_verify(db).ok
    delete_instance(db, later)                    # once anchored, it is
    assert full_verify(db).where == "anchor 2"


def test_edited_forged_or_deleted_anchors(db, chain):
    anchor.create(db, KEY, NOW)
    anchor.create(db, KEY, NOW)
    assert full_verify(db, key="another key").where == "anchor 1"      # wrong key: MAC fails
    tamper(db, "UPDATE trail_anchor SET events = events + 1 WHERE seq = 2")
    assert "MAC does not match" in full_verify(db).broken.reason
    tamper(db, "DELETE FROM trail_anchor WHERE seq = 2")
    assert full_verify(db).ok                     # the newest anchor gone: only the export shows it
    anchor.create(db, KEY, NOW)
    tamper(db, "DELETE FROM trail_anchor WHERE seq = 1")
    assert "anchor 1 is missing" in full_verify(db).broken.reason


def test_the_export_file_catches_deleted_newest_anchors(db, chain, tmp_path):
    exported = tmp_path / "anchors.jsonl"
    for _ in range(2):
        anchor.export(anchor.create(db, KEY, NOW), exported)
    assert full_verify(db, exports=[exported]).ok
    tamper(db, "DELETE FROM trail_anchor WHERE seq = 2")
    result = full_verify(db, exports=[exported])
    assert result.where == "anchor 2" and "missing from the database" in result.broken.reason
    line = json.loads(exported.read_text().splitlines()[0])
    line["events"] += 1
    forged = tmp_path / "forged.jsonl"
    forged.write_text(json.dumps(line) + "\n")
    assert "export file was edited" in full_verify(db, exports=[forged]).broken.reason


def test_two_nodes_racing_write_one_anchor(db, chain, monkeypatch):
    """Node A has read anchor 1 as the latest when node B commits anchor 2: A's insert of no. 2
    fails on the primary key and A reports that nothing was written."""
    if db.is_sqlite:
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): there is no race to lose")
    anchor.create(db, KEY, NOW)
    original = anchor._mac

    def node_b_first(key, a):
        monkeypatch.setattr(anchor, "_mac", original)
        assert anchor.create(db, KEY, NOW).seq == 2   # B, in transactions of its own
        return original(key, a)

    monkeypatch.setattr(anchor, "_mac", node_b_first)
    assert anchor.create(db, KEY, NOW) is None
    assert full_verify(db).ok


def test_an_anchor_waits_for_events_still_being_written(db, chain, store, workflow, clock):
    """PostgreSQL hands out event ids before commit: an action holding id n uncommitted while a
    later one (n + 1) commits must not be left out of an anchor that covers n + 1 — the anchor
    waits for it (SHARE lock barrier), so the verification later finds the same trail."""
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: nothing is in flight while the anchor reads")
    first, iid, evs = chain
    made: list = []
    worker = threading.Thread(target=lambda: made.append(anchor.create(db, KEY, NOW)))
    try:
        with contextlib.ExitStack() as in_flight:
            slow = in_flight.enter_context(db.write())   # rolls back if an assertion fails
            workflow.act(slow, evs[0].actor_id, first, Request("comment", opinion="未提交"))  # id n, in flight
            later = start(db, workflow, evs[0].actor_id, data=SMALL)                        # id n + 1, committed
            worker.start()
            worker.join(0.5)
            assert worker.is_alive()             # held at the barrier by the open transaction
            in_flight.close()                    # commits: the barrier lifts
    finally:
        worker.join(10)
    assert made and made[0].last_event_id == events(db, later)[-1].id
    assert events(db, first)[-1].id < made[0].last_event_id  # the in-flight event is inside
    assert full_verify(db).ok


def test_no_key_refuses_to_anchor_and_verify_says_so(db, chain):
    with pytest.raises(anchor.AnchorRefused, match="TRAIL_ANCHOR_KEY"):
        anchor.create(db, None, NOW)
    anchor.create(db, KEY, NOW)
    result = full_verify(db, key=None)
    assert result.ok and "anchors not checked" in result.notes[-1]


def test_cli_anchor_and_verify(db, chain, database_url, defs_dir, tmp_path):
    first, _iid, _evs = chain
    cli = Cli(database_url, defs_dir)
    exported = tmp_path / "anchors.jsonl"
    try:
        made = cli("trail", "anchor", "--export", str(exported))
        assert made.exit_code == 0, made.output
        assert made.stdout.startswith("anchor 1: events up to id ") and "11 events in 3 chains" in made.stdout
        assert len(exported.read_text().splitlines()) == 1
        ok = cli("trail", "verify", "--anchors", str(exported))
        assert ok.exit_code == 0, ok.output
        assert "1 anchor(s) verified" in ok.stdout
        delete_instance(db, first)
        bad = cli("trail", "verify")
        assert bad.exit_code == 1 and "BROKEN in anchor 1" in bad.stdout, bad.output
    finally:
        cli.close()
