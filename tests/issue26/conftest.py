"""The service fixtures (a TestClient on a fresh store) for this issue's REST checks."""

from tests.api.conftest import client, settings  # noqa: F401
