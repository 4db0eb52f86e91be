from telemed.extensions import db
from telemed.models import Slot
from tests import factories


def test_publish_and_book_through_api(world, client):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    slot_id = db.session.query(Slot.id).filter(Slot.schedule_id == pub.schedule.id).first()[0]
    token = factories.token_for(world.user("gp_ts1"))
    patient = world.patients["TS1"][0]
    response = client.post(
        "/api/bookings",
        json={"slot_id": slot_id, "patient_id": patient.id, "reason": "chest pain"},
        headers=factories.bearer(token),
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "booked"
