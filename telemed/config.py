"""Configuration read from ``TELEMED_*`` environment variables.

Every setting has an in-process default so that ``make run`` works on a bare machine
(SQLite under ``instance/``, no Redis, the log as the notifier). Production changes
only environment variables, never code.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

PREFIX = "TELEMED_"


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(PREFIX + name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    raw = env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{PREFIX}{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise RuntimeError(f"{PREFIX}{name} must be a number, got {raw!r}") from exc


def env_floats(name: str, default: list[float]) -> list[float]:
    try:
        return [float(item) for item in env_list(name, [str(d) for d in default])]
    except ValueError as exc:
        raise RuntimeError(f"{PREFIX}{name} must be numbers separated by commas") from exc


def env_base_url(name: str, default: str) -> str:
    """An absolute http(s) URL without query or fragment, kept without a trailing slash."""
    raw = env(name, default) or default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise RuntimeError(f"{PREFIX}{name} must be an http(s) URL like {default}, got {raw!r}")
    return raw.rstrip("/")


def env_bool(name: str, default: bool) -> bool:
    raw = env(name)
    if raw is None:
        return default
    return raw.lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    raw = env(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_ice_servers(name: str) -> list[dict[str, object]]:
    """WebRTC ICE servers as the browser's RTCIceServer list, in JSON:
    ``[{"urls": "stun:stun.example.org"}, {"urls": ["turn:turn.example.org"],
    "username": "u", "credential": "p"}]``. Without them calls connect on the same network
    only; across NATs a TURN server relays."""
    raw = env(name)
    if raw is None:
        return []
    try:
        servers = json.loads(raw)
    except ValueError as exc:
        raise RuntimeError(f"{PREFIX}{name} must be a JSON list: {exc}") from exc
    if not isinstance(servers, list):
        raise RuntimeError(f"{PREFIX}{name} must be a JSON list of ICE servers")
    for index, server in enumerate(servers):
        urls = server.get("urls") if isinstance(server, dict) else None
        urls = [urls] if isinstance(urls, str) else urls
        if not urls or not all(
            isinstance(u, str) and u.split(":", 1)[0] in {"stun", "stuns", "turn", "turns"}
            for u in urls
        ):
            raise RuntimeError(
                f"{PREFIX}{name}[{index}] needs 'urls': stun:, stuns:, turn: or turns: URLs"
            )
    return servers


def env_turn(name: str) -> dict[str, object]:
    """A TURN server that takes time-limited credentials (coturn's ``use-auth-secret``):
    its URLs (comma-separated turn: or turns: URLs), the secret it shares with telemed,
    and how long a credential lasts (seconds, 5 minutes to 7 days). URLs and secret come
    together or not at all."""
    urls = env_list(f"{name}_URLS", [])
    secret = env(f"{name}_SECRET")
    ttl = env_int(f"{name}_TTL_S", 12 * 3600)
    if bool(urls) != bool(secret):
        raise RuntimeError(f"{PREFIX}{name}_URLS and {PREFIX}{name}_SECRET go together")
    for url in urls:
        if url.split(":", 1)[0] not in {"turn", "turns"}:
            raise RuntimeError(f"{PREFIX}{name}_URLS: {url!r} is not a turn: or turns: URL")
    if not 300 <= ttl <= 7 * 24 * 3600:
        raise RuntimeError(f"{PREFIX}{name}_TTL_S must be between 300 and 604800 seconds")
    return {
        f"{PREFIX}{name}_URLS": urls,
        f"{PREFIX}{name}_SECRET": secret,
        f"{PREFIX}{name}_TTL_S": ttl,
    }


def load_secret_key(instance_path: Path) -> str:
    """Use TELEMED_SECRET_KEY, else a key generated once into the instance folder."""
    configured = env("SECRET_KEY")
    if configured:
        return configured
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # O_EXCL: two processes starting together must not overwrite each other's key.
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def build_config(instance_path: Path) -> dict[str, object]:
    """The application's settings, from the environment, with local defaults."""
    default_db = f"sqlite:///{instance_path / 'telemed.db'}"
    storage_root = Path(env("STORAGE_DIR", str(instance_path / "storage")) or "")
    return {
        "SECRET_KEY": load_secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": env("DATABASE_URL", default_db),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "TELEMED_TIMEZONE": env("TIMEZONE", "Asia/Shanghai"),
        "TELEMED_REDIS_URL": env("REDIS_URL"),
        # Retry-After (seconds) of the 503 answered while the database is unreachable.
        "TELEMED_RETRY_AFTER_SECONDS": env_int("RETRY_AFTER_SECONDS", 30),
        # Refuse to start when TELEMED_REDIS_URL is set but unreachable (else: in-process).
        "TELEMED_REDIS_REQUIRED": env_bool("REDIS_REQUIRED", False),
        "TELEMED_SMTP_URL": env("SMTP_URL"),
        "TELEMED_MAIL_FROM": env("MAIL_FROM", "telemed@localhost"),
        "TELEMED_HOST": env("HOST", "127.0.0.1"),
        "TELEMED_PORT": env_int("PORT", 5000),
        "TELEMED_LIVE_HOST": env("LIVE_HOST", "127.0.0.1"),
        "TELEMED_LIVE_PORT": env_int("LIVE_PORT", 5001),
        # The URL pages use to reach the live socket; behind a proxy it is the public one.
        "TELEMED_LIVE_URL": env("LIVE_URL"),
        # Origins the live server accepts sockets from; empty: the web app's own origins
        # on 127.0.0.1 and localhost (TELEMED_PORT).
        "TELEMED_ALLOWED_ORIGINS": env_list("ALLOWED_ORIGINS", []),
        "TELEMED_ICE_SERVERS": env_ice_servers("ICE_SERVERS"),
        **env_turn("TURN"),
        "TELEMED_LIVE_MAX_MESSAGE_BYTES": env_int("LIVE_MAX_MESSAGE_BYTES", 64 * 1024),
        "TELEMED_LIVE_RATE_PER_SECOND": env_int("LIVE_RATE_PER_SECOND", 40),
        "TELEMED_LIVE_BURST": env_int("LIVE_BURST", 80),
        "TELEMED_LIVE_CLIENT_QUEUE": env_int("LIVE_CLIENT_QUEUE", 512),
        "TELEMED_LIVE_PING_INTERVAL": env_int("LIVE_PING_INTERVAL", 20),
        "TELEMED_LIVE_PING_TIMEOUT": env_int("LIVE_PING_TIMEOUT", 20),
        # The room page's own heartbeat (0: none): a ping each beat; a socket not heard
        # from in two beats (and half a second) is dropped and the page reconnects.
        "TELEMED_LIVE_HEARTBEAT_SECONDS": env_float("LIVE_HEARTBEAT_SECONDS", 2.0),
        "TELEMED_LIVE_SWEEP_SECONDS": env_int("LIVE_SWEEP_SECONDS", 60),
        "TELEMED_LIVE_BATCH_LIMIT": env_int("LIVE_BATCH_LIMIT", 500),
        # A first join gets the room's state and this many of its last chat lines; the
        # page fetches older ones on demand (GET /consults/<id>/chat?before=<seq>).
        "TELEMED_LIVE_JOIN_CHAT_LINES": env_int("LIVE_JOIN_CHAT_LINES", 50),
        # The DICOM node (telemed/dicomnode): C-ECHO/C-STORE listener for member institutions,
        # and the AE title it calls their PACS with. Loopback unless TELEMED_DICOM_HOST.
        "TELEMED_DICOM_HOST": env("DICOM_HOST", "127.0.0.1"),
        "TELEMED_DICOM_PORT": env_int("DICOM_PORT", 11112),
        "TELEMED_DICOM_AE_TITLE": env("DICOM_AE_TITLE", "TELEMED"),
        "TELEMED_DICOM_TIMEOUT_S": env_int("DICOM_TIMEOUT_S", 30),
        "TELEMED_RUN_DICOM": env_bool("RUN_DICOM", True),
        # How many minutes before a booked consult seat starts its room's link is shown.
        "TELEMED_JOIN_OPENS_MINUTES": env_int("JOIN_OPENS_MINUTES", 15),
        # Per user: open sockets, tickets a minute, record messages (chat, marks, calipers,
        # report) a minute. Sockets and messages are counted in Redis across the live
        # processes when TELEMED_REDIS_URL is set (else per process); tickets in the
        # database. A socket of a crashed process stops counting after the lease.
        "TELEMED_LIVE_MAX_SOCKETS_PER_USER": env_int("LIVE_MAX_SOCKETS_PER_USER", 8),
        "TELEMED_LIVE_TICKETS_PER_MINUTE": env_int("LIVE_TICKETS_PER_MINUTE", 30),
        "TELEMED_LIVE_RECORD_PER_MINUTE": env_int("LIVE_RECORD_PER_MINUTE", 120),
        "TELEMED_LIVE_SOCKET_LEASE_SECONDS": env_float("LIVE_SOCKET_LEASE_SECONDS", 60.0),
        # The caps' Redis keys (default: TELEMED_FANOUT_PREFIX's, then "live:").
        "TELEMED_LIVE_CAPS_PREFIX": env("LIVE_CAPS_PREFIX"),
        "TELEMED_STORAGE_DIR": str(storage_root),
        "TELEMED_MAX_UPLOAD_BYTES": env_int("MAX_UPLOAD_BYTES", 2 * 1024**3),
        # Bytes of uploads (declared lengths) a user, and an institution, may start a day.
        "TELEMED_UPLOAD_QUOTA_USER_BYTES": env_int("UPLOAD_QUOTA_USER_BYTES", 10 * 1024**3),
        "TELEMED_UPLOAD_QUOTA_INSTITUTION_BYTES": env_int(
            "UPLOAD_QUOTA_INSTITUTION_BYTES", 50 * 1024**3
        ),
        # DICOM decoding runs in worker processes with these limits (telemed/imaging/).
        "TELEMED_DICOM_WORKERS": env_int("DICOM_WORKERS", 2),
        "TELEMED_DICOM_WORKER_MEMORY_MB": env_int("DICOM_WORKER_MEMORY_MB", 2048),
        "TELEMED_DICOM_WORKER_CPU_S": env_int("DICOM_WORKER_CPU_S", 20),
        "TELEMED_DICOM_WORKER_TIMEOUT_S": env_int("DICOM_WORKER_TIMEOUT_S", 30),
        "TELEMED_DICOM_MAX_PIXEL_MB": env_int("DICOM_MAX_PIXEL_MB", 1024),
        # The clean-up removes files in storage/tmp, and stored objects no row names,
        # once they are this old.
        "TELEMED_TMP_GRACE_HOURS": env_int("TMP_GRACE_HOURS", 6),
        "TELEMED_ORPHAN_GRACE_HOURS": env_int("ORPHAN_GRACE_HOURS", 48),
        # Renders, decompressed copies, split frames and bulk values together: the hourly
        # clean-up takes the least recently used beyond this many MB.
        "TELEMED_RENDER_CACHE_MB": env_int("RENDER_CACHE_MB", 2048),
        # The render budget: a frame of more pixels is refused at ingest.
        "TELEMED_DICOM_MAX_FRAME_MEGAPIXELS": env_int("DICOM_MAX_FRAME_MEGAPIXELS", 64),
        # Renders one user may have running at once (per web process).
        "TELEMED_DICOM_RENDERS_PER_USER": env_int("DICOM_RENDERS_PER_USER", 2),
        # The largest decompressed copy WADO writes for a viewer without codecs.
        "TELEMED_DICOM_MAX_TRANSCODE_MB": env_int("DICOM_MAX_TRANSCODE_MB", 256),
        "TELEMED_SQLITE_BUSY_TIMEOUT_MS": env_int("SQLITE_BUSY_TIMEOUT_MS", 30_000),
        "TELEMED_RUN_SCHEDULER": env_bool("RUN_SCHEDULER", True),
        # Scheduled jobs (telemed/jobs): the single-runner lease lives this many seconds
        # unless renewed (every third of it); the scheduler looks at its store at least
        # every poll interval; a failing run is retried after each of the delays.
        "TELEMED_SCHEDULER_LEASE_SECONDS": env_int("SCHEDULER_LEASE_SECONDS", 30),
        "TELEMED_SCHEDULER_POLL_SECONDS": env_float("SCHEDULER_POLL_SECONDS", 5.0),
        "TELEMED_JOB_WORKERS": env_int("JOB_WORKERS", 6),
        "TELEMED_JOB_RETRY_DELAYS": env_floats("JOB_RETRY_DELAYS", [10.0, 60.0]),
        # The site's public address, for links in mails.
        "TELEMED_PUBLIC_URL": env("PUBLIC_URL"),
        # The base of every FHIR code system, identifier system and extension URL telemed
        # mints (web/fhir/namespace.py): a consortium owns its namespace.
        "TELEMED_FHIR_NAMESPACE": env_base_url(
            "FHIR_NAMESPACE", "https://telemed.example.org/fhir"
        ),
        "TELEMED_LOGIN_MAX_FAILURES": env_int("LOGIN_MAX_FAILURES", 5),
        "TELEMED_LOGIN_WINDOW_SECONDS": env_int("LOGIN_WINDOW_SECONDS", 900),
        "TELEMED_LOGIN_MAX_FAILURES_PER_IP": env_int("LOGIN_MAX_FAILURES_PER_IP", 30),
        # An address the account signed in from within these days is its own source.
        "TELEMED_LOGIN_KNOWN_ADDRESS_DAYS": env_int("LOGIN_KNOWN_ADDRESS_DAYS", 90),
        # Proxies (addresses or networks) whose X-Forwarded-For / -Proto are believed.
        "TELEMED_TRUSTED_PROXIES": env_list("TRUSTED_PROXIES", []),
        "TELEMED_PASSWORD_HASH": env("PASSWORD_HASH", "scrypt"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env_bool("SECURE_COOKIES", False),
        # Strict-Transport-Security on answers served over TLS (0: none).
        "TELEMED_HSTS_SECONDS": env_int("HSTS_SECONDS", 31536000),
        "SESSION_COOKIE_NAME": "telemed_session",
        "REMEMBER_COOKIE_DURATION": 0,
        # CSRF is checked in one place (web/security.py) so bearer-token calls can skip it.
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "BABEL_DEFAULT_LOCALE": env("DEFAULT_LOCALE", "zh_Hans"),
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "MAX_CONTENT_LENGTH": env_int("MAX_REQUEST_BYTES", 64 * 1024**2),
        # JSON bodies nested deeper are refused (422) before they are parsed.
        "TELEMED_MAX_JSON_DEPTH": env_int("MAX_JSON_DEPTH", 32),
        "JSON_SORT_KEYS": False,
        "API_TITLE": "telemed",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
    }
