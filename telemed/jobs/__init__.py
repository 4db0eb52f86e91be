"""Scheduled jobs: APScheduler 3 with its store in the database, one runner at a time.

- ``definitions.py``: every job (fixed id, trigger, misfire grace, retries, service call)
- ``service.py``: the lease loop that runs the scheduler only in the lease holder
- ``runs.py``: one run of one job (JobRun claim, one transaction, retries)
- ``lease.py``: the single-runner lease row
- ``clockwork.py``: APScheduler on telemed.clock, with the app's engine as its store
- ``outbox.py``: sends queued notification deliveries after the commit
- ``overview.py``: what the admin page and ``jobs list`` show
- ``cli.py``: ``flask --app wsgi jobs list | run NAME | serve``
"""
