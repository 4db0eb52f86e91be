"""Error messages speak the reader's language: the API and uploads follow the request's
Accept-Language, the live socket the language of the ticket's user; codes and fields stay
the same for programs."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import select

from telemed.extensions import db
from telemed.models.scheduling import Slot
from tests import factories
from tests import live_support as ls
from tests.live_support import enter
from tests.test_uploads_http import TUS, metadata


@pytest.fixture
def gp(world):
    return factories.bearer(factories.token_for(world.user("gp_ts1")))


@pytest.fixture
def slot_id(world):
    publication = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    query = select(Slot.id).where(Slot.schedule_id == publication.schedule.id)
    return db.session.execute(query.order_by(Slot.starts_at)).scalars().first()


def refusal(response) -> dict:
    assert response.is_json, response.get_data(as_text=True)
    return response.get_json()["error"]


def test_an_api_refusal_follows_accept_language(world, client, gp, slot_id):
    body = {"slot_id": slot_id, "patient_id": 999999}
    chinese = refusal(
        client.post("/api/bookings", json=body, headers={**gp, "Accept-Language": "zh-CN,zh;q=0.9"})
    )
    english = refusal(
        client.post("/api/bookings", json=body, headers={**gp, "Accept-Language": "en-US"})
    )
    assert chinese["message"] == "未找到患者 999999"
    assert english["message"] == "patient 999999 not found"
    assert (chinese["code"], chinese["field"]) == (english["code"], english["field"])
    assert (english["code"], english["field"]) == ("not_found", "patient_id")


def test_without_accept_language_the_accounts_language_is_used(world, client, gp, slot_id):
    world.user("gp_ts1").locale = "zh_Hans"
    db.session.commit()
    body = {"slot_id": slot_id, "patient_id": 999999}
    assert refusal(client.post("/api/bookings", json=body, headers=gp))["message"] == (
        "未找到患者 999999"
    )


def test_schema_and_http_refusals_are_translated_too(world, client, gp):
    zh = {**gp, "Accept-Language": "zh-CN"}
    missing = refusal(client.post("/api/bookings", json={"slot_id": 1}, headers=zh))
    assert missing["field"] == "patient_id" and missing["message"] == "patient_id: 此项为必填项。"
    either = refusal(client.post("/api/bookings", json={"patient_id": 1}, headers=zh))
    assert either["message"] == "slot_id: 请提供号源时段（slot_id）或占号（hold_id）之一"
    nowhere = refusal(client.get("/api/no-such-thing", headers=zh))
    assert nowhere["code"] == "not_found" and nowhere["message"] == "未找到：此地址没有内容。"
    wrong_type = refusal(
        client.post("/api/bookings", data="x", headers={**zh, "Content-Type": "text/plain"})
    )
    assert wrong_type["message"] == "Content-Type 须为 application/json，而不是 text/plain"


def test_an_upload_refusal_follows_accept_language(world, client, gp):
    headers = {**TUS, **gp, "Upload-Length": "10", "Upload-Metadata": metadata(filename="a.dcm")}
    chinese = refusal(client.post("/uploads", headers={**headers, "Accept-Language": "zh-CN"}))
    english = refusal(client.post("/uploads", headers={**headers, "Accept-Language": "en"}))
    assert chinese["message"] == "Upload-Metadata 需包含病例编号（case_id）"
    assert english["message"] == "Upload-Metadata needs the case_id"
    assert chinese["code"] == english["code"] == "invalid_input"


@pytest.fixture
def live(app):
    with ls.serving(app) as thread:
        yield thread


def test_the_live_sockets_refusals_speak_the_users_language(world, live):
    consult = ls.scheduled_consult(world)
    world.user("gp_ts1").locale = "zh_Hans"
    db.session.commit()

    async def scenario():
        doctor = await enter(live, world, consult, "gp_ts1")
        answer = await doctor.request("annotation.add", {"mark": "x", "shape": "star"})
        assert (answer["code"], answer["field"]) == ("invalid", "body.shape")
        assert answer["message"].startswith("shape 须为以下之一：")
        await doctor.close()
        specialist = await enter(live, world, consult, "card1")  # English, as the world's users
        answer = await specialist.request("annotation.add", {"mark": "x", "shape": "star"})
        assert answer["message"].startswith("shape must be one of")
        await specialist.close()

    asyncio.run(scenario())


# -- every surface, in both languages ------------------------------------------------------

CJK = re.compile(r"[\u4e00-\u9fff]")
# What may stay as it is in a Chinese message: media types, parameters (a=b), file names,
# quoted values, identifiers in capitals (DICOM, UID, SOP) and numbers.
KEPT = re.compile(
    r"[\w.+-]+/[\w.+*-]+"  # media types, references (Patient/1)
    r"|[\w-]+=\S*"  # parameters
    r"|'[^']*'|\"[^\"]*\""  # quoted values
    r"|\b[\w-]+\.(?:dcm|txt|zip|json)\b"  # file names
    r"|\b[A-Z][A-Z0-9]+\b"  # DICOM, UID, SOP
)
PATHS = ("/instance/", "/tmp/", "storage", "/uploads/", "/var/", "/home/")


def said_in(language: str, message: str, *names: str) -> None:
    """``message`` is in ``language`` (zh or en) and names no server path; ``names``
    (fields, codes, file names) may stay as they are in Chinese."""
    assert message, "no message"
    assert not any(path in message for path in PATHS), message
    if language == "en":
        assert not CJK.search(message), message
        return
    assert CJK.search(message), message
    rest = KEPT.sub(" ", message)
    for name in names:
        rest = rest.replace(name, " ")
    assert not re.search(r"[A-Za-z]{3,}", rest), (message, rest)


LANGUAGES = {"zh": "zh-CN,zh;q=0.9", "en": "en-US,en;q=0.8"}


@pytest.fixture
def case_id(world):
    from tests.test_dicom_service import open_imaging_case

    opened = open_imaging_case(world).id
    db.session.commit()
    return opened


def tus_upload(client, gp, case_id: int, name: str, data: bytes, language: str):
    """One file through tus: created, sent in one PATCH; the PATCH's answer."""
    headers = {**TUS, **gp, "Accept-Language": LANGUAGES[language]}
    created = client.post(
        "/uploads",
        headers={
            **headers,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(filename=name, case_id=str(case_id)),
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    return created.headers["Location"], client.patch(
        created.headers["Location"],
        data=data,
        headers={
            **headers,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )


def bad_files(tmp_path) -> dict[str, bytes]:
    import warnings

    import pydicom

    from tests import dicom_files

    good = dicom_files.ct_series(tmp_path / "good", 1)[0]
    odd = pydicom.dcmread(dicom_files.ct_series(tmp_path / "odd", 1)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the UID it is asked to write
        odd.SOPInstanceUID = "1.2.3/4 5"
        odd.save_as(tmp_path / "uid.dcm", enforce_file_format=True)
    return {
        "notes.dcm": b"this is a text file, not an image\n" * 20,
        "cut.dcm": dicom_files.sample("emri_small_jpeg_2k_lossless_too_short.dcm").read_bytes(),
        "program.dcm": dicom_files.executable_preamble(tmp_path / "exe.dcm").read_bytes(),
        "uid.dcm": (tmp_path / "uid.dcm").read_bytes(),
        "good.dcm": good.read_bytes(),
    }


@pytest.mark.parametrize("language", ["zh", "en"])
def test_dicom_refusals_after_an_upload_are_in_the_senders_language(
    world, client, gp, case_id, tmp_path, language
):
    files = bad_files(tmp_path)
    for name in ("notes.dcm", "cut.dcm", "program.dcm", "uid.dcm"):
        location, answer = tus_upload(client, gp, case_id, name, files[name], language)
        assert answer.status_code == 422, (name, answer.get_data(as_text=True))
        error = refusal(answer)
        assert (error["code"], error["field"]) == ("invalid_input", "file")
        assert error["message"].startswith(f"{name}")
        said_in(language, error["message"], name, "SOPInstanceUID")
        # The upload's record says it too, in the language of whoever reads it.
        other = "en" if language == "zh" else "zh"
        kept = client.get(location, headers={**gp, "Accept-Language": LANGUAGES[other]})
        reason = kept.get_json()["result"]["files"][0]["reason"]
        said_in(other, reason, "SOPInstanceUID")
    # Too large for the server: refused when the upload is created, naming the file.
    too_big = client.post(
        "/uploads",
        headers={
            **TUS,
            **gp,
            "Accept-Language": LANGUAGES[language],
            "Upload-Length": str(10 * 1024**4),
            "Upload-Metadata": metadata(filename="huge.dcm", case_id=str(case_id)),
        },
    )
    assert too_big.status_code == 413
    error = refusal(too_big)
    assert (error["code"], error["field"]) == ("upload", "filename")
    said_in(language, error["message"], "huge.dcm")
    # The same file twice: the second is a duplicate, said in words.
    for _ in range(2):
        _location, answer = tus_upload(client, gp, case_id, "good.dcm", files["good.dcm"], language)
        assert answer.status_code == 204
    kept = client.get(_location, headers={**gp, "Accept-Language": LANGUAGES[language]})
    outcome = kept.get_json()["result"]["files"][0]
    assert outcome["status"] == "duplicate"
    said_in(language, outcome["reason"], "SOP")


def test_a_files_patient_mismatch_is_said_on_the_case_page_in_the_readers_language(
    world, client, gp, case_id, tmp_path
):
    from tests import dicom_files

    other = dicom_files.ct_series(tmp_path, 1, patient_name="Li^Si", patient_id="999")[0]
    _location, answer = tus_upload(client, gp, case_id, "other.dcm", other.read_bytes(), "zh")
    assert answer.status_code == 204
    from tests.test_cases_http import login

    page = client.application.test_client()
    login(page, "gp_ts1")
    for locale, words in (("zh_Hans", "核对患者"), ("en", "Check the patient")):
        world.user("gp_ts1").locale = locale
        db.session.commit()
        html = page.get(f"/cases/{case_id}").get_data(as_text=True)
        warning = html.split('<p class="warning" role="alert">')[1].split("</p>")[0]
        assert words in warning, warning
        said_in("zh" if locale == "zh_Hans" else "en", warning, "Li^Si", "Zhang", "San")


def stow(client, gp, case_id: int, parts: list[bytes], language: str, study: str = ""):
    boundary = "b0undary"
    body = b""
    for part in parts:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part
        body += b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return client.post(
        f"/cases/{case_id}/dicomweb/studies" + (f"/{study}" if study else ""),
        data=body,
        headers={
            **gp,
            "Accept-Language": LANGUAGES[language],
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        },
    )


@pytest.mark.parametrize("language", ["zh", "en"])
def test_stow_says_why_each_part_was_refused_in_the_readers_language(
    world, client, gp, case_id, tmp_path, language
):
    files = bad_files(tmp_path)
    answer = stow(
        client,
        gp,
        case_id,
        [
            files["notes.dcm"],
            files["cut.dcm"],
            files["program.dcm"],
            files["uid.dcm"],
            files["good.dcm"],
        ],
        language,
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    failed = answer.get_json()["00081198"]["Value"]
    assert len(failed) == 4 and len(answer.get_json()["00081199"]["Value"]) == 1
    for number, item in enumerate(failed, start=1):
        assert item["00081197"]["Value"] == [0xC000]  # the code, for programs
        comment = item["00000902"]["Value"][0]
        assert comment.startswith(f"part {number}: ")
        said_in(language, comment.split(": ", 1)[1], "SOPInstanceUID")
    # The Warning headers carry Latin-1 only: the audit's English, and no path.
    for warning in answer.headers.getlist("Warning"):
        assert not any(path in warning for path in PATHS), warning
    # A part sent to another study's address is refused in words too.
    other = stow(client, gp, case_id, [files["good.dcm"]], language, study="1.2.3")
    assert other.status_code == 409
    comment = other.get_json()["00081198"]["Value"][0]["00000902"]["Value"][0]
    said_in(language, comment.split(": ", 1)[1])


@pytest.mark.parametrize("language", ["zh", "en"])
def test_qido_wado_and_stow_refusals_speak_the_readers_language(
    world, client, gp, case_id, tmp_path, language
):
    from telemed.services.accounts.context import actor_of
    from telemed.services.cases import dicom
    from tests import dicom_files

    path = dicom_files.ct_series(tmp_path, 1)[0]
    dicom.attach_files(actor_of(world.user("gp_ts1")), case_id, [("a.dcm", path)])
    db.session.commit()
    import pydicom

    ds = pydicom.dcmread(path)
    root = f"/cases/{case_id}/dicomweb"
    asked = {**gp, "Accept-Language": LANGUAGES[language]}

    bad_range = client.get(f"{root}/studies?StudyDate=20260101-2026", headers=asked)
    assert bad_range.status_code == 400
    error = refusal(bad_range)
    assert (error["code"], error["field"]) == ("bad_request", "StudyDate")
    said_in(language, error["message"], "StudyDate")

    instance = (
        f"{root}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    for url, accept in (
        (instance, "application/pdf"),
        (f"{instance}/rendered", "image/webp"),
        (f"{root}/studies", "application/dicom+xml"),
    ):
        refused = client.get(url, headers={**asked, "Accept": accept})
        assert refused.status_code == 406, (url, refused.status_code)
        error = refusal(refused)
        assert (error["code"], error["field"]) == ("not_acceptable", "Accept")
        said_in(language, error["message"], "Accept")

    missing = client.get(f"{root}/studies/1.2.3/series/4.5/instances/6.7", headers=asked)
    assert missing.status_code == 404
    said_in(language, refusal(missing)["message"])

    wrong_type = client.post(
        f"{root}/studies", data=b"x", headers={**asked, "Content-Type": "application/json"}
    )
    assert wrong_type.status_code == 415
    said_in(language, refusal(wrong_type)["message"], "STOW-RS")


FHIR_JSON = "application/fhir+json"


def outcome_of(response) -> dict:
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_fhir_outcomes_speak_the_readers_language(world, client, gp, language):
    asked = {**gp, "Accept-Language": LANGUAGES[language], "Accept": FHIR_JSON}

    bad_count = client.get("/fhir/Patient?_count=many", headers=asked)
    assert bad_count.status_code == 400
    issue = outcome_of(bad_count)
    assert issue["details"]["text"] == "invalid_search" and issue["expression"] == ["_count"]
    said_in(language, issue["diagnostics"], "_count")

    strict = client.get("/fhir/Patient?colour=blue", headers={**asked, "Prefer": "handling=strict"})
    assert strict.status_code == 400
    said_in(language, outcome_of(strict)["diagnostics"], "colour", "Patient", "identifier", "name")

    unknown = client.get("/fhir/Spaceship/1", headers=asked)
    assert unknown.status_code == 404
    assert outcome_of(unknown)["code"] == "not-found"
    said_in(language, outcome_of(unknown)["diagnostics"])

    broken = client.post("/fhir/Patient", data="{", headers={**asked, "Content-Type": FHIR_JSON})
    assert broken.status_code == 400
    assert outcome_of(broken)["details"]["text"] == "invalid"
    said_in(language, outcome_of(broken)["diagnostics"])

    wrong = client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "name": "x"},
        headers={**asked, "Content-Type": FHIR_JSON},
    )
    assert wrong.status_code == 422
    issue = outcome_of(wrong)
    said_in(language, issue["diagnostics"], *issue.get("expression", []))


@pytest.mark.parametrize("language", ["zh", "en"])
def test_api_validation_speaks_the_readers_language(world, client, gp, language):
    asked = {**gp, "Accept-Language": LANGUAGES[language]}
    answer = client.post("/api/bookings", json={"slot_id": "soon", "patient_id": 1}, headers=asked)
    assert answer.status_code == 422
    error = refusal(answer)
    assert (error["code"], error["field"]) == ("invalid_input", "slot_id")
    said_in(language, error["message"], "slot_id")
