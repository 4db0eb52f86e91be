"""The demo consortium that ``make run`` seeds into an empty database.

Everything is created through the same services the pages use, so the demo obeys the
down-share rule and the booking invariants like real data does.
"""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

from telemed import clock
from telemed.errors import TelemedError
from telemed.extensions import db
from telemed.models.consortium import (
    ClinicalTitle,
    Consortium,
    Department,
    Institution,
    InstitutionKind,
    ReadingKind,
    Role,
    User,
)
from telemed.models.scheduling import ServiceType
from telemed.services.accounts import accounts, patients
from telemed.services.accounts.context import actor_of
from telemed.services.accounts.patients import ID_CHECK, ID_WEIGHTS
from telemed.services.scheduling import booking, publishing


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    role: str
    where: str


LEAD_DEPARTMENTS = [
    ("CARD", "心血管内科", "Cardiology", None),
    ("IM", "普通内科", "Internal Medicine", None),
    ("RAD", "放射科", "Radiology", ReadingKind.IMAGING),
    ("ECG", "心电诊断中心", "ECG Reading Centre", ReadingKind.ECG),
]

CHIEF, ASSOCIATE, ATTENDING = (
    ClinicalTitle.CHIEF_PHYSICIAN,
    ClinicalTitle.ASSOCIATE_CHIEF_PHYSICIAN,
    ClinicalTitle.ATTENDING_PHYSICIAN,
)
SPECIALISTS = [
    ("dr.wang", "王建国", CHIEF, "CARD"),
    ("dr.li", "李晓梅", ASSOCIATE, "CARD"),
    ("dr.zhang", "张伟", CHIEF, "IM"),
    ("dr.chen", "陈静", ATTENDING, "IM"),
    ("dr.liu", "刘洋", CHIEF, "RAD"),
    ("dr.zhao", "赵敏", ASSOCIATE, "RAD"),
    ("dr.sun", "孙丽", ATTENDING, "ECG"),
]

MEMBERS = [
    ("TS-HX", "红星镇卫生院", "Hongxing Township Health Centre", InstitutionKind.TOWNSHIP),
    ("TS-QS", "青山镇卫生院", "Qingshan Township Health Centre", InstitutionKind.TOWNSHIP),
    (
        "CM-DF",
        "东风社区卫生服务中心",
        "Dongfeng Community Health Centre",
        InstitutionKind.COMMUNITY,
    ),
    ("CM-XH", "新华社区卫生服务中心", "Xinhua Community Health Centre", InstitutionKind.COMMUNITY),
    ("VL-LJ", "柳家村卫生室", "Liujia Village Clinic", InstitutionKind.VILLAGE),
]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"


def demo_password() -> str:
    return os.environ.get("TELEMED_DEMO_PASSWORD") or secrets.token_urlsafe(9)


def fake_national_id(rng: random.Random, birth: date) -> str:
    body = f"110105{birth:%Y%m%d}{rng.randrange(1000):03d}"
    total = sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True))
    return body + ID_CHECK[total % 11]


def seed(seed_value: int = 20261123) -> list[Login]:
    rng = random.Random(seed_value)
    password = demo_password()
    pw_hash = accounts.hash_password(password)
    logins: list[Login] = []

    consortium = Consortium(name="滨江医疗集团医联体", name_en="Binjiang Medical Consortium")
    db.session.add(consortium)
    lead = Institution(
        consortium=consortium,
        code="LEAD",
        name="滨江市第一人民医院",
        name_en="Binjiang First People's Hospital",
        kind=InstitutionKind.LEAD,
    )
    db.session.add(lead)
    departments = {}
    for code, name, name_en, reads in LEAD_DEPARTMENTS:
        department = Department(
            institution=lead, code=code, name=name, name_en=name_en, reads=reads
        )
        db.session.add(department)
        departments[code] = department
    members = []
    for code, name, name_en, kind in MEMBERS:
        institution = Institution(
            consortium=consortium, code=code, name=name, name_en=name_en, kind=kind
        )
        db.session.add(institution)
        members.append(institution)
    db.session.flush()

    def add_user(username, display, role, institution, department=None, title=None):
        user = User(
            username=username,
            display_name=display,
            role=role,
            institution_id=institution.id,
            department_id=department.id if department else None,
            title=title,
            password_hash=pw_hash,
        )
        db.session.add(user)
        where = institution.name + (f" / {department.name}" if department else "")
        logins.append(Login(username, password, role.value, where))
        return user

    admin = add_user("admin", "医务科 周主任", Role.ADMIN, lead)
    add_user("registrar", "挂号处 吴老师", Role.REGISTRAR, lead)
    specialists = [
        add_user(u, n, Role.SPECIALIST, lead, departments[d], t) for u, n, t, d in SPECIALISTS
    ]
    grassroots: dict[int, list[User]] = {}
    for index, institution in enumerate(members, 1):
        grassroots[institution.id] = [
            add_user(
                f"gp{index}{suffix}",
                f"{institution.name[:2]}医生{suffix.upper()}",
                Role.GRASSROOTS,
                institution,
            )
            for suffix in ("a", "b")
        ]
    db.session.flush()

    # 40 patients, 8 per member institution, registered by its first doctor.
    patient_ids: dict[int, list[int]] = {}
    for institution in members:
        doctor = actor_of(grassroots[institution.id][0])
        patient_ids[institution.id] = []
        for _ in range(8):
            birth = date(rng.randrange(1940, 2015), rng.randrange(1, 13), rng.randrange(1, 28))
            patient = patients.register_patient(
                doctor,
                name=rng.choice(SURNAMES)
                + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2)))),
                sex=rng.choice(("male", "female")),
                birth_date=birth,
                national_id=fake_national_id(rng, birth),
                phone=f"13{rng.randrange(10**9):09d}",
            )
            patient_ids[institution.id].append(patient.id)

    _publish_demo_schedules(admin, specialists, members)
    _book_demo_slots(grassroots, patient_ids, rng)
    # Past weeks for the dashboard, written through the models (the services refuse the
    # past) and marked as demo history.
    from telemed import demo_history

    demo_history.seed_history(
        admin=admin,
        specialists=specialists,
        grassroots=grassroots,
        patient_ids=patient_ids,
        rng=rng,
    )
    return logins


