"""Pages travel gzipped to browsers that take gzip: on a rural link the bytes of a page
are round trips."""

from __future__ import annotations

import gzip
import re

# Each render signs the CSRF token afresh (meta tag and form fields).
_TOKEN = re.compile(rb'(content|value)="[\w.-]{40,}"')


def _without_tokens(page: bytes) -> bytes:
    return _TOKEN.sub(b"token", page)


def test_pages_go_gzipped_to_browsers_that_take_gzip_and_plain_to_others(signed_in):
    client = signed_in("gp_ts1")
    plain = client.get("/bookings")
    packed = client.get("/bookings", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert "Accept-Encoding" in plain.headers["Vary"]  # a shared cache keeps both apart
    html = plain.get_data()
    assert len(html) > 1024
    # The same page (its CSRF token aside) in a fraction of the bytes.
    unpacked = gzip.decompress(packed.get_data())
    assert _without_tokens(unpacked) == _without_tokens(html)
    assert len(packed.get_data()) < len(html) / 2
    assert int(packed.headers["Content-Length"]) == len(packed.get_data())


def test_each_gzipped_page_carries_random_padding_against_breach(signed_in):
    client = signed_in("gp_ts1")
    lengths = set()
    for _ in range(8):
        packed = client.get("/bookings", headers={"Accept-Encoding": "gzip"}).get_data()
        assert packed[3] & 0x08  # FNAME: the padding travels as the gzip member's file name
        lengths.add(len(packed))
    assert len(lengths) > 1
