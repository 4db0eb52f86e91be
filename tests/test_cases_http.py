"""Cases over HTTP: the JSON API, the pages, and FHIR ServiceRequest / DiagnosticReport
(validated with the fhir.resources R4B models)."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.servicerequest import ServiceRequest

from telemed.extensions import db
from telemed.services.accounts.context import actor_of
from telemed.services.cases import dicom
from tests import dicom_files, factories
from tests.fhir_support import code_system, extension_url, identifier_system


@pytest.fixture
def tokens(world):
    return {name: factories.token_for(world.user(name)) for name in ("gp_ts1", "rad1", "gp_cm1")}


def bearer(tokens, name):
    return factories.bearer(tokens[name])


def test_imaging_read_through_the_api_end_to_end(app, world, client, tokens, tmp_path):
    patient = world.patients["TS1"][0].id
    radiology = world.departments["RAD"].id
    created = client.post(
        "/api/cases",
        json={
            "patient_id": patient,
            "kind": "imaging_read",
            "question": "Fracture?",
            "priority": "urgent",
            "target_department_id": radiology,
        },
        headers=bearer(tokens, "gp_ts1"),
    )
    assert created.status_code == 201, created.get_json()
    case_id = created.get_json()["id"]
    early = client.post(
        f"/api/cases/{case_id}/transitions",
        json={"to": "submitted"},
        headers=bearer(tokens, "gp_ts1"),
    )
    assert early.status_code == 422 and early.get_json()["error"]["field"] == "files"
    path = dicom_files.ct_series(tmp_path, 1)[0]
    dicom.attach_files(actor_of(world.user("gp_ts1")), case_id, [("ct.dcm", path)])
    db.session.commit()
    files = client.get(f"/api/cases/{case_id}/files", headers=bearer(tokens, "gp_ts1")).get_json()
    assert files["dicom"][0]["modality"] == "CT" and files["warnings"] == []
    submitted = client.post(
        f"/api/cases/{case_id}/transitions",
        json={"to": "submitted"},
        headers=bearer(tokens, "gp_ts1"),
    )
    assert submitted.status_code == 200
    worklist = client.get("/api/cases/worklist", headers=bearer(tokens, "rad1")).get_json()
    assert [item["id"] for item in worklist["items"]] == [case_id]
    assert worklist["items"][0]["overdue"] is False
    assert (
        client.post(f"/api/cases/{case_id}/claim", headers=bearer(tokens, "rad1")).status_code
        == 200
    )
    again = client.post(f"/api/cases/{case_id}/claim", headers=bearer(tokens, "rad1"))
    assert again.status_code == 409
    draft = client.put(
        f"/api/cases/{case_id}/report",
        json={
            "findings": "Cortical break of the radius",
            "impression": "Fracture",
            "critical": True,
        },
        headers=bearer(tokens, "rad1"),
    )
    assert draft.status_code == 200
    signed = client.post(f"/api/cases/{case_id}/report/sign", headers=bearer(tokens, "rad1"))
    assert signed.status_code == 200 and signed.get_json()["critical"] is True
    seen = client.get(f"/api/cases/{case_id}", headers=bearer(tokens, "gp_ts1")).get_json()
    assert seen["status"] == "reported" and seen["reports"][0]["impression"] == "Fracture"
    assert [step["to"] for step in seen["history"]] == ["draft", "submitted", "claimed", "reported"]
    assert client.get(f"/api/cases/{case_id}", headers=bearer(tokens, "gp_cm1")).status_code == 404

    # FHIR: the case is a ServiceRequest whose id leads to its DICOMweb root.
    fhir = client.get(f"/fhir/ServiceRequest/{case_id}", headers=bearer(tokens, "gp_ts1"))
    assert fhir.status_code == 200 and fhir.mimetype == "application/fhir+json"
    request = ServiceRequest.model_validate(fhir.get_json())
    assert request.id == str(case_id) and request.status == "completed"
    assert request.priority == "urgent" and request.subject.reference == f"Patient/{patient}"
    root = next(e.valueUrl for e in request.extension if e.url == extension_url("case-dicomweb"))
    assert str(root).endswith(f"/cases/{case_id}/dicomweb")
    studies = client.get(
        f"{str(root).split('localhost')[-1]}/studies", headers=bearer(tokens, "gp_ts1")
    )
    assert studies.status_code == 200 and len(studies.get_json()) == 1
    reports = client.get(
        f"/fhir/DiagnosticReport?based-on=ServiceRequest/{case_id}",
        headers=bearer(tokens, "gp_ts1"),
    )
    bundle = Bundle.model_validate(reports.get_json())
    assert len(bundle.entry) == 1
    report = DiagnosticReport.model_validate(reports.get_json()["entry"][0]["resource"])
    assert report.status == "final" and report.conclusion == "Fracture"
    assert report.basedOn[0].reference == f"ServiceRequest/{case_id}"
    assert report.conclusionCode[0].coding[0].code == "AA"
    one = client.get(f"/fhir/DiagnosticReport/{report.id}", headers=bearer(tokens, "rad1"))
    DiagnosticReport.model_validate(one.get_json())
    hidden = client.get(f"/fhir/DiagnosticReport/{report.id}", headers=bearer(tokens, "gp_cm1"))
    assert hidden.status_code == 404 and hidden.get_json()["resourceType"] == "OperationOutcome"


def test_fhir_service_request_create_read_search_within_scope(app, world, client, tokens):
    body = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": code_system("case-kind"), "code": "ecg_read"}]},
        "priority": "stat",
        "subject": {"reference": f"Patient/{world.patients['TS1'][1].id}"},
        "reasonCode": [{"text": "Chest pain, ST elevation?"}],
        "note": [{"text": "55 y, smoker"}],
        "performer": [
            {
                "identifier": {
                    "system": identifier_system("department-id"),
                    "value": str(world.departments["ECG"].id),
                }
            }
        ],
    }
    ServiceRequest.model_validate(body)
    created = client.post("/fhir/ServiceRequest", json=body, headers=bearer(tokens, "gp_ts1"))
    assert created.status_code == 201, created.get_json()
    made = ServiceRequest.model_validate(created.get_json())
    assert created.headers["Location"].endswith(f"/fhir/ServiceRequest/{made.id}")
    assert created.headers["ETag"] == 'W/"1"' and made.meta.versionId == "1"
    assert made.priority == "stat" and made.status == "draft"
    found = client.get(
        f"/fhir/ServiceRequest?patient=Patient/{world.patients['TS1'][1].id}&status=draft",
        headers=bearer(tokens, "gp_ts1"),
    )
    bundle = Bundle.model_validate(found.get_json())
    assert [entry.resource.id for entry in bundle.entry] == [made.id]
    outside = client.get("/fhir/ServiceRequest", headers=bearer(tokens, "gp_cm1")).get_json()
    assert outside.get("entry", []) == []
    assert (
        client.get(f"/fhir/ServiceRequest/{made.id}", headers=bearer(tokens, "gp_cm1")).status_code
        == 404
    )
    bad = client.post(
        "/fhir/ServiceRequest",
        json={**body, "reasonCode": []},
        headers=bearer(tokens, "gp_ts1"),
    )
    assert bad.status_code == 422 and bad.get_json()["issue"][0]["expression"] == ["reasonCode"]


def login(client, username):
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    response = client.post(
        "/login", data={"username": username, "password": factories.PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    return token


def test_pages_open_submit_claim_report_and_show_history(app, world, tmp_path):
    doctor, reader = app.test_client(), app.test_client()
    csrf = login(doctor, "gp_ts1")
    new = doctor.get("/cases/new")
    assert new.status_code == 200 and "Zhang San" in new.get_data(as_text=True)
    opened = doctor.post(
        "/cases/new",
        data={
            "csrf_token": csrf,
            "patient_id": world.patients["TS1"][0].id,
            "kind": "imaging_read",
            "question": "Nodule?",
            "priority": "critical",
            "target_department_id": world.departments["RAD"].id,
            "target_specialist_id": "",
        },
    )
    assert opened.status_code == 302, opened.get_data(as_text=True)
    case_url = opened.headers["Location"]
    case_id = int(case_url.rstrip("/").split("/")[-1])
    page = doctor.get(case_url).get_data(as_text=True)
    assert 'id="uploader"' in page and "No images attached" in page
    refused = doctor.post(f"{case_url}/transition", data={"csrf_token": csrf, "to": "submitted"})
    assert refused.status_code == 422 and "DICOM study" in refused.get_data(as_text=True)
    dicom.attach_files(
        actor_of(world.user("gp_ts1")),
        case_id,
        [
            ("ct.dcm", dicom_files.sample("CT_small.dcm")),
            ("deflate.dcm", dicom_files.sample("liver_deflate.dcm")),
        ],
    )
    db.session.commit()
    page = doctor.get(case_url).get_data(as_text=True)
    assert "CompressedSamples^CT1" in page and "Check the patient" in page
    assert "cannot be displayed here" in page and "1.2.840.10008.1.2.8.1" in page
    assert (
        doctor.post(
            f"{case_url}/transition", data={"csrf_token": csrf, "to": "submitted"}
        ).status_code
        == 302
    )
    reader_csrf = login(reader, "rad1")
    worklist = reader.get("/cases/worklist").get_data(as_text=True)
    assert f'data-case="{case_id}"' in worklist and "Claim" in worklist
    assert reader.post(f"{case_url}/claim", data={"csrf_token": reader_csrf}).status_code == 302
    signed = reader.post(
        f"{case_url}/report",
        data={
            "csrf_token": reader_csrf,
            "findings": "2 cm nodule right upper lobe",
            "impression": "Suspicious nodule",
            "critical": "on",
            "sign": "1",
        },
    )
    assert signed.status_code == 302
    page = doctor.get(case_url).get_data(as_text=True)
    assert "Suspicious nodule" in page and "CRITICAL FINDING" in page
    assert page.count("<tr><td>") >= 4  # history rows: draft, submitted, claimed, reported
    outsider = app.test_client()
    login(outsider, "gp_cm1")
    assert outsider.get(case_url).status_code == 404
    assert outsider.get(f"{case_url}/files/dicom/1").status_code == 404
    download = doctor.get(f"{case_url}/files/dicom/1")
    assert download.status_code == 200 and download.data[128:132] == b"DICM"
    download.close()
    studies = {i.modality: i.study_uid for i in dicom.instances_of(case_id)}
    export = doctor.get(f"{case_url}/studies/{studies['CT']}/deidentified.zip")
    assert export.status_code == 200 and export.data[:2] == b"PK"
    export.close()
    cannot = doctor.get(f"{case_url}/studies/{studies['SEG']}/deidentified.zip")
    assert cannot.status_code == 422 and "deflate.dcm" in cannot.get_data(as_text=True)
