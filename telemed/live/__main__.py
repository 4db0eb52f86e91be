"""``python -m telemed.live``: one live-consult process (production runs several)."""

from __future__ import annotations

import argparse

from telemed import create_app
from telemed.live.server import LiveSettings, run_forever


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m telemed.live")
    parser.add_argument("--host", help="overrides TELEMED_LIVE_HOST")
    parser.add_argument("--port", type=int, help="overrides TELEMED_LIVE_PORT")
    args = parser.parse_args()
    app = create_app()
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        run_forever(app, LiveSettings.from_app(app, **overrides))
    except RuntimeError as refusal:  # Redis required but unreachable: say why, no traceback
        raise SystemExit(f"telemed live: {refusal}") from None


if __name__ == "__main__":
    main()
