"""The page blueprints (inbox, start, instances, definitions) and what every page template shares:
the `tr(zh, en)` wording helper and the header's data (who is signed in, the capacities they
can act in)."""
from __future__ import annotations

from flask import Flask
from flask_login import current_user

from . import labels


BUTTONS = {  # what the buttons say (the timeline uses labels.ACTION: what was done)
    "approve": ("同意", "Approve"), "reject": ("拒绝", "Reject"), "return": ("退回", "Return"),
    "submit": ("提交", "Submit"), "withdraw": ("撤回", "Withdraw"), "transfer": ("转办", "Transfer"),
    "delegate": ("委派", "Delegate"), "add_signer": ("加签", "Add signer"),
    "remove_signer": ("减签", "Remove signer"), "claim": ("认领", "Claim"),
    "release": ("放回部门队列", "Release to the queue"), "comment": ("评论", "Comment"),
    "cc": ("抄送", "Copy to"), "urge": ("催办", "Send a reminder"),
    "supplement": ("要求补正", "Ask for supplements"), "pause": ("暂停计时", "Stop the clock"),
    "resume": ("恢复计时", "Restart the clock"), "request_extension": ("申请延期", "Request extension"),
    "grant_extension": ("批准延期", "Grant extension"),
}


def button(code: str, spec=None) -> str:
    """The label of the button for `code` (custom actions: their label in the definition)."""
    if code in BUTTONS:
        return labels.pick(BUTTONS[code])
    return labels.action_label(code, spec)


def tr(zh: str, en: str = "") -> str:
    """Page wording in the current language (Simplified Chinese unless the user chose English)."""
    return labels.pick((zh, en))


def register_pages(app: Flask) -> None:
    from . import calendar_admin, compliance, definitions, files, inbox, instances, portfolio, start

    app.register_blueprint(inbox.bp)
    app.register_blueprint(start.bp)
    app.register_blueprint(instances.bp)
    app.register_blueprint(definitions.bp)
    app.register_blueprint(compliance.bp)
    app.register_blueprint(portfolio.bp)
    app.register_blueprint(calendar_admin.bp)
    app.register_blueprint(files.bp)
    app.jinja_env.globals.update(tr=tr, button=button)
    from . import security; security.register(app)  # noqa: E702  /security pages + the gate (三员, 2FA, expiry)
    from . import notifications; notifications.register(app)  # noqa: E702  /notifications, /sla, unread badge, days_left

    @app.context_processor
    def header():
        user = current_user if current_user and current_user.is_authenticated else None
        return {"signed_in": user, "lang": "en" if labels.english() else "zh"}
