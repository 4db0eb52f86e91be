"""URLs of the front-end bundles built from npm packages into static/dist/."""

from __future__ import annotations

import gzip
import io
import json
import mimetypes
import re
import secrets
from functools import cache
from pathlib import Path

from flask import Response, current_app, g, request, send_file, url_for
from markupsafe import Markup


@cache
def _manifest(static_folder: str) -> dict[str, str]:
    path = Path(static_folder) / "dist" / "manifest.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())


@cache
def _static_imports(static_folder: str) -> dict[str, list[str]]:
    """Each built script (path under static/) and the chunks it imports statically, from
    esbuild's metafile."""
    path = Path(static_folder) / "dist" / "metafile.json"
    if not path.exists():
        return {}
    outputs = json.loads(path.read_text()).get("outputs", {})
    return {
        out.removeprefix("static/"): [
            found["path"].removeprefix("static/")
            for found in info.get("imports", [])
            if found.get("kind") == "import-statement"
        ]
        for out, info in outputs.items()
        if out.endswith(".js")
    }


def asset_preloads(*names: str) -> Markup:
    """``<link rel="modulepreload">`` for the page's script bundles and every chunk they
    import, for the page's head: the browser fetches them all at once, instead of finding
    each chunk only once the script that imports it has arrived (a round trip per level,
    300 ms on a township's link)."""
    folder = current_app.static_folder or ""
    imports = _static_imports(folder)
    manifest = _manifest(folder)
    todo = [f"dist/{manifest.get(name, name)}" for name in names]
    done = g.setdefault("preloaded_assets", set())  # a chunk shared by two calls: once
    seen: list[str] = []
    while todo:
        path = todo.pop(0)
        if path in done:
            continue
        done.add(path)
        seen.append(path)
        todo.extend(imports.get(path, []))
    return Markup("\n").join(
        Markup('<link rel="modulepreload" href="{}">').format(url_for("static", filename=path))
        for path in seen
    )


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


# Text the app writes per request, compressed on the fly for browsers that take gzip:
# a page's HTML is 3-5 times smaller, which on a 2 Mbit/s link with 300 ms round trips is
# the difference between one and several congestion windows.
_COMPRESSIBLE = frozenset(
    {
        "text/html",
        "text/css",
        "text/csv",
        "text/plain",
        "text/javascript",
        "application/javascript",
        "application/json",
        "application/fhir+json",
        "application/dicom+json",
        "application/problem+json",
        "image/svg+xml",
    }
)
COMPRESS_MIN_BYTES = 1024
# Heal-the-BREACH: a gzip file name of random length in every answer, so the compressed
# length of a page no longer tells an observer how well their injected text matched a
# secret on it (the CSRF token).
_MAX_PADDING = 100


def gzip_with_random_padding(body: bytes) -> bytes:
    name = secrets.token_hex(1 + secrets.randbelow(_MAX_PADDING // 2))
    out = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=out, mtime=0, compresslevel=6) as z:
        z.write(body)
    return out.getvalue()


def compress_text(response: Response) -> Response:
    """gzip a text answer the app built in memory, when the client accepts gzip."""
    if response.mimetype not in _COMPRESSIBLE:
        return response
    response.vary.add("Accept-Encoding")
    if (
        response.direct_passthrough
        or response.is_streamed
        or response.status_code in (204, 206, 304)
        or response.status_code < 200
        or "Content-Encoding" in response.headers
        or not request.accept_encodings["gzip"]
    ):
        return response
    body = response.get_data()
    if len(body) < COMPRESS_MIN_BYTES:
        return response
    response.set_data(gzip_with_random_padding(body))
    response.headers["Content-Encoding"] = "gzip"
    etag, weak = response.get_etag()
    if etag and not weak:  # the bytes differ from the identity form's
        response.set_etag(etag, weak=True)
    return response
