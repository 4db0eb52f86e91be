"""The live-consult socket server: rooms, tickets, the record, replay (docs/live-protocol.md).

Run standalone with ``python -m telemed.live`` or ``flask --app wsgi live``; ``make run``
starts it beside the web app in one process.
"""
