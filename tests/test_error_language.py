"""Error messages speak the reader's language: the API and uploads follow the request's
Accept-Language, the live socket the language of the ticket's user; codes and fields stay
the same for programs."""

from __future__ import annotations

import asyncio

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
