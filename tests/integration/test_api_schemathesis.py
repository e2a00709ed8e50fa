"""schemathesis against the running API's /openapi.json: no 5xx, no response outside the document.

Scenario: the same stack as test_api_http (worker, CDN and API processes over a small catalog).
schemathesis generates requests for every operation (valid tokens sent; bounded example count) and
we expect no server error, only documented status codes and content types, and bodies that match
the response schemas.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.test_api_http import AUDIO_TRACK, Stack, start_stack, stop_stack

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def running(kafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(kafka, tmp_path_factory.mktemp("apifuzz"))
    try:
        tok = s.token("u-de")

        def ready() -> bool:
            try:
                status, body = s.api("GET", f"/v1/tracks/{AUDIO_TRACK}", tok)
            except OSError:
                return False
            return status == 200 and body.get("is_playable") is True

        s.wait_for("the catalog in the API", ready, timeout=180)
        s.bearer = tok  # type: ignore[attr-defined]
        yield s
    finally:
        stop_stack(s)


def _responses(stack: Stack) -> dict[str, float]:
    """``playlog_api_responses_total`` samples now, by their labels."""
    _, _, metrics = stack.request("GET", "/metrics")
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in metrics.decode().splitlines()
            if line.startswith("playlog_api_responses_total{")}


def test_no_server_errors_and_responses_match_the_schema(running: Stack) -> None:
    # the 503s the API gave while its views were catching up (ready means caught up) are not the fuzzer's
    before = _responses(running)
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{running.api_port}/openapi.json")
    headers = {"Authorization": f"Bearer {running.bearer}"}  # type: ignore[attr-defined]
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def exercise(case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            exercise()
        except Exception as exc:  # collect every operation's first failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert operations == 69  # 20 + the Spotify fidelity routes (me, devices, queue, albums, artists, items...) + export
    # + the OAuth fragment (GET/POST /authorize, POST /api/token) + shuffle, repeat, recently-played, top + 13 social
    # + radio, recommendations, available-genre-seeds
    after = _responses(running)
    grown = {k: v - before.get(k, 0.0) for k, v in after.items() if v > before.get(k, 0.0)}
    served = sum(grown.values())
    statuses = {k.split('status="')[1].split('"')[0] for k in grown}
    assert served >= operations * 10, served  # the fuzzer really exercised the API
    assert not any(s.startswith("5") for s in statuses), statuses
    assert not failures, "\n\n".join(failures)
