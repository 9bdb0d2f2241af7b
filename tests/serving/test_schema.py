"""Property-based run of schemathesis against the service's OpenAPI spec: no input gives a 5xx."""

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from motorec.serving.app import create_app
from motorec.serving.service import RecommenderService


def test_no_server_errors_on_any_operation(bundle, tmp_path):
    service = RecommenderService(bundle, tmp_path / "wal.log", preload_encoders=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(service))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def no_5xx(case):
            case.call_and_validate(checks=[not_a_server_error])

        no_5xx()
    service.close()
