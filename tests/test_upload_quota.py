"""Upload quotas: the bytes a user, and an institution, may declare for uploads in 24
hours. Beyond them a tus creation is answered 413 naming the file and what is left; the
case page shows what is left beside the uploader."""

from __future__ import annotations

import base64

import pytest

from telemed.domain.case_states import CaseKind
from telemed.extensions import db
from telemed.models.consortium import Role
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases
from tests import factories
from tests.test_dicom_service import open_imaging_case

TUS = {"Tus-Resumable": "1.0.0"}
MB = 1024 * 1024


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


@pytest.fixture
def quotas(app):
    app.config["TELEMED_UPLOAD_QUOTA_USER_BYTES"] = 10 * MB
    app.config["TELEMED_UPLOAD_QUOTA_INSTITUTION_BYTES"] = 15 * MB


def create(client, headers, case_id: int, length: int, name: str = "a.dcm"):
    return client.post(
        "/uploads",
        headers={
            **TUS,
            **headers,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(filename=name, case_id=str(case_id)),
        },
    )


def test_a_user_cannot_declare_more_than_the_quota(quotas, world, client):
    case_id = open_imaging_case(world).id
    db.session.commit()
    headers = factories.bearer(factories.token_for(world.user("gp_ts1")))
    first = create(client, headers, case_id, 6 * MB)
    assert first.status_code == 201 and first.headers["Upload-Quota-Left"] == str(4 * MB)
    refused = create(client, headers, case_id, 5 * MB, "big.dcm")
    assert refused.status_code == 413
    error = refused.get_json()["error"]
    assert error["field"] == "filename" and error["message"].startswith("big.dcm:")
    assert "your upload quota" in error["message"]
    assert error["detail"]["quota_left"] == 4 * MB
    assert create(client, headers, case_id, 4 * MB).status_code == 201


def test_an_institution_shares_its_quota(quotas, world, client):
    factories.add_user("gp_ts1b", Role.GRASSROOTS, world.members[0])
    case_id = open_imaging_case(world).id
    db.session.commit()
    one = factories.bearer(factories.token_for(world.user("gp_ts1")))
    from sqlalchemy import select

    from telemed.models.consortium import User

    colleague = db.session.execute(select(User).where(User.username == "gp_ts1b")).scalar_one()
    two = factories.bearer(factories.token_for(colleague))
    assert create(client, one, case_id, 9 * MB).status_code == 201
    refused = create(client, two, case_id, 7 * MB)
    assert refused.status_code == 413
    assert "institution's upload quota" in refused.get_json()["error"]["message"]
    # Another institution is not affected.
    other = factories.bearer(factories.token_for(world.user("gp_cm1")))
    other_case = cases.open_case(
        actor_of(world.user("gp_cm1")),
        patient_id=world.patients["CM1"][0].id,
        kind=CaseKind.IMAGING_READ,
        question="Nodule?",
        target_department_id=world.departments["RAD"].id,
    ).id
    db.session.commit()
    assert create(client, other, other_case, 9 * MB).status_code == 201


def test_the_case_page_shows_what_is_left(quotas, world, client):
    case_id = open_imaging_case(world).id
    db.session.commit()
    headers = factories.bearer(factories.token_for(world.user("gp_ts1")))
    assert create(client, headers, case_id, 3 * MB).status_code == 201
    page = client.get(f"/cases/{case_id}", headers=headers)
    html = page.get_data(as_text=True)
    assert f'data-quota-left="{7 * MB}"' in html
    assert "Upload quota left today: 7 MB" in html  # the user reads English
