"""A short run of schemathesis over the app's own OpenAPI schema, on both databases: no 5xx,
no status and no content type the schema does not document. The full run (300 examples an
operation, every phase, against ``dstrail serve``) is described in docs/api.md."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from dstrail.app import create_app
from dstrail.context import Dstrail
from tests.support import Login

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
EXAMPLES = settings(
    max_examples=6,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_every_operation_answers_as_documented(dstrail: Dstrail, admin: Login) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(dstrail))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 25  # the whole API, not an empty schema

    for operation in operations:

        @EXAMPLES
        @given(case=operation.as_strategy())
        def answers_as_documented(case: Any) -> None:
            case.call_and_validate(headers=admin.headers, checks=CHECKS)

        answers_as_documented()
