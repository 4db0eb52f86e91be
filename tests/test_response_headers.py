"""Headers every answer carries: patient data is never cached, pages are never framed
and never sniffed; fingerprinted bundles are cached for good."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from tests import factories

DIST = Path(__file__).resolve().parent.parent / "static" / "dist"


def test_pages_and_api_answers_with_patient_data_are_never_stored(client, world):
    patient = world.patients["TS1"][0]
    token = factories.token_for(world.user("gp_ts1"))
    answers = {
        "login page": client.get("/login"),
        "api": client.get(
            f"/api/patients/{patient.id}", headers={"Authorization": f"Bearer {token}"}
        ),
        "fhir": client.get(
            f"/fhir/Patient/{patient.id}", headers={"Authorization": f"Bearer {token}"}
        ),
        "refusal": client.get("/api/patients/999999", headers={"Authorization": f"Bearer {token}"}),
    }
    for name, response in answers.items():
        assert response.headers["Cache-Control"] == "no-store", name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["X-Frame-Options"] == "DENY", name
        assert response.headers["Referrer-Policy"] == "same-origin", name
    assert answers["api"].status_code == 200 and answers["fhir"].status_code == 200
    assert answers["refusal"].status_code == 404


def test_fingerprinted_bundles_are_cached_for_a_year_and_the_manifest_is_not(client):
    bundle = next(p for p in sorted(DIST.glob("*.js")) if "-" in p.stem)
    cached = client.get(f"/static/dist/{bundle.name}")
    assert cached.status_code == 200
    assert cached.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    cached.close()
    manifest = client.get("/static/dist/manifest.json")
    assert "immutable" not in manifest.headers.get("Cache-Control", "")
    manifest.close()


def test_bundles_go_gzipped_to_browsers_that_take_gzip(client):
    bundles = [p for p in DIST.rglob("*") if p.suffix in (".js", ".css")]
    assert bundles and all(p.with_name(p.name + ".gz").is_file() for p in bundles)
    largest = max(bundles, key=lambda p: p.stat().st_size)
    url = f"/static/dist/{largest.relative_to(DIST).as_posix()}"
    packed = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed.status_code == 200 and packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert packed.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    body = packed.get_data()
    packed.close()
    assert gzip.decompress(body) == largest.read_bytes()
    assert len(body) < largest.stat().st_size / 2
    plain = client.get(url)
    assert "Content-Encoding" not in plain.headers and plain.get_data() == largest.read_bytes()
    plain.close()


def test_small_answers_are_sent_as_they_are(client, world):
    token = factories.token_for(world.user("gp_ts1"))
    small = client.get(
        "/api/patients/999999",
        headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"},
    )
    assert small.status_code == 404 and len(small.get_data()) < 1024
    assert "Content-Encoding" not in small.headers
    assert small.get_json()["error"]["code"]


def test_the_stylesheet_is_fingerprinted_and_cached_for_good(client):
    page = client.get("/login").get_data(as_text=True)
    href = re.search(r'<link rel="stylesheet" href="([^"]+)"', page).group(1)
    assert re.match(r"^/static/dist/telemed-[A-Z0-9]{8}\.css$", href), href
    sheet = client.get(href)
    assert sheet.status_code == 200 and sheet.mimetype == "text/css"
    assert sheet.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    sheet.close()
