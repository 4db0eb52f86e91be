"""WFDB halves arriving together: a header and its signal files sent at the same moment
through the tus upload path on the test server always meet as one recording, and no
half is left waiting (SQLite, and PostgreSQL with TELEMED_TEST_DATABASE_URL)."""

from __future__ import annotations

import threading

import numpy as np
import requests
from sqlalchemy import select

from telemed.extensions import db
from telemed.models.case_files import EcgRecording
from tests import factories
from tests.test_ecg_attach import open_ecg_case
from tests.test_uploads_http import TUS, metadata

PAIRS = 20


def small_record(stem: str) -> dict[str, bytes]:
    """Two leads, 3 s at 500 Hz, format 16: a record the worker reads in milliseconds."""
    t = np.arange(1500) / 500
    beats = (np.exp(-((((t % 0.8) - 0.4) / 0.01) ** 2)) * 2000).astype(np.int64)
    signals = np.stack([beats, beats // 2]).T.astype("<i2")
    header = "".join(
        [f"{stem} 2 500 1500\n"]
        + [f"{stem}.dat 16 2000/mV 16 0 0 0 0 {lead}\n" for lead in ("II", "V5")]
    )
    return {f"{stem}.hea": header.encode(), f"{stem}.dat": signals.tobytes()}


def create_ecg(url: str, token: str, case_id: int, name: str, length: int) -> str:
    response = requests.post(
        f"{url}/uploads",
        headers={
            **TUS,
            **factories.bearer(token),
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(filename=name, case_id=str(case_id), purpose="ecg"),
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return url + response.headers["Location"]


def test_twenty_pairs_sent_at_once_pair_twenty_times(app, world, live_http):
    token = factories.token_for(world.user("gp_ts1"))
    jobs = []  # (case id, location, bytes)
    for index in range(PAIRS):
        case_id = open_ecg_case(world).id
        db.session.commit()
        for name, data in small_record(f"r{index:02d}").items():
            jobs.append((case_id, create_ecg(live_http.url, token, case_id, name, len(data)), data))

    start = threading.Barrier(len(jobs))
    answers: list[tuple[int, int, str]] = []

    def send(case_id: int, location: str, data: bytes) -> None:
        start.wait()
        response = requests.patch(
            location,
            data=data,
            headers={
                **TUS,
                **factories.bearer(token),
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
            timeout=120,
        )
        answers.append((case_id, response.status_code, response.text))

    threads = [threading.Thread(target=send, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert sorted(status for _case, status, _text in answers) == [204] * len(jobs), answers

    db.session.remove()
    recordings = list(db.session.execute(select(EcgRecording)).scalars())
    by_case: dict[int, list[EcgRecording]] = {}
    for recording in recordings:
        by_case.setdefault(recording.case_id, []).append(recording)
    assert len(by_case) == PAIRS
    for case_id, rows in by_case.items():
        assert [r.status for r in rows] == ["read"], (
            case_id,
            [(r.status, r.problem) for r in rows],
        )
        assert sorted(o["filename"][-4:] for o in rows[0].originals) == [".dat", ".hea"]
        assert rows[0].leads[:2] == ["II", "V5"] and rows[0].sampling_rate_hz == 500
    # every upload's own answer: one half waited, the other completed the record
    results = []
    for _case_id, location, _data in jobs:
        status = requests.get(location, headers=factories.bearer(token), timeout=30).json()
        results.append(status["result"]["files"][0]["status"])
    assert sorted(results) == ["incomplete"] * PAIRS + ["read"] * PAIRS
