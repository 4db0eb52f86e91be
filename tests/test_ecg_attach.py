"""ECG recordings attached to cases: every format read by the ECG library in the worker,
stored (original + normalised .npz), measured, drawn as SVG; bad files refused by name."""

from __future__ import annotations

import math

import numpy as np
import pytest
from flask_babel import force_locale

from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.extensions import db
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, ecg_files
from tests import factories
from tests.ecg import samples


def open_ecg_case(world):
    return cases.open_case(
        actor_of(world.user("gp_ts1")),
        patient_id=world.patients["TS1"][0].id,
        kind=CaseKind.ECG_READ,
        question="Palpitations; please read.",
        target_department_id=world.departments["ECG"].id,
    )


def csv_file(path, rows=5000, rate=500):
    t = np.arange(rows) / rate
    lines = [f"# sampling_rate={rate}", "I,II"]
    lines += [
        f"{1000 * math.sin(2 * math.pi * x):.1f},{800 * math.sin(2 * math.pi * x):.1f}" for x in t
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_format_is_read_stored_and_measured(app, world, tmp_path):
    gp = actor_of(world.user("gp_ts1"))
    case = open_ecg_case(world)
    outcomes = ecg_files.attach_files(
        gp,
        case.id,
        [
            ("waveform_ecg.dcm", samples.DICOM_WAVEFORM),
            ("subject1_0.xml", samples.AECG_FULL),
            ("100.hea", samples.WFDB_HEADER),
            ("100.dat", samples.WFDB_DATA),
            ("leads.csv", csv_file(tmp_path / "leads.csv")),
        ],
    )
    assert [o.status for o in outcomes] == ["read", "read", "incomplete", "read", "read"]
    with force_locale("en"):
        assert str(outcomes[2].reason) == "waiting for 100.dat"
    assert outcomes[2].recording_id == outcomes[3].recording_id
    recordings = {r.format: r for r in ecg_files.recordings_of(case.id)}
    assert set(recordings) == {"dicom", "hl7_aecg", "wfdb", "csv"}
    dicom_ecg = recordings["dicom"]
    assert dicom_ecg.sampling_rate_hz == 1000 and len(dicom_ecg.leads) == 12
    assert dicom_ecg.found_identifiers["id"] == "642341"
    assert dicom_ecg.measurements["is_machine_measurement"] is True
    assert 40 < dicom_ecg.measurements["heart_rate_bpm"] < 120
    wfdb = recordings["wfdb"]
    assert [o["filename"] for o in wfdb.originals] == ["100.hea", "100.dat"]
    assert wfdb.leads[:2] == ["II", "V5"] and wfdb.sampling_rate_hz == 360
    stored = ecg_files.store().path_of(wfdb.normalised_sha256)
    with np.load(stored) as data:
        assert data["samples"].shape[0] == len(wfdb.leads)
    csv = recordings["csv"]
    assert {"III", "aVR", "aVL", "aVF"} <= set(csv.leads)  # derived from I and II
    svg = ecg_files.render_svg(dicom_ecg, speed=25, gain=10, start=0)
    assert svg.startswith("<svg") or "<svg" in svg[:200]
    cases.transition(gp, case.id, CaseStatus.SUBMITTED)


def test_bad_ecg_files_are_refused_by_name_and_the_good_kept(app, world, tmp_path):
    gp = actor_of(world.user("gp_ts1"))
    case = open_ecg_case(world)
    xxe = tmp_path / "xxe.xml"
    xxe.write_text(
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<AnnotatedECG xmlns="urn:hl7-org:v3">&x;</AnnotatedECG>'
    )
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("# sampling_rate=500\nI,II\n1,2\n3\n5,6\n")
    text = tmp_path / "text.csv"
    text.write_text("# sampling_rate=500\nI,II\n1,2\nthree,4\n5,6\n")
    picture = tmp_path / "photo.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with force_locale("en"):  # the reasons are checked in English below
        attached = ecg_files.attach_files(
            gp,
            case.id,
            [
                ("xxe.xml", xxe),
                ("ragged.csv", ragged),
                ("text.csv", text),
                ("photo.png", picture),
                ("good.csv", csv_file(tmp_path / "good.csv")),
            ],
        )
    outcomes = {o.filename: o for o in attached}
    assert outcomes["good.csv"].status == "read"
    for name in ("xxe.xml", "ragged.csv", "text.csv", "photo.png"):
        assert outcomes[name].status == "refused" and outcomes[name].reason, name
    assert "entit" in outcomes["xxe.xml"].reason.lower() or "DTD" in outcomes["xxe.xml"].reason
    assert ecg_files.count_recordings(case.id) == 1


@pytest.fixture
def read_ecg_case(world):
    case = open_ecg_case(world)
    ecg_files.attach_files(
        actor_of(world.user("gp_ts1")), case.id, [("waveform_ecg.dcm", samples.DICOM_WAVEFORM)]
    )
    recording_id = ecg_files.recordings_of(case.id)[0].id
    case_id = case.id
    db.session.commit()
    return case_id, recording_id


def test_svg_and_files_follow_the_case_access_rules(app, world, client, read_ecg_case):
    case_id, recording_id = read_ecg_case
    tokens = {n: factories.token_for(world.user(n)) for n in ("gp_ts1", "ecg1", "gp_cm1", "rad1")}
    url = f"/cases/{case_id}/ecg/{recording_id}.svg"
    for name in ("gp_ts1", "ecg1"):
        response = client.get(f"{url}?speed=50&gain=20", headers=factories.bearer(tokens[name]))
        assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    for name in ("gp_cm1", "rad1"):
        assert client.get(url, headers=factories.bearer(tokens[name])).status_code == 404
        original = client.get(
            f"/cases/{case_id}/files/ecg/{recording_id}", headers=factories.bearer(tokens[name])
        )
        assert original.status_code == 404
    bad_speed = client.get(f"{url}?speed=33", headers=factories.bearer(tokens["ecg1"]))
    assert bad_speed.status_code == 422
    page = client.get(f"/cases/{case_id}", headers=factories.bearer(tokens["ecg1"]))
    text = page.get_data(as_text=True)
    assert "machine measurement, to be confirmed by the reader" in text
    assert "data-ecg-viewer" in text
    assert "the file names the patient &#39;Anonymous&#39;" in text  # beside the case's patient


def test_ptb_record_waits_for_each_signal_file_then_reads_all_fifteen(app, world):
    from tests.ecg.samples import SYNTHETIC

    gp = actor_of(world.user("gp_ts1"))
    case = open_ecg_case(world)
    outcomes = ecg_files.attach_files(
        gp,
        case.id,
        [(name, SYNTHETIC / name) for name in ("ptb01.xyz", "ptb01.hea", "ptb01.dat")],
    )
    assert [(o.status, o.reason) for o in outcomes] == [
        ("incomplete", "waiting for ptb01.hea"),
        ("incomplete", "waiting for ptb01.dat"),
        ("read", None),
    ]
    (recording,) = ecg_files.recordings_of(case.id)
    assert len(recording.leads) == 15 and recording.leads[-3:] == ["vx", "vy", "vz"]
    assert sorted(o["filename"] for o in recording.originals) == [
        "ptb01.dat", "ptb01.hea", "ptb01.xyz",
    ]  # fmt: skip


def test_cart_exports_keep_the_device_report_beside_the_machine_measurements(app, world):
    from tests.ecg.samples import SYNTHETIC

    gp = actor_of(world.user("gp_ts1"))
    case = open_ecg_case(world)
    outcomes = ecg_files.attach_files(
        gp, case.id, [(name, SYNTHETIC / name) for name in ("muse.xml", "cart.scp")]
    )
    assert [o.status for o in outcomes] == ["read", "read"]
    muse, scp = ecg_files.recordings_of(case.id)
    assert (muse.format, scp.format) == ("ge_muse", "scp_ecg")
    assert muse.device_report["source"] == "GE MUSE (12SL)"
    assert muse.device_report["values"]["pr_ms"] == 160
    assert muse.acquisition["low_pass_hz"] == 150
    assert scp.device_report["statements"] == ["Sinus rhythm"]
    assert muse.measurements["is_machine_measurement"] is True


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("zh_Hans", "GE MUSE XML：导联 I 不是有效的 Base64"), ("en", "GE MUSE XML: lead I is not")],
)
def test_a_refusal_made_in_the_worker_is_worded_in_the_senders_language(
    app, world, tmp_path, locale, expected
):
    muse = (samples.SYNTHETIC / "muse.xml").read_text()
    start = muse.index("<WaveFormData>") + len("<WaveFormData>")
    damaged = tmp_path / "muse.xml"
    damaged.write_text(muse[:start] + "!!not base64!!" + muse[muse.index("</WaveFormData>") :])
    case = open_ecg_case(world)
    with force_locale(locale):
        (outcome,) = ecg_files.attach_files(
            actor_of(world.user("gp_ts1")), case.id, [("muse.xml", damaged)]
        )
    assert outcome.status == "refused"
    assert expected in str(outcome.reason), outcome.reason
