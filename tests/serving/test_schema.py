"""Property-based run of schemathesis against the service's OpenAPI spec: no input gives a 5xx."""
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from motorec.serving.app import create_app
from motorec.serving.service import RecommenderService


@pytest.fixture(scope="module")
def api_schema(bundle, tmp_path_factory):
    service = RecommenderService(bundle, tmp_path_factory.mktemp("schema") / "wal.log", preload_encoders=False)
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(service))
    service.close()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(checks=[not_a_server_error])
