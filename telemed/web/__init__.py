"""HTTP entry points: one blueprint per area, one transaction per request."""

from __future__ import annotations

from flask import Flask
from flask_babel import get_locale

from telemed.i18n import local_time


def init_app(app: Flask) -> None:
    from telemed.web import boundary, errors, proxies, security
    from telemed.web.input_limits import IdConverter, refuse_deep_json, refuse_nul

    # Before any route is added: every <int:...> is bounded to what the databases hold.
    app.url_map.converters["int"] = IdConverter
    proxies.init_app(app)
    boundary.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    app.before_request(refuse_deep_json)  # after the transaction's and the caller's set-up
    app.before_request(refuse_nul)

    from telemed.web.api import init_api
    from telemed.web.auth import bp as auth_bp
    from telemed.web.cases import bp as cases_bp
    from telemed.web.dicomweb import bp as dicomweb_bp
    from telemed.web.fhir import bp as fhir_bp
    from telemed.web.pages.admin import bp as admin_bp
    from telemed.web.pages.booking import bp as booking_bp
    from telemed.web.pages.consults import bp as consults_bp
    from telemed.web.pages.dashboard import bp as dashboard_bp
    from telemed.web.pages.dicom_node import bp as dicom_node_bp
    from telemed.web.pages.home import bp as home_bp
    from telemed.web.pages.jobs import bp as jobs_admin_bp
    from telemed.web.pages.notifications import bp as notifications_bp
    from telemed.web.pages.patients import bp as patients_bp
    from telemed.web.pages.referrals import bp as referrals_bp
    from telemed.web.pages.schedules import bp as schedules_bp
    from telemed.web.uploads import bp as uploads_bp

    for blueprint in (
        auth_bp,
        home_bp,
        booking_bp,
        patients_bp,
        schedules_bp,
        admin_bp,
        notifications_bp,
        fhir_bp,
        jobs_admin_bp,
    ):
        app.register_blueprint(blueprint)
    for blueprint in (cases_bp, uploads_bp, dicomweb_bp, dashboard_bp, referrals_bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(dicom_node_bp)
    app.register_blueprint(consults_bp)
    init_api(app)

    from telemed.labels import ecg_format, identity_mismatch
    from telemed.web.pages.common import label, local_day, local_name

    app.jinja_env.filters["localtime"] = local_time
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["identity_mismatch"] = identity_mismatch
    app.jinja_env.filters["ecg_format"] = ecg_format
    app.jinja_env.filters["localday"] = local_day
    app.jinja_env.filters["local_name"] = local_name
    app.jinja_env.add_extension("jinja2.ext.do")

    from telemed.web.assets import (
        asset_preloads,
        asset_url,
        cache_fingerprinted,
        compress_text,
        send_precompressed,
    )

    app.jinja_env.globals["asset_url"] = asset_url
    app.jinja_env.globals["asset_preloads"] = asset_preloads

    from telemed.web.ui_text import ui_text

    app.jinja_env.globals["ui_text"] = ui_text
    app.before_request(send_precompressed)
    app.after_request(cache_fingerprinted)
    app.after_request(compress_text)