def _publish_demo_schedules(admin: User, specialists: list[User], members) -> None:
    zone = ZoneInfo(current_app.config["TELEMED_TIMEZONE"])
    today = clock.now().astimezone(zone).date()
    start = today + timedelta(days=1)
    until = start + timedelta(weeks=4) - timedelta(days=1)
    for index, specialist in enumerate(specialists):
        actor = actor_of(specialist)
        if specialist.department.reads is ReadingKind.ECG:
            continue  # the ECG reading centre works from a worklist, not a calendar
        weekdays = [0, 2, 4] if index % 2 == 0 else [1, 3]
        allotments = {members[index % len(members)].id: 1} if index < 2 else {}
        publishing.publish_schedule(
            actor,
            publishing.ScheduleRequest(
                specialist_id=specialist.id,
                service_type=ServiceType.OUTPATIENT,
                weekdays=weekdays,
                start_time=time(8, 30),
                end_time=time(11, 30),
                slot_minutes=30,
                seats_per_slot=3,
                down_shared_per_slot=None,
                allotments=allotments,
                valid_from=start,
                valid_until=until,
            ),
        )
        if specialist.department.code in ("CARD", "IM"):
            publishing.publish_schedule(
                actor,
                publishing.ScheduleRequest(
                    specialist_id=specialist.id,
                    service_type=ServiceType.REMOTE_CONSULT,
                    weekdays=[1] if index % 2 == 0 else [3],
                    start_time=time(14, 0),
                    end_time=time(16, 0),
                    slot_minutes=30,
                    seats_per_slot=1,
                    valid_from=start,
                    valid_until=until,
                ),
            )


def _book_demo_slots(grassroots, patient_ids, rng: random.Random) -> None:
    zone = ZoneInfo(current_app.config["TELEMED_TIMEZONE"])
    today = clock.now().astimezone(zone).date()
    for institution_id, doctors in grassroots.items():
        actor = actor_of(doctors[0])
        _total, slots = booking.search_slots(
            actor, date_from=today, date_to=today + timedelta(days=20), limit=200
        )
        candidates = [s for s in slots if s.bookable]
        rng.shuffle(candidates)
        for patient_id in patient_ids[institution_id][:4]:
            for availability in candidates:
                try:
                    with db.session.begin_nested():
                        booking.book_slot(
                            actor,
                            patient_id=patient_id,
                            slot_id=availability.slot.id,
                            reason="基层首诊后上转专科复核",
                        )
                except TelemedError:  # full or overlapping: try the next slot
                    continue
                break


def describe_logins(logins: list[Login]) -> str:
    lines = ["Demo consortium ready. Sign in at the address below with:", ""]
    width = max(len(login.username) for login in logins)
    for login in logins:
        lines.append(
            f"  {login.username:<{width}}  {login.password}  {login.role:<11} {login.where}"
        )
    if not os.environ.get("TELEMED_DEMO_PASSWORD"):
        lines += [
            "",
            "(passwords are random for this install; set TELEMED_DEMO_PASSWORD to choose)",
        ]
    return "\n".join(lines)
