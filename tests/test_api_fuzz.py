"""Property-based input for every operation of the JSON API, generated from its own
OpenAPI document (schemathesis, derandomised so a run is repeatable): whatever a caller
sends, in any role, the answer is never a server error."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests import factories

ROLES = ("gp_ts1", "card1", "registrar", "admin")
EXAMPLES = 12


def test_no_input_makes_the_api_fail(app, world):
    headers = [
        {"Authorization": f"Bearer {factories.token_for(world.user(username))}"}
        for username in ROLES
    ]
    api = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 40

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            for each in headers:
                response = case.call(headers=each)
                case.validate_response(response, checks=[not_a_server_error])

        try:
            fuzz()
        except Exception as error:  # collect them all: one report names every operation
            failures.append(f"{operation.label}: {str(error)[:500]}")
    assert not failures, "\n".join(failures)
