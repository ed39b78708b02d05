"""Downloading an attachment (`/attachments/<id>`): only for someone who may see the application
it belongs to (404 otherwise, like the instance page, so ids cannot be probed). The file name is
sent RFC 6266/5987 style (an ASCII fallback plus `filename*` in UTF-8), so Chinese names arrive
intact and a name cannot break out of the header."""
from __future__ import annotations

from io import BytesIO

from flask import Blueprint, abort, request, send_file
from flask_login import login_required

from ..container import services
from ..engine.errors import NotFound
from ..services import attachments
from .current import me

bp = Blueprint("files", __name__)


@bp.get("/attachments/<int:aid>")
@login_required
def download(aid: int):
    user = me()
    via = request.args.get("via", type=int)
    with services().db.read() as s:
        try:
            row = attachments.for_download(s, aid, user_id=user.id, memberships=user.memberships,
                                           admin_role=user.admin_role, via=via)
        except NotFound:
            abort(404)
        content, name, media_type = row.content, row.filename, row.media_type
    response = send_file(BytesIO(content), mimetype=media_type, as_attachment=True, download_name=name,
                         max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response
