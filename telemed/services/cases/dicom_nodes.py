"""Member institutions' DICOM settings, set by the admin: the AE title the institution
calls telemed from, and its PACS (host, port, AE title) that doctors retrieve from."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from telemed import clock
from telemed.domain.access import Actor
from telemed.domain.dicom_node import BadSetting, check_port, normalise_ae_title, normalise_host
from telemed.errors import Forbidden, InvalidInput, NotFound
from telemed.extensions import db
from telemed.models.consortium import Institution
from telemed.models.dicom_node import DicomNode, Retrieve
from telemed.services.accounts import audit


def node_of(institution_id: int) -> DicomNode | None:
    return db.session.execute(
        select(DicomNode).where(DicomNode.institution_id == institution_id)
    ).scalar_one_or_none()


def institution_calling_as(ae_title: str) -> int | None:
    """The institution whose modalities and PACS call telemed with this AE title."""
    title = (ae_title or "").strip()
    return db.session.execute(
        select(DicomNode.institution_id).where(DicomNode.ae_title == title)
    ).scalar_one_or_none()


def member_nodes(actor: Actor) -> list[tuple[Institution, DicomNode | None]]:
    """Every member institution of the admin's consortium with its settings, if any."""
    rows = db.session.execute(
        select(Institution, DicomNode)
        .outerjoin(DicomNode, DicomNode.institution_id == Institution.id)
        .where(Institution.consortium_id == actor.consortium_id, Institution.kind != "lead")
        .order_by(Institution.id)
    )
    return [(institution, node) for institution, node in rows]


def member_institution(actor: Actor, institution_id: int) -> Institution:
    if not actor.is_admin:
        raise Forbidden(_l("only an admin sets an institution's DICOM node"))
    institution = db.session.get(Institution, institution_id)
    if (
        institution is None
        or institution.consortium_id != actor.consortium_id
        or not institution.is_member
    ):
        raise NotFound(
            _l("member institution %(institution_id)s not found", institution_id=institution_id)
        )
    return institution


def _invalid(error: BadSetting) -> InvalidInput:
    return InvalidInput(str(error), field=error.field, rule=error.rule)


def set_node(
    actor: Actor,
    institution_id: int,
    *,
    ae_title: str,
    pacs_host: str | None = None,
    pacs_port: int | None = None,
    pacs_ae_title: str | None = None,
    pacs_retrieve: Retrieve = Retrieve.MOVE,
) -> DicomNode:
    """Set (or change) an institution's AE title and PACS. The PACS is all three of host,
    port and AE title, or none of them."""
    institution = member_institution(actor, institution_id)
    try:
        title = normalise_ae_title(ae_title)
        pacs = [pacs_host not in (None, ""), pacs_port is not None, pacs_ae_title not in (None, "")]
        if any(pacs) and not all(pacs):
            missing = ["pacs_host", "pacs_port", "pacs_ae_title"][pacs.index(False)]
            raise BadSetting("the PACS needs its host, port and AE title", missing, "pacs")
        host = normalise_host(pacs_host or "") if all(pacs) else None
        port = check_port(pacs_port) if pacs_port is not None else None
        pacs_title = normalise_ae_title(pacs_ae_title or "", "pacs_ae_title") if all(pacs) else None
    except BadSetting as error:
        raise _invalid(error) from None
    taken = db.session.execute(
        select(func.count())
        .select_from(DicomNode)
        .where(DicomNode.ae_title == title, DicomNode.institution_id != institution.id)
    ).scalar_one()
    if taken:
        raise InvalidInput(
            f"the AE title {title} belongs to another institution", field="ae_title", rule="taken"
        )
    node = node_of(institution.id)
    if node is None:
        node = DicomNode(institution_id=institution.id, ae_title=title)
        db.session.add(node)
    node.ae_title, node.pacs_host, node.pacs_port, node.pacs_ae_title = (
        title,
        host,
        port,
        pacs_title,
    )
    node.pacs_retrieve = pacs_retrieve
    node.updated_at = clock.now()
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:  # the same title given to another institution meanwhile
        raise InvalidInput(
            f"the AE title {title} belongs to another institution", field="ae_title", rule="taken"
        ) from None
    audit.record(
        actor,
        "set_dicom_node",
        "institution",
        institution.id,
        detail={
            "ae_title": title,
            "pacs": f"{pacs_title}@{host}:{port} ({pacs_retrieve.value})" if host else None,
        },
    )
    return node
