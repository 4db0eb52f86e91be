"""The app for bench/ingest.py: a fresh SQLite database and storage in a work folder, a
small consortium with tokens, served by waitress on 127.0.0.1 (run as its own process so
its memory can be measured)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    work = Path(sys.argv[1])
    port = int(sys.argv[2])
    os.environ["TELEMED_INSTANCE_DIR"] = str(work / "instance")
    os.environ["TELEMED_DATABASE_URL"] = f"sqlite:///{work / 'telemed.sqlite'}"
    os.environ["TELEMED_STORAGE_DIR"] = str(work / "storage")
    os.environ["TELEMED_RUN_SCHEDULER"] = "0"
    os.environ.setdefault("TELEMED_SECRET_KEY", "bench")
    from flask_migrate import upgrade
    from waitress import serve

    from telemed import create_app
    from telemed.domain.case_states import CaseKind
    from telemed.extensions import db
    from telemed.runner import RECV_BYTES, freeze_startup_objects
    from telemed.services.accounts.context import actor_of
    from telemed.services.cases import cases
    from tests import factories

    app = create_app()
    with app.app_context():
        upgrade()
        world = factories.build_world()
        db.session.commit()
        gp = actor_of(world.user("gp_ts1"))
        case_ids = []
        for question in ("CT series", "1 GB upload", "rendering"):
            case = cases.open_case(
                gp,
                patient_id=world.patients["TS1"][0].id,
                kind=CaseKind.IMAGING_READ,
                question=question,
                target_department_id=world.departments["RAD"].id,
            )
            case_ids.append(case.id)
        db.session.commit()
        info = {
            "token": factories.token_for(world.user("gp_ts1")),
            "cases": case_ids,
            "pid": os.getpid(),
        }
    (work / "server.json").write_text(json.dumps(info))
    freeze_startup_objects()
    serve(app, host="127.0.0.1", port=port, threads=8, recv_bytes=RECV_BYTES, _quiet=True)


if __name__ == "__main__":
    main()
