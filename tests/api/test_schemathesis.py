"""schemathesis against the service's own OpenAPI schema, with the API key set: every
operation (examples and fuzzing), then the stateful phase (sequences of calls following the
links schemathesis infers). No 5xx for anything a client can send, responses conform to the
schema, schema-valid requests are accepted, and requests without the key answer 401.
Bounded to run in well under a minute."""

from __future__ import annotations

import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from api.config import Settings
from api.main import create_app

KEY = "fuzz-key"
_tmp = tempfile.TemporaryDirectory()
app = create_app(
    Settings(
        database_url=f"sqlite:///{_tmp.name}/fuzz.db",
        api_key=KEY,
        sync_max_columns=2000,
        sync_time_limit_s=5,
    )
)
# A schema-valid request may still be refused for what a JSON Schema cannot say: a scenario's
# cross checks (one entry per period, known accelerator types, feasibility: 422), names that
# must exist in the stored scenario (a what-if's or counterfactual's segment or pool, the
# segment to explain, a fair-shares weight's segment, an alternative's kind or pool: 422),
# ids that do not exist (404), a scenario too large to solve synchronously (POST /v1/solve:
# 413), a full queue (503), an If-Match naming another revision than the stored one (412:
# any string is a valid header, only the current ETag matches). Everywhere else, a
# schema-valid request is taken.
ACCEPTED = ["2xx", "404", "409", "412", "413", "503"]
CROSS_CHECKED = (
    r"^/v1/(solve|scenarios(/\{scenario_id\}(/(what-if|what-if/save|counterfactual|sensitivity|fair|alternatives))?)?"
    r"|plans/\{plan_id\}/explain)$"
)
config = SchemathesisConfig.from_dict(
    {
        "auth": {"openapi": {"APIKeyHeader": {"api_key": KEY}}},
        "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}},
        "operations": [
            {
                "include-path-regex": CROSS_CHECKED,
                "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}},
            }
        ],
    }
)
# a scenario workbook body (POST/PUT /v1/scenarios) is raw bytes: random ones are refused
# with 422 (not an Excel workbook), which those routes may answer anyway
schemathesis.serializer.alias(
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/octet-stream"
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    ignored_auth,
]


@pytest.fixture(scope="module", autouse=True)
def lifespan():
    from fastapi.testclient import TestClient

    with TestClient(app):  # runs the lifespan: store, job runner, solver pool
        yield


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case):
    case.call_and_validate(checks=CHECKS)


CALLS: list[tuple[str, int]] = []


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    def setup(self):
        """Each sequence starts from the same store (the bundled examples, no jobs):
        hypothesis replays sequences and needs the same calls to give the same statuses."""
        from api.main import load_examples
        from api.store import (
            api_keys,
            audit_log,
            plan_approvals,
            plans,
            scenario_revisions,
            scenarios,
        )

        store = app.state.store
        with store.engine.begin() as c:
            for table in (
                plan_approvals,
                plans,
                scenario_revisions,
                scenarios,
                audit_log,
                api_keys,
            ):
                c.execute(table.delete())
        load_examples(store, app.state.settings)

    def after_call(self, response, case):
        super().after_call(response, case)
        CALLS.append((f"{case.method} {case.path}", response.status_code))

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)


def test_stateful():
    Workflow.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=4,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    print(CALLS)
    # the sequences went somewhere: calls with the key that were accepted, and chains
    assert sum(1 for _, status in CALLS if status < 300) >= 5, CALLS
