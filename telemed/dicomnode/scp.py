"""The DICOM node's listener: C-ECHO and C-STORE for member institutions.

Each association is checked when it is requested: its calling AE title must be one an
admin gave a member institution (else it is rejected, "calling AE title not recognised").
Each instance received is one entry point: checked as an upload is (outside the
transaction), its stored copy written and fsynced while it is recorded in the
institution's inbox or its matching case, and committed, before the success status goes
back. An association takes PDUs of up to ``MAX_PDU`` bytes (dcmtk's largest), so a
512×512 slice comes in four P-DATA PDUs rather than thirty-two. The data set is kept as
it came off the wire (every storage SOP class is accepted in every transfer syntax, so
nothing is transcoded); telemed writes the file meta information in front of it.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading

from flask import Flask
from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, evt
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from telemed.db import write_intent
from telemed.extensions import db
from telemed.services.accounts.context import Origin, set_origin
from telemed.services.cases import dicom, dicom_inbox, dicom_nodes

log = logging.getLogger(__name__)

SUCCESS = 0x0000
# C-STORE failures (PS3.4 B.2.3): out of resources, and "cannot understand" for a file the
# checks refuse (the peer logs it; nothing of it is kept).
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
# A-ASSOCIATE-RJ: rejected permanent, by the service user, calling AE title not recognised.
REJECT_UNKNOWN_CALLING_AE = (0x01, 0x01, 0x03)
# The largest PDU the node takes (the peer sends at most this); dcmtk's own maximum.
MAX_PDU = 131072


class NoDelayServer(ThreadedAssociationServer):
    """Association server whose accepted sockets send small PDUs at once (TCP_NODELAY):
    C-STORE responses and echo replies are a few dozen bytes, and Nagle's algorithm with
    delayed ACKs would hold each one back by tens of milliseconds."""

    def get_request(self):
        client, address = super().get_request()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address

    def shutdown(self) -> None:
        # Made with make_server, not start_server, so the AE does not list it among its
        # servers (which pynetdicom's own shutdown would remove it from).
        socketserver.BaseServer.shutdown(self)
        self.server_close()


def _peer(event) -> tuple[str, str]:
    """The calling AE title (from the A-ASSOCIATE request itself: the requestor's fields
    are filled in only once the association is negotiated) and the peer's address."""
    remote = event.assoc.requestor
    primitive = remote.primitive
    calling = primitive.calling_ae_title if primitive is not None else remote.ae_title
    return str(calling or "").strip(), str(remote.address)


def check_calling_ae(event, app: Flask) -> None:
    calling, address = _peer(event)
    try:
        with app.app_context():
            known = dicom_nodes.institution_calling_as(calling) is not None
            db.session.remove()
    except Exception:  # a failed look-up refuses: it must never let a stranger in
        log.exception("could not check the calling AE %r", calling)
        known = False
    if not known:
        log.warning("refused an association from %s: unknown calling AE %r", address, calling)
        event.assoc.acse.send_reject(*REJECT_UNKNOWN_CALLING_AE)
        event.assoc.kill()  # waits until the rejection has left, as pynetdicom's own do


def handle_echo(_event) -> int:
    return SUCCESS


def handle_store(event, app: Flask) -> int:
    """One instance: checked in process (or by a worker) outside any transaction; its
    stored copy written and fsynced by a storing thread while one transaction checks the
    calling AE title is still a member's and records the instance; Success only after
    both the file is on disk and the transaction committed."""
    calling, address = _peer(event)
    data = event.encoded_dataset()
    sop = str(event.request.AffectedSOPInstanceUID)
    # Where each study of this association went (dicom_inbox._case_for).
    routes = event.assoc.__dict__.setdefault("telemed_routes", {})
    outcome = None
    with app.app_context():
        set_origin(Origin("dicom", ip=address, user_agent=f"AE {calling}"))
        try:
            # Checked and stored outside the transaction, as uploads are.
            outcome = dicom.prepare(data, f"{calling}/{sop}.dcm", write_later=True).outcomes[0]
            if outcome.index is not None and outcome.index["sop_instance_uid"] != sop:
                # The file meta telemed writes names the request's instance: they must agree.
                outcome.status, outcome.index = "refused", None
                outcome.reason = "the data set's SOP Instance UID is not the request's"
            with write_intent():
                institution_id = dicom_nodes.institution_calling_as(calling)
                if institution_id is None:  # its AE title was taken away meanwhile
                    db.session.rollback()
                    outcome.abandon()
                    return CANNOT_UNDERSTAND
                received = dicom_inbox.receive(institution_id, calling, outcome, routes)
                db.session.commit()
        except Exception:
            db.session.rollback()
            if outcome is not None:
                outcome.abandon()
            log.exception("storing an instance from %s (%s) failed", calling, address)
            return OUT_OF_RESOURCES
        finally:
            db.session.remove()
    if received.status == "refused":
        log.warning("refused an instance from %s: %s", calling, received.reason)
        return CANNOT_UNDERSTAND
    return SUCCESS


def application_entity(ae_title: str, timeout: float) -> AE:
    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.require_called_aet = True
    ae.maximum_pdu_size = MAX_PDU
    ae.maximum_associations = 16
    ae.add_supported_context(Verification)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, AllTransferSyntaxes)
    return ae


class ListenerUnavailable(RuntimeError):
    """The listener's address cannot be bound (in use, not this machine's)."""


class DicomListener:
    """The listener on its own thread (associations each get one more)."""

    def __init__(self, app: Flask, *, host: str | None = None, port: int | None = None) -> None:
        config = app.config
        self.ae_title = config["TELEMED_DICOM_AE_TITLE"]
        self.host = host if host is not None else config["TELEMED_DICOM_HOST"]
        ae = application_entity(self.ae_title, float(config["TELEMED_DICOM_TIMEOUT_S"]))
        handlers = [
            (evt.EVT_REQUESTED, check_calling_ae, [app]),
            (evt.EVT_C_ECHO, handle_echo),
            (evt.EVT_C_STORE, handle_store, [app]),
        ]
        address = (self.host, config["TELEMED_DICOM_PORT"] if port is None else port)
        try:
            self.server = ae.make_server(
                address,
                ae_title=self.ae_title,
                evt_handlers=handlers,
                server_class=NoDelayServer,
            )
        except OSError as error:
            raise ListenerUnavailable(
                f"the DICOM node cannot listen on {address[0]}:{address[1]} ({error.strerror}); "
                "set TELEMED_DICOM_HOST/TELEMED_DICOM_PORT, or TELEMED_RUN_DICOM=0"
            ) from None
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="dicom-listener", daemon=True
        )

    def start(self) -> DicomListener:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
