"""No input gets a 500: malformed requests to every route of the URL map and every operation
of the admin API's document (NUL, lone surrogates, bytes that are not UTF-8, nesting deep
enough to exhaust a recursive parser, huge query strings), each refused with a 400 in the
format of the place it was sent to."""

from __future__ import annotations

import pytest

from tests.factories import seed
from tests.malformed import API
from tests.malformed import Probe
from tests.malformed import probes
from tests.malformed import speaks_json
from tests.rp import basic


@pytest.fixture
def helpdesk_token(client, deps) -> str:
    seed(deps)
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "helpdesk"},
        headers=basic("demo-service", "demo-service-secret"),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return str(response.get_json()["access_token"])


def send(client, probe: Probe):
    return client.open(
        probe.path,
        method=probe.method,
        query_string=probe.query or None,
        data=probe.body or None,
        content_type=probe.content_type,
        headers=probe.headers,
    )


def test_no_malformed_request_to_any_route_gets_a_500(app, client, helpdesk_token):
    document = client.get(f"{API}/openapi.json").get_json()
    # Without a cookie jar, so that the Cookie header goes out as given.
    client = app.test_client(use_cookies=False)
    sweep = probes(app, document, bearer=helpdesk_token)
    assert len(sweep) > 1000  # every route, every method, every kind
    failures = []
    for probe in sweep:
        response = send(client, probe)
        status = response.status_code
        if status >= 500 or (probe.refused and status != 400):
            failures.append(f"{probe.method} {probe.target[:80]} [{probe.name}] -> {status}")
        elif probe.refused:
            if speaks_json(probe.path):
                if response.get_json(silent=True, force=True).get("error") != "invalid_request":
                    failures.append(f"{probe.method} {probe.path[:60]} [{probe.name}]: not JSON")
            elif response.mimetype != "text/html":
                failures.append(f"{probe.method} {probe.path[:60]} [{probe.name}]: not a page")
    assert not failures, f"{len(failures)} of {len(sweep)}:\n" + "\n".join(failures[:60])
