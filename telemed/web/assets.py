"""URLs of the front-end bundles built from npm packages into static/dist/."""

from __future__ import annotations

import json
import mimetypes
import re
from functools import cache
from pathlib import Path

from flask import Response, current_app, request, send_file, url_for


@cache
def _manifest(static_folder: str) -> dict[str, str]:
    path = Path(static_folder) / "dist" / "manifest.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def asset_url(name: str) -> str:
    """The fingerprinted URL of a built bundle (e.g. ``booking.js``)."""
    built = _manifest(current_app.static_folder or "").get(name, name)
    return url_for("static", filename=f"dist/{built}")


# static/build.mjs names every bundle, chunk and asset "<name>-<content hash>".
_FINGERPRINTED = re.compile(r"^/static/dist/.+-[A-Z0-9]{8}\.[a-z0-9.]+$")


def send_precompressed() -> Response | None:
    """A fingerprinted bundle as the gzipped copy the build wrote beside it, to a browser
    that takes gzip (a third of the bytes on a rural link); None lets the static route
    answer."""
    if not _FINGERPRINTED.match(request.path) or "gzip" not in request.headers.get(
        "Accept-Encoding", ""
    ):
        return None
    name = request.path.removeprefix("/static/dist/")
    dist = (Path(current_app.static_folder or "") / "dist").resolve()
    packed = (dist / f"{name}.gz").resolve()
    if dist not in packed.parents or not packed.is_file():
        return None
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = send_file(packed, mimetype=kind, conditional=True, etag=True)
    response.headers["Content-Encoding"] = "gzip"
    return response


def cache_fingerprinted(response: Response) -> Response:
    """A bundle's URL changes with its content, so a browser may keep it for a year and
    never ask again: on a slow rural link each page then costs no round trip per script."""
    if response.status_code == 200 and _FINGERPRINTED.match(request.path):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        response.vary.add("Accept-Encoding")  # a shared cache keeps both forms apart
    return response
