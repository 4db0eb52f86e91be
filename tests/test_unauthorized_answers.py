"""A 401 tells a program how to authenticate (RFC 6750): every JSON 401 of the API and
DICOMweb carries WWW-Authenticate, with invalid_token when a token was sent and refused."""

from __future__ import annotations

import pytest

from tests import factories


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/bookings"),
        ("POST", "/api/cases"),
        ("GET", "/cases/1/dicomweb/studies"),
        ("POST", "/cases/1/dicomweb/studies"),
    ],
)
def test_a_bad_token_is_named_in_the_challenge(client, world, method, path):
    response = client.open(path, method=method, headers={"Authorization": "Bearer tmd_wrong"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="telemed", error="invalid_token"'


def test_no_credentials_get_a_plain_challenge(client, world):
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="telemed"'


def test_a_good_token_is_answered_without_a_challenge(client, world):
    token = factories.token_for(world.user("gp_ts1"))
    response = client.get("/api/me", headers=factories.bearer(token))
    assert response.status_code == 200 and "WWW-Authenticate" not in response.headers
