"""``python -m telemed.jobs``: the scheduler on its own, as ``flask --app wsgi jobs serve``."""

from telemed import create_app
from telemed.jobs.cli import serve_until_signalled
from telemed.jobs.service import JobService


def main() -> None:
    app = create_app()
    serve_until_signalled(JobService(app))


if __name__ == "__main__":
    main()
