"""The notifications bell: the unread count in every page's header, the list, marking read.

Live pushes arrive later through the socket server; this page is the record.
"""

from __future__ import annotations

from flask import Blueprint, g, redirect, request, url_for
from flask_login import current_user

from telemed.services.notices import notifications
from telemed.web.pages.common import page, safe_path
from telemed.web.security import current_actor, roles_required

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

BELL_ITEMS = 5  # the newest notifications the header's popup lists


@bp.app_context_processor
def _bell() -> dict[str, object]:
    if not current_user.is_authenticated or g.get("authenticated_by_token"):
        return {"unread_notifications": 0, "bell_items": list}
    count = g.get("unread_notifications")
    if count is None:
        count = g.unread_notifications = notifications.unread_count(current_user.id)
    user_id = current_user.id
    # Called by the header's popup only, so a page without a header asks nothing more.
    return {
        "unread_notifications": count,
        "bell_items": lambda: [
            (note, *notifications.wording(note))
            for note in notifications.recent_for(user_id, limit=BELL_ITEMS)
        ],
    }


@bp.route("")
@roles_required()
def index():
    rows = notifications.recent_for(current_actor().user_id)
    # Worded now, in the reader's language (the rows keep a message key and parameters).
    words = {note.id: notifications.wording(note) for note in rows}
    return page("notifications/index.html", rows=rows, words=words)


@bp.route("/<int:notification_id>/read", methods=["POST"])
@roles_required()
def read(notification_id: int):
    note = notifications.mark_read(current_actor(), notification_id)
    if request.form.get("open") and note.link:
        return redirect(safe_path(note.link, url_for("notifications.index")), 303)
    return redirect(url_for("notifications.index"), 303)


@bp.route("/read-all", methods=["POST"])
@roles_required()
def read_all():
    notifications.mark_all_read(current_actor())
    return redirect(url_for("notifications.index"), 303)
