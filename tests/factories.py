"""Test data, built through the models and the services the app itself uses."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from werkzeug.security import generate_password_hash

from telemed import clock
from telemed.extensions import db
from telemed.models.consortium import (
    Consortium,
    Department,
    Institution,
    InstitutionKind,
    Patient,
    ReadingKind,
    Role,
    User,
)
from telemed.models.scheduling import ServiceType
from telemed.services.accounts import accounts
from telemed.services.accounts.context import actor_of
from telemed.services.scheduling import publishing

PASSWORD = "correct horse battery staple"
ZONE = ZoneInfo("Asia/Shanghai")


@functools.cache
def password_hash() -> str:
    return generate_password_hash(PASSWORD, method="scrypt")


@dataclass
class World:
    consortium: Consortium
    lead: Institution
    members: list[Institution]
    departments: dict[str, Department]
    users: dict[str, User]
    patients: dict[str, list[Patient]] = field(default_factory=dict)

    def user(self, name: str) -> User:
        return self.users[name]


def add_user(username, role, institution, department=None, display=None) -> User:
    user = User(
        username=username,
        display_name=display or username,
        role=role,
        institution_id=institution.id,
        department_id=department.id if department else None,
        password_hash=password_hash(),
        locale="en",
    )
    db.session.add(user)
    db.session.flush()
    return user


def add_patient(institution, name, national_id=None, phone=None) -> Patient:
    patient = Patient(
        institution_id=institution.id, name=name, national_id=national_id, phone=phone
    )
    db.session.add(patient)
    db.session.flush()
    return patient


def build_world() -> World:
    consortium = Consortium(name="测试医联体", name_en="Test Consortium")
    db.session.add(consortium)
    lead = Institution(
        consortium=consortium, code="LEAD", name="Lead Hospital", kind=InstitutionKind.LEAD
    )
    members = [
        Institution(
            consortium=consortium, code="TS1", name="Township One", kind=InstitutionKind.TOWNSHIP
        ),
        Institution(
            consortium=consortium, code="CM1", name="Community One", kind=InstitutionKind.COMMUNITY
        ),
        Institution(
            consortium=consortium, code="VL1", name="Village One", kind=InstitutionKind.VILLAGE
        ),
    ]
    db.session.add_all([lead, *members])
    db.session.flush()
    departments = {
        "CARD": Department(institution_id=lead.id, code="CARD", name="Cardiology"),
        "IM": Department(institution_id=lead.id, code="IM", name="Internal Medicine"),
        "RAD": Department(
            institution_id=lead.id, code="RAD", name="Radiology", reads=ReadingKind.IMAGING
        ),
        "ECG": Department(
            institution_id=lead.id, code="ECG", name="ECG Centre", reads=ReadingKind.ECG
        ),
    }
    db.session.add_all(departments.values())
    db.session.flush()
    users = {
        "admin": add_user("admin", Role.ADMIN, lead),
        "registrar": add_user("registrar", Role.REGISTRAR, lead),
        "card1": add_user("card1", Role.SPECIALIST, lead, departments["CARD"]),
        "card2": add_user("card2", Role.SPECIALIST, lead, departments["CARD"]),
        "im1": add_user("im1", Role.SPECIALIST, lead, departments["IM"]),
        "rad1": add_user("rad1", Role.SPECIALIST, lead, departments["RAD"]),
        "ecg1": add_user("ecg1", Role.SPECIALIST, lead, departments["ECG"]),
        "gp_ts1": add_user("gp_ts1", Role.GRASSROOTS, members[0]),
        "gp_ts2": add_user("gp_ts2", Role.GRASSROOTS, members[0]),
        "gp_cm1": add_user("gp_cm1", Role.GRASSROOTS, members[1]),
        "gp_vl1": add_user("gp_vl1", Role.GRASSROOTS, members[2]),
    }
    world = World(consortium, lead, members, departments, users)
    world.patients = {
        "TS1": [
            add_patient(members[0], "Zhang San", "110105194912310021", "13812345678"),
            add_patient(members[0], "Li Si"),
            add_patient(members[0], "Wang Wu"),
        ],
        "CM1": [add_patient(members[1], "Zhao Liu"), add_patient(members[1], "Qian Qi")],
        "VL1": [add_patient(members[2], "Sun Ba")],
        "LEAD": [add_patient(lead, "Zhou Jiu"), add_patient(lead, "Wu Shi")],
    }
    return world


def local_today() -> date:
    return clock.now().astimezone(ZONE).date()


def publish(
    specialist: User,
    *,
    days_ahead: int = 3,
    weeks: int = 1,
    weekdays: list[int] | None = None,
    start: time = time(9, 0),
    end: time = time(10, 0),
    slot_minutes: int = 30,
    seats: int = 3,
    down_shared: int | None = None,
    allotments: dict[int, int] | None = None,
    service_type: ServiceType = ServiceType.OUTPATIENT,
    actor_user: User | None = None,
    override_reason: str | None = None,
) -> publishing.Publication:
    """Publish through the service, starting ``days_ahead`` from today, every weekday."""
    first = local_today() + timedelta(days=days_ahead)
    return publishing.publish_schedule(
        actor_of(actor_user or specialist),
        publishing.ScheduleRequest(
            specialist_id=specialist.id,
            service_type=service_type,
            weekdays=weekdays if weekdays is not None else list(range(7)),
            start_time=start,
            end_time=end,
            slot_minutes=slot_minutes,
            seats_per_slot=seats,
            down_shared_per_slot=down_shared,
            allotments=allotments or {},
            valid_from=first,
            valid_until=first + timedelta(weeks=weeks) - timedelta(days=1),
            override_reason=override_reason,
        ),
    )


def token_for(user: User) -> str:
    _row, token = accounts.create_api_token(user, "tests")
    db.session.commit()
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


DATA = Path(__file__).resolve().parent / "data"


def attach_sample_file(user: User, case) -> None:
    """Attach a real file of the kind the case needs: a small aECG or a CT slice."""
    from telemed.domain.case_states import CaseKind
    from telemed.services.cases import dicom, ecg_files

    actor = actor_of(user)
    if case.kind is CaseKind.ECG_READ:
        outcomes = ecg_files.attach_files(
            actor, case.id, [("minimum_aecg.xml", DATA / "ecg" / "minimum_aecg.xml")]
        )
    else:
        outcomes = dicom.attach_files(
            actor, case.id, [("CT_small.dcm", DATA / "dicom" / "CT_small.dcm")]
        )
    assert all(o.status in ("read", "stored") for o in outcomes), outcomes
