"""Attachments survive a backup and restore in both formats (their bytes are base64 in JSONL)."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from tests.security.test_evidence import _cli, finished
from workflow_app.models import Attachment
from workflow_app.services import attachments

PDF = b"%PDF-1.4\n\x00\xff\xfe binary \x80 bytes\n%%EOF\n"


@pytest.mark.parametrize("fmt", [None, "jsonl"])
def test_attachment_bytes_round_trip(app, people, database_url, defs_dir, tmp_path, fmt, clock):
    iid = finished(app, people)
    checked = attachments.Policy(1 << 20, ("pdf",)).check(attachments.Upload("evidence", "材料.pdf", PDF))
    with app.extensions["parkflow"].db.write() as s:
        attachments.save(s, iid, None, people["submitter"], [checked], clock())
    cli = _cli(app, database_url, defs_dir)
    out = tmp_path / "parkflow.backup"
    try:
        assert cli(*(["backup", str(out)] + (["--format", fmt] if fmt else []))).exit_code == 0
        with app.extensions["parkflow"].db.write() as s:
            s.query(Attachment).delete()
        restored = cli("restore", "--yes", str(out))
        assert restored.exit_code == 0, restored.output
    finally:
        cli.close()
    app.extensions["parkflow"].db.dispose()
    with app.extensions["parkflow"].db.read() as s:
        [row] = s.scalars(select(Attachment)).all()
        assert row.content == PDF and row.sha256 == hashlib.sha256(PDF).hexdigest() and row.filename == "材料.pdf"
