"""URLs of the front-end bundles built from npm packages into static/dist/."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from flask import current_app, url_for


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
