"""Logging set-up: personal identifiers are masked before any line is written."""

from __future__ import annotations

import logging

from flask import Flask

from telemed.domain.masking import mask_text


class MaskingFilter(logging.Filter):
    """Rewrites national IDs and phone numbers in every record to their masked form."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string should still be logged
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


def configure(app: Flask) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    # Migrations log every plugin they load at INFO; only their warnings matter here.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    for handler in [*root.handlers, *app.logger.handlers]:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
