"""The device's ECG values beside the service's on the case page and in the consult
room, each labelled with its source; the signed report records, per value, whether the
reader confirmed the machine's, changed it or struck it."""

from __future__ import annotations

import html
import json
import re

from sqlalchemy import select

from telemed.db import write_intent
from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.extensions import db
from telemed.models.cases import Report
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, ecg_files
from tests.ecg.samples import SYNTHETIC
from tests.test_cases_http import login


def submitted_ecg_read(world) -> int:
    gp = actor_of(world.user("gp_ts1"))
    with write_intent(True):
        case = cases.open_case(
            gp,
            patient_id=world.patients["TS1"][0].id,
            kind=CaseKind.ECG_READ,
            question="Palpitations; the cart's export attached.",
            target_department_id=world.departments["ECG"].id,
        )
        ecg_files.attach_files(gp, case.id, [("muse.xml", SYNTHETIC / "muse.xml")])
        cases.transition(gp, case.id, CaseStatus.SUBMITTED)
        db.session.commit()
    return case.id


def rows_of(page: str, table_class: str) -> dict[str, str]:
    table = page.split(f'class="{table_class}"', 1)[1].split("</table>", 1)[0]
    found = {}
    for key, body in re.findall(r'<tr data-key="(\w+)"[^>]*>(.*?)</tr>', table, re.S):
        found[key] = " ".join(re.sub(r"<[^>]+>", " ", body).split())
    return found


def test_case_page_shows_both_sources_and_the_signed_report_says_whose_values(app, world):
    case_id = submitted_ecg_read(world)
    reader = app.test_client()
    csrf = login(reader, "ecg1")
    assert reader.post(f"/cases/{case_id}/claim", data={"csrf_token": csrf}).status_code == 302

    page = reader.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "GE MUSE (12SL)" in page and "Normal sinus rhythm; Normal ECG" in page
    rows = rows_of(page, "ecg-measurements")
    assert rows["pr_ms"].startswith("PR ") and rows["pr_ms"].endswith("160 ms")  # the device's
    assert rows["qtc_fridericia_ms"].endswith("430 ms")
    machine_qt = int(re.search(r"QT (\d+) ms", rows["qt_ms"]).group(1))
    assert 'name="ecg_qt_ms_action"' in page

    form = {
        "csrf_token": csrf,
        "impression": "Sinus rhythm, normal intervals",
        "ecg_pr_ms_action": "confirmed",
        "ecg_qt_ms_action": "changed",
        "ecg_qt_ms_value": "not a number",
        "ecg_t_axis_deg_action": "struck",
    }
    refused = reader.post(f"/cases/{case_id}/report", data=form)
    assert refused.status_code == 422
    assert "qt_ms" in refused.get_data(as_text=True) and "not a number" in refused.get_data(
        as_text=True
    )

    form |= {"ecg_qt_ms_value": str(machine_qt + 24), "sign": "1"}
    assert reader.post(f"/cases/{case_id}/report", data=form).status_code == 302

    db.session.remove()
    signed = db.session.execute(select(Report).where(Report.case_id == case_id)).scalar_one()
    by_key = {entry["key"]: entry for entry in signed.ecg_values}
    assert by_key["qt_ms"]["action"] == "changed"
    assert by_key["qt_ms"]["value"] == machine_qt + 24 and by_key["qt_ms"]["machine"] == machine_qt
    assert by_key["qt_ms"]["device"] == 400 and by_key["qt_ms"]["device_source"] == "GE MUSE (12SL)"
    assert by_key["pr_ms"]["action"] == "confirmed"
    assert by_key["pr_ms"]["value"] == by_key["pr_ms"]["machine"]
    assert by_key["t_axis_deg"]["action"] == "struck" and by_key["t_axis_deg"]["value"] is None

    doctor = app.test_client()
    login(doctor, "gp_ts1")
    page = doctor.get(f"/cases/{case_id}").get_data(as_text=True)
    reported = rows_of(page, "ecg-reported")
    assert reported["qt_ms"].startswith(f"QT {machine_qt + 24} ms changed {machine_qt} ms")
    assert "struck" in reported["t_axis_deg"]


def test_consult_room_shows_the_device_values_beside_the_service(app, client, world):
    gp = actor_of(world.user("gp_ts1"))
    spec = actor_of(world.user("card1"))
    with write_intent(True):
        case = cases.open_case(
            gp,
            patient_id=world.patients["TS1"][0].id,
            kind=CaseKind.CONSULT,
            question="Chest pain; the cart's ECG attached.",
            target_specialist_id=world.user("card1").id,
        )
        ecg_files.attach_files(gp, case.id, [("cart.scp", SYNTHETIC / "cart.scp")])
        cases.transition(gp, case.id, CaseStatus.SUBMITTED)
        cases.transition(spec, case.id, CaseStatus.ACCEPTED)
        cases.transition(spec, case.id, CaseStatus.SCHEDULED)
        db.session.commit()
    login(client, "card1")
    page = client.get(f"/consults/{case.id}").get_data(as_text=True)
    table = page.split('id="room-ecg-values"', 1)[1].split("</table>", 1)[0]
    assert "SCP-ECG section 7" in table
    assert re.search(
        r"PR</th>\s*<td class=\"machine\">\d+ ms.*?</td>\s*<td class=\"device\">160 ms", table, re.S
    )
    assert "Sinus rhythm" in page.split('id="room-ecg-values"', 1)[1]
    media = json.loads(html.unescape(re.search(r"data-media='([^']*)'", page).group(1)))
    assert media["ecg"]["values"]["device_source"] == "SCP-ECG section 7"


def test_the_api_takes_the_readers_word_on_each_value(app, world, client):
    from tests import factories

    case_id = submitted_ecg_read(world)
    token = factories.bearer(factories.token_for(world.user("ecg1")))
    assert client.post(f"/api/cases/{case_id}/claim", headers=token).status_code == 200
    bad = client.put(
        f"/api/cases/{case_id}/report",
        json={"impression": "x", "ecg_values": [{"key": "qt", "action": "changed", "value": 1}]},
        headers=token,
    )
    assert bad.status_code == 422 and "ecg_values" in bad.get_data(as_text=True)
    saved = client.put(
        f"/api/cases/{case_id}/report",
        json={
            "impression": "Sinus rhythm.",
            "ecg_values": [
                {"key": "qt_ms", "action": "changed", "value": 450},
                {"key": "pr_ms", "action": "struck"},
            ],
        },
        headers=token,
    )
    assert saved.status_code == 200, saved.get_data(as_text=True)
    signed = client.post(f"/api/cases/{case_id}/report/sign", headers=token).get_json()
    by_key = {entry["key"]: entry for entry in signed["ecg_values"]}
    assert (by_key["qt_ms"]["action"], by_key["qt_ms"]["value"]) == ("changed", 450)
    assert (by_key["pr_ms"]["action"], by_key["pr_ms"]["value"]) == ("struck", None)
    assert by_key["pr_ms"]["device"] == 160  # the cart's value stays on record
    assert by_key["heart_rate_bpm"]["action"] == "confirmed"


def test_stored_measurement_notes_are_worded_in_the_readers_language(app):
    from flask_babel import force_locale

    from telemed.web.ecg_view import worded_note

    stored = "the recording is too short to measure (under 2 s)"
    with force_locale("zh_Hans"):
        assert worded_note(stored) == "记录太短，无法测量（不足 2 秒）"
        assert worded_note("QT withheld: implausible (900 ms)").startswith("QT 未给出")
        assert worded_note("a library's own warning") == "a library's own warning"
    with force_locale("en"):
        assert worded_note(stored) == stored
