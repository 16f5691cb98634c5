"""schemathesis against the service's own OpenAPI schema: no 5xx for anything a client
can send, and responses conform to the schema. Bounded to run in well under a minute."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from api.config import Settings
from api.main import create_app

_tmp = None


def _app():
    import tempfile

    global _tmp
    _tmp = tempfile.TemporaryDirectory()
    return create_app(
        Settings(
            database_url=f"sqlite:///{_tmp.name}/fuzz.db",
            sync_max_columns=2000,
            sync_time_limit_s=5,
        )
    )


app = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def lifespan():
    from fastapi.testclient import TestClient

    with TestClient(app):  # runs the lifespan: store, job runner, solver pool
        yield


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case):
    case.call_and_validate(
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
    )
