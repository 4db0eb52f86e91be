"""Words the page scripts write into the page, translated on the server.

A page that needs them carries its script's words as JSON (``{{ ui_text('case') }}`` in
its template); ``t(key, values)`` in ``static/js/_common.js`` looks a word up by its key
and fills ``%(name)s`` placeholders. So the scripts speak the page's language, and the
words are extracted and translated with every other string (``make messages``).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from telemed.domain.case_states import CaseStatus
from telemed.domain.live_rules import RoomRole
from telemed.labels import LABELS
from telemed.models.cases import Disposition
from telemed.models.live import RoomStatus

UI_TEXT = {
    "case": {
        "dicom_note": _l("DICOM files or a zip of the study folder"),
        "ecg_note": _l(
            "DICOM waveform, HL7 aECG, GE MUSE or Philips XML, SCP-ECG (.scp), "
            "WFDB (.hea with its .dat, .xyz) or CSV"
        ),
        "show_new_files": _l("Show the new files"),
        # The line under the uploader (static/js/_upload_pace.js).
        "upload_speed": _l("Sending at %(speed)s Mbit/s, %(left)s left"),
        "upload_paused": _l("Paused: link lost, resuming"),
        "seconds": _l("%(n)s s"),
        "minutes_seconds": _l("%(m)s min %(s)s s"),
        # A file's outcome after upload, by its code.
        "outcome_stored": _l("stored"),
        "outcome_skipped": _l("skipped"),
        "outcome_duplicate": _l("already attached"),
        "outcome_read": _l("read"),
        "outcome_incomplete": _l("incomplete"),
        "outcome_refused": _l("refused"),
        # A file the upload could not finish: the link failed (it may be retried).
        "upload_network": _l("the connection failed; retry when the link is back"),
        "upload_failed": _l("the upload failed (status %(status)s)"),
        "uploader_failed": _l(
            "Could not load the uploader: %(reason)s. Reload the page to try again."
        ),
        "viewer_loading": _l("Loading the viewer…"),
        "viewer_failed": _l("Could not load the viewer: %(reason)s"),
        "undisplayable": _l("This series is stored but cannot be displayed here."),
        "loading": _l("Loading…"),
        "loading_percent": _l("Loading… %(percent)s%%"),
        "loaded": _l("Loaded."),
        "load_failed": _l("Could not load: %(reason)s"),
        "not_shown": _l("This series was loaded but the viewer could not show it."),
        "segmentation_refused": _l(
            "A segmentation (SEG) is not shown in this viewer: open its source images instead."
        ),
        "length_mm": _l("%(value)s mm"),
        "length_px": _l("%(value)s pixels (the file gives no pixel spacing)"),
        # Window/level presets: the viewer's own and the page's (static/js/case.js).
        "preset_minmax": _l("full range"),
        "preset_voilut": _l("the file's VOI LUT"),
        "preset_soft_tissue": _l("soft tissue"),
        "preset_lung": _l("lung"),
        "preset_bone": _l("bone"),
        "preset_brain": _l("brain"),
        "preset_liver": _l("liver"),
    },
    "consult": {
        # Statuses by their code, in the words the pages use (``|label``).
        **{f"session_{s.value}": label for s, label in LABELS[RoomStatus].items()},
        **{f"case_{s.value}": label for s, label in LABELS[CaseStatus].items()},
        **{f"role_{r.value}": label for r, label in LABELS[RoomRole].items()},
        **{f"disposition_{d.value}": label for d, label in LABELS[Disposition].items()},
        "online": _l("online"),
        "connecting": _l("Connecting…"),
        "closed": _l("closed: %(reason)s"),
        "offline": _l("offline — reconnecting"),
        "offline_because": _l("offline — reconnecting (%(reason)s)"),
        # Why the live server closed the socket, by its close code (docs/live-protocol.md).
        "close_4400": _l("the page is out of date; reload it"),
        "close_4401": _l("signed out"),
        "close_4403": _l("no access to this consult"),
        "close_4404": _l("this consult room is not open"),
        "close_4408": _l("the server did not hear the page in time"),
        "close_4409": _l("catching up"),
        "close_4429": _l("too many messages at once"),
        "close_4430": _l("too many consult windows open"),
        "close_1001": _l("the live service restarted"),
        "close_1013": _l("the service is busy"),
        "draft_saved": _l("draft v%(version)s saved"),
        "signed": _l("Signed"),
        "starts_in": _l("starts in %(minutes)s min"),
        "started_ago": _l("started %(minutes)s min ago"),
        "starts_now": _l("starts now"),
        "frames": _l("%(count)s frame(s)"),
        "no_frames": _l("No rendered frames for this case yet; marks and viewport still sync."),
        "signed_title": _l("Signed report v%(version)s"),
        "findings": _l("Findings"),
        "impression": _l("Impression"),
        "advice": _l("Advice"),
        "disposition": _l("Disposition"),
        "follow_up_date": _l("Follow-up date"),
        "disposition_manage_locally": _l("Manage locally"),
        "disposition_refer_up": _l("Refer up (green channel)"),
        "disposition_follow_up": _l("Follow up at the member institution"),
        "referral_opened": _l("Upward referral %(referral)s opened (green channel)."),
        "call_state": _l("call %(state)s"),
        "call_ended": _l("ended"),
        # RTCPeerConnection.connectionState, by its code.
        "call_new": _l("starting"),
        "call_connecting": _l("connecting"),
        "call_connected": _l("connected"),
        "call_disconnected": _l("interrupted"),
        "call_failed": _l("failed"),
        "call_closed": _l("ended"),
        "no_call": _l("No call"),
        "call_error": _l("call error: %(reason)s"),
        "nobody_to_call": _l("Nobody to call yet"),
        "calling": _l("calling…"),
        "loading": _l("Loading…"),
        "earlier_failed": _l("Could not load earlier messages: %(reason)s"),
    },
}


def ui_text(page: str) -> Markup:
    """The ``<script>`` element holding ``page``'s words in the request's language."""
    words = {key: str(text) for key, text in UI_TEXT[page].items()}
    # HTML-safe JSON: "<", ">", "&" and "'" escaped, so no word can end the element early.
    body = htmlsafe_json_dumps(words, ensure_ascii=False)
    return Markup('<script type="application/json" id="ui-text">{}</script>').format(body)
