"""Sign-in throttling that cannot be turned against others: strangers' failures do not
lock out a known browser or address, the client address comes from X-Forwarded-For only
through a trusted proxy, and the counters are atomic under parallel attempts."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, select, text

from telemed.domain.sign_in_throttle import sign_in_buckets
from telemed.extensions import db
from telemed.models import LoginAttempt
from tests import factories
from tests.test_accounts import csrf

PROXY = "10.9.9.9"


@pytest.fixture
def app(app):
    app.config["TELEMED_TRUSTED_PROXIES"] = [PROXY]
    from telemed.web import proxies

    proxies.init_app(app)
    return app


def attempt(client, username, password=factories.PASSWORD, *, address=None, via=PROXY):
    environ = {"REMOTE_ADDR": via}
    headers = {"X-Forwarded-For": address} if address else {}
    token = csrf(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        headers=headers,
        environ_base=environ,
    )


def fresh(app):
    return app.test_client()


def test_made_up_usernames_from_one_address_lock_only_that_address(app, world):
    attacker = fresh(app)
    for n in range(30):
        assert attempt(attacker, f"nobody{n}", "guess", address="203.0.113.66").status_code == 401
    assert attempt(attacker, "nobody99", "guess", address="203.0.113.66").status_code == 429
    # Behind the same proxy, everyone else signs in: their own addresses are their own.
    for username, address in (("admin", "198.51.100.1"), ("card1", "198.51.100.2")):
        assert attempt(fresh(app), username, address=address).status_code == 302


def test_forwarded_for_from_an_untrusted_peer_is_ignored(app, world):
    for n in range(30):
        response = attempt(
            fresh(app), f"nobody{n}", "guess", address=f"192.0.2.{n}", via="203.0.113.7"
        )
        assert response.status_code == 401
    # All thirty were counted against the peer itself, whatever it claimed.
    blocked = attempt(fresh(app), "nobody", "guess", address="192.0.2.200", via="203.0.113.7")
    assert blocked.status_code == 429
    db.session.rollback()
    ips = set(db.session.execute(select(LoginAttempt.ip)).scalars())
    assert ips == {"203.0.113.7"}


def test_a_known_browser_signs_in_while_strangers_lock_its_account(app, world):
    own = fresh(app)
    assert attempt(own, "card1", address="198.51.100.2").status_code == 302
    own.delete_cookie("telemed_session")
    for n in range(10):
        stranger = attempt(fresh(app), "card1", "guess", address=f"203.0.113.{n}")
        assert stranger.status_code in (401, 429)
    # The account is locked for strangers, right password or not ...
    assert attempt(fresh(app), "card1", address="203.0.113.99").status_code == 429
    # ... but not for the browser that signed in before, even from a new address,
    assert attempt(own, "card1", address="192.0.2.50").status_code == 302
    # nor for the address the account signed in from.
    assert attempt(fresh(app), "card1", address="198.51.100.2").status_code == 302


def test_the_owners_own_failures_still_count(app, world):
    own = fresh(app)
    assert attempt(own, "card1", address="198.51.100.2").status_code == 302
    own.delete_cookie("telemed_session")
    for _ in range(5):
        assert attempt(own, "card1", "wrong", address="198.51.100.2").status_code == 401
    refused = attempt(own, "card1", address="198.51.100.2")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 900


def test_the_rule_names_no_global_counter():
    untrusted = sign_in_buckets(
        "dr.wang", "203.0.113.1", device=None, known_address=False, per_account=5, per_address=30
    )
    assert [b.key for b in untrusted] == ["account:dr.wang", "address:203.0.113.1"]
    by_device = sign_in_buckets(
        "dr.wang", "203.0.113.1", device="d1", known_address=True, per_account=5, per_address=30
    )
    assert [b.key for b in by_device] == ["account:dr.wang|device:d1"]


def test_parallel_wrong_attempts_pass_the_limit_no_more_than_it_allows(app, world):
    """40 attempts at once against one account: at most the limit are checked (401)."""
    limit = app.config["TELEMED_LOGIN_MAX_FAILURES"]
    results: list[int] = []
    start = threading.Barrier(40)

    def one(n: int) -> None:
        with app.app_context():  # each thread a request of its own, as in production
            client = fresh(app)
            token = csrf(client)
            start.wait()
            response = client.post(
                "/login",
                data={"username": "gp_ts1", "password": "wrong", "csrf_token": token},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
                environ_base={"REMOTE_ADDR": PROXY},
            )
            results.append(response.status_code)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(results)) == [401, 429]
    assert results.count(401) == limit
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.connect() as conn:
        checked = conn.execute(text("SELECT count(*) FROM login_attempt")).scalar_one()
    engine.dispose()
    assert checked == limit
