"""The app for bench/ingest.py: a fresh SQLite database and storage in a work folder, a
small consortium with tokens, served on 127.0.0.1 as ``flask serve`` serves it (waitress
with the keep-alive channel, 16 threads, the same read sizes; ``runner.web_server``), and
the DICOM node's listener beside it (as ``flask serve`` runs it, or ``flask dicom serve``
alone) with one member institution's AE title; its own process so its memory can be
measured.

    _ingest_server.py WORK HTTP_PORT [DICOM_PORT]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MEMBER_AE = "BENCH_PACS"


def main() -> None:
    work = Path(sys.argv[1])
    port = int(sys.argv[2])
    dicom_port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    os.environ["TELEMED_INSTANCE_DIR"] = str(work / "instance")
    os.environ["TELEMED_DATABASE_URL"] = f"sqlite:///{work / 'telemed.sqlite'}"
    os.environ["TELEMED_STORAGE_DIR"] = str(work / "storage")
    os.environ["TELEMED_RUN_SCHEDULER"] = "0"
    os.environ.setdefault("TELEMED_SECRET_KEY", "bench")
    from flask_migrate import upgrade

    from telemed import create_app
    from telemed.dicomnode.scp import DicomListener
    from telemed.domain.case_states import CaseKind
    from telemed.extensions import db
    from telemed.runner import freeze_startup_objects, web_server
    from telemed.services.accounts.context import actor_of
    from telemed.services.cases import cases, dicom_nodes
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
        member = world.user("gp_ts1").institution_id
        dicom_nodes.set_node(actor_of(world.user("admin")), member, ae_title=MEMBER_AE)
        db.session.commit()
        info = {
            "token": factories.token_for(world.user("gp_ts1")),
            "cases": case_ids,
            "pid": os.getpid(),
        }
    listener = DicomListener(app, host="127.0.0.1", port=dicom_port).start()
    info.update(dicom_port=listener.port, dicom_ae=listener.ae_title, calling_ae=MEMBER_AE)
    server = web_server(app, host="127.0.0.1", port=port)
    (work / "server.json").write_text(json.dumps(info))
    freeze_startup_objects()
    try:
        server.run()
    finally:
        listener.stop()


if __name__ == "__main__":
    main()
