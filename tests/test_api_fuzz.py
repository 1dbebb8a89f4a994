"""Schema-driven fuzzing of the local API: every operation of its OpenAPI document, against the real server.

Schemathesis generates valid and invalid requests from the OpenAPI document; whatever it sends, the server must
never answer 5xx and every error must come in the one error shape (title, status, detail[, errors]). It runs
with a valid token, so that requests reach the handlers, and a short run without one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from core.api import create_app
from core.credentials import load_or_create
from tests.e2e.conftest import Server, load_demo

# The document the server serves (checked against /api/openapi.json below); loaded at import so that
# every operation becomes a test of its own.
schema = schemathesis.openapi.from_dict(create_app().openapi())
ERROR_KEYS = {"title", "status", "detail", "errors"}
# Fresh examples on every local run; in CI the same examples every run, so a landing never hangs on luck.
FIXED = bool(os.environ.get("CI"))
OPEN = {"/v1/authentication", "/health"}  # API.md: every other call needs a token


@schemathesis.serializer("text/csv")
def csv_body(ctx, value) -> bytes:
    """A CSV body (a tariff's prices) as the text generated for it; any bytes are a CSV for the server to judge."""
    return value if isinstance(value, bytes) else str(value).encode()


@dataclass
class Target:
    base_url: str
    token: str


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    db = tmp_path_factory.mktemp("fuzz") / "chargelens.duckdb"
    load_demo(db)
    server = Server(db)
    try:
        reply = httpx.post(f"{server.url}/api/v1/authentication", json=load_or_create(db), timeout=10)
        reply.raise_for_status()
        yield Target(f"{server.url}/api", reply.json()["access_token"])
    finally:
        server.stop()


def one_error_shape(ctx, response, case) -> None:
    """Every 4xx reply is a JSON object with a text title and detail and the status it was sent with."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} reply is not JSON: {response.text[:200]!r}") from None
    assert isinstance(body, dict), f"error body is not an object: {response.text[:200]}"
    assert isinstance(body.get("title"), str) and body["title"], f"no title: {body}"
    assert isinstance(body.get("detail"), str) and body["detail"], f"no detail: {body}"
    assert body.get("status") == response.status_code, f"status {body.get('status')} in a {response.status_code} reply"
    assert set(body) <= ERROR_KEYS, f"unexpected keys: {sorted(body)}"


def test_the_served_document_is_the_fuzzed_one(target):
    served = httpx.get(f"{target.base_url}/openapi.json", timeout=10).json()
    assert served.pop("servers") == [{"url": "/api"}]
    assert served == create_app().openapi()


# A request can fit the document and still break a rule of API.md that no schema states: a forged or stale
# continuationToken, end not after start, a feature refusal. Those are 400 by contract, so the "schema-valid
# request accepted" check does not apply; every other check does, plus the error shape.
EXCLUDED = [checks.positive_data_acceptance]
# Any bytes are a file: what an uploaded file (an import, a price CSV) holds is judged by the server, not by the
# request's schema.
UPLOADS = {"/v1/imports", "/v1/tariffs/{name}/prices"}


def excluded(case) -> list:
    return [*EXCLUDED, checks.negative_data_rejection] if case.operation.path in UPLOADS else EXCLUDED


@schema.parametrize()
@settings(max_examples=40, derandomize=FIXED, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_with_a_token(case, target):
    case.call_and_validate(
        base_url=target.base_url,
        headers={"Authorization": f"Bearer {target.token}"},
        additional_checks=[one_error_shape],
        excluded_checks=excluded(case),
    )


@schema.parametrize()
@settings(max_examples=5, derandomize=FIXED, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_without_a_token(case, target):
    response = case.call_and_validate(
        base_url=target.base_url, additional_checks=[one_error_shape], excluded_checks=excluded(case)
    )
    if case.operation.path not in OPEN:
        assert response.status_code in (400, 401, 404, 405, 413), response.text
