"""The token and introspection fast paths answer exactly what the Authlib path answers,
request by request, over HTTP; no token is answered before its audit row is committed;
everything they do not handle, errors included, is left to the Authlib path."""

from __future__ import annotations

import base64
import threading
from dataclasses import replace
from typing import Any

import pytest
import requests
from joserfc import jwt
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select

from idp import create_app
from idp.audit.group_commit import GroupCommit
from idp.audit.models import AuditEvent
from idp.audit.service import CLIENT_IP_MAX
from idp.audit.service import INSERT_EVENT
from idp.audit.service import Sealer
from idp.audit.service import verify_chain
from idp.web.fastpath import FastPaths
from tests.factories import add_client
from tests.factories import seed
from tests.servers import serving

FORM = "application/x-www-form-urlencoded"
SECRET = "demo-service-secret"
OTHER_SECRET = "o" * 40
# Compared per row: everything but the id, the time (the same frozen clock) and the token's jti.
ROW_FIELDS = ("event", "outcome", "actor", "client_id", "client_ip", "request_id")


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.fixture(params=["development", "production"])
def servers(request, settings, deps) -> Any:
    """The whole application (fast paths first) and Flask alone, on two loopback ports."""
    seed(deps)
    add_client(deps, "svc-basic", secret=OTHER_SECRET, auth_methods=["client_secret_basic"],
               redirect_uris=[], grant_types=["client_credentials"],
               scope="helpdesk reports openid")  # fmt: skip
    add_client(deps, "svc-code", secret=OTHER_SECRET, grant_types=["authorization_code"],
               scope="helpdesk")  # fmt: skip
    # Production adds HSTS to every answer: both modes are compared.
    deps = replace(deps, settings=settings.model_copy(update={"mode": request.param}))
    app = create_app(deps=deps, background=False)
    layer: FastPaths = app.extensions["idp.fast_paths"]
    flask_alone = layer.behind
    passed_on: list[bool] = []

    def behind(environ: Any, start_response: Any) -> Any:
        passed_on.append(True)
        return flask_alone(environ, start_response)

    layer.token.behind = layer.introspection.behind = behind
    with serving(app) as fast, serving(flask_alone) as slow:
        yield fast, slow, passed_on, deps, layer


# (what the request is, form body, headers); X-Request-Id and the content type are added.
CASES: list[tuple[str, str, dict[str, str]]] = [
    ("basic", "grant_type=client_credentials", {"Authorization": basic("demo-service", SECRET)}),
    ("basic, scope", "grant_type=client_credentials&scope=helpdesk",
     {"Authorization": basic("demo-service", SECRET)}),
    ("basic, empty scope", "grant_type=client_credentials&scope=",
     {"Authorization": basic("demo-service", SECRET)}),
    ("basic, two scopes with +", "scope=reports+helpdesk&grant_type=client_credentials",
     {"Authorization": basic("svc-basic", OTHER_SECRET)}),
    ("basic, escaped credentials", "grant_type=client_credentials",
     {"Authorization": basic("svc%2Dbasic", OTHER_SECRET.replace("o", "%6F", 3))}),
    ("post", f"grant_type=client_credentials&client_id=demo-service&client_secret={SECRET}", {}),
    ("post, scope", f"client_secret={SECRET}&scope=helpdesk&client_id=demo-service"
     "&grant_type=client_credentials", {}),
    # Errors: every one of them is the Authlib path's.
    ("user scope", "grant_type=client_credentials&scope=openid",
     {"Authorization": basic("svc-basic", OTHER_SECRET)}),
    ("unknown scope", "grant_type=client_credentials&scope=helpdesk+nope",
     {"Authorization": basic("demo-service", SECRET)}),
    ("wrong secret, basic", "grant_type=client_credentials",
     {"Authorization": basic("demo-service", "wrong-secret")}),
    ("wrong secret, post",
     "grant_type=client_credentials&client_id=demo-service&client_secret=wrong", {}),
    ("unknown client", "grant_type=client_credentials",
     {"Authorization": basic("nobody", SECRET)}),
    ("grant not registered", "grant_type=client_credentials",
     {"Authorization": basic("svc-code", OTHER_SECRET)}),
    ("method not registered",
     f"grant_type=client_credentials&client_id=svc-basic&client_secret={OTHER_SECRET}", {}),
    ("both methods", f"grant_type=client_credentials&client_secret={SECRET}",
     {"Authorization": basic("demo-service", SECRET)}),
    ("post without secret", "grant_type=client_credentials&client_id=demo-service", {}),
    ("duplicate parameter", "grant_type=client_credentials&scope=helpdesk&scope=helpdesk",
     {"Authorization": basic("demo-service", SECRET)}),
    ("unknown parameter", "grant_type=client_credentials&resource=urn%3Ax",
     {"Authorization": basic("demo-service", SECRET)}),
    ("client assertion", "grant_type=client_credentials&client_id=demo-service"
     "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
     "&client_assertion=a.b.c", {}),
    ("DPoP header", "grant_type=client_credentials",
     {"Authorization": basic("demo-service", SECRET), "DPoP": "a.b.c"}),
    ("another grant", "grant_type=password&username=a&password=b",
     {"Authorization": basic("demo-service", SECRET)}),
    ("no grant type", "scope=helpdesk", {"Authorization": basic("demo-service", SECRET)}),
    ("lower-case scheme", "grant_type=client_credentials",
     {"Authorization": "basic " + basic("demo-service", SECRET)[6:]}),
    ("unreadable basic", "grant_type=client_credentials", {"Authorization": "Basic !!!"}),
    ("bearer", "grant_type=client_credentials", {"Authorization": "Bearer abc"}),
    ("non-ASCII scope", "grant_type=client_credentials&scope=%E0%B8%81",
     {"Authorization": basic("demo-service", SECRET)}),
    ("control character", "grant_type=client_credentials&scope=help%00desk",
     {"Authorization": basic("demo-service", SECRET)}),
    ("not UTF-8", "grant_type=client_credentials&scope=%FF",
     {"Authorization": basic("demo-service", SECRET)}),
    ("JSON body", '{"grant_type":"client_credentials"}',
     {"Authorization": basic("demo-service", SECRET), "Content-Type": "application/json"}),
    ("empty body", "", {"Authorization": basic("demo-service", SECRET)}),
]  # fmt: skip
ANSWERED_FAST = {"basic", "basic, scope", "basic, empty scope", "basic, two scopes with +",
                 "basic, escaped credentials", "post", "post, scope"}  # fmt: skip


def post(
    base: str, body: str, headers: dict[str, str], request_id: str, path: str = "/token"
) -> requests.Response:
    sent = {"Content-Type": FORM, "X-Request-Id": request_id, **headers}
    return requests.post(base + path, data=body.encode(), headers=sent, timeout=10)


def rows_after(deps: Any, last_id: int) -> list[AuditEvent]:
    with deps.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id)
        return list(session.scalars(query))


def last_row_id(deps: Any) -> int:
    rows = rows_after(deps, 0)
    return rows[-1].id if rows else 0


def comparable(response: requests.Response, rows: list[AuditEvent], deps: Any) -> Any:
    """Status, headers, body and audit rows, with each token reduced to what must match."""
    headers = [(k, v) for k, v in response.raw.headers.items() if k not in ("Date", "Server")]
    jtis = []
    body: Any = response.content
    if response.status_code == 200 and b"access_token" in response.content:
        body = response.json()
        token = jwt.decode(body.pop("access_token"), deps.keyring.snapshot.verifying)
        claims = dict(token.claims)
        jtis.append(claims.pop("jti"))
        body["token"] = (token.header, claims)
        body = list(body.items())  # the order of the members too
    audit = []
    for row in rows:
        details = dict(row.details)
        if "jti" in details:
            assert details.pop("jti") == jtis.pop(0)  # the row names the token answered
        audit.append(({f: getattr(row, f) for f in ROW_FIELDS}, details))
    assert not jtis, "a token was answered without its audit row"
    return response.status_code, headers, body, audit


def compare(
    servers: Any, cases: list[tuple[str, str, dict[str, str]]], path: str, tag: str
) -> set[str]:
    """Send each case to both servers, assert the answers are alike; return the cases the
    fast path answered itself."""
    fast, slow, passed_on, deps, _layer = servers
    answered_fast = set()
    for number, (name, body, headers) in enumerate(cases):
        request_id = f"{tag}-{number:04d}-compare"
        answers = []
        for base in (fast, slow):
            passed_on.clear()
            before = last_row_id(deps)
            response = post(base, body, headers, request_id, path)
            answers.append(comparable(response, rows_after(deps, before), deps))
            if base == fast and not passed_on:
                answered_fast.add(name)
        assert answers[0] == answers[1], name
    return answered_fast


def test_both_paths_answer_token_requests_alike(servers):
    assert compare(servers, CASES, "/token", "token") == ANSWERED_FAST


def client_token(base: str, client_id: str, secret: str) -> str:
    credentials = {"Authorization": basic(client_id, secret)}
    response = post(base, "grant_type=client_credentials", credentials, "setup-token-0000")
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_both_paths_answer_introspection_alike(servers, clock):
    fast, slow, passed_on, deps, _layer = servers
    expired = client_token(slow, "demo-service", SECRET)
    clock.advance(deps.signer.access_ttl + 1)
    service = client_token(slow, "demo-service", SECRET)
    other = client_token(slow, "svc-basic", OTHER_SECRET)
    revoked = client_token(slow, "svc-basic", OTHER_SECRET)
    revoking = post(slow, f"token={revoked}", {"Authorization": basic("svc-basic", OTHER_SECRET)},
                    "setup-revoke-0000", "/revoke")  # fmt: skip
    assert revoking.status_code == 200
    tampered = service[:-4] + ("AAAA" if not service.endswith("AAAA") else "BBBB")
    as_service = {"Authorization": basic("demo-service", SECRET)}
    as_other = {"Authorization": basic("svc-basic", OTHER_SECRET)}
    post_as_service = f"client_id=demo-service&client_secret={SECRET}"
    cases: list[tuple[str, str, dict[str, str]]] = [
        ("protected resource, basic", f"token={service}", as_service),
        ("protected resource, post, another's token", f"{post_as_service}&token={other}", {}),
        ("own token", f"token={other}", as_other),
        ("hint refresh_token", f"token={service}&token_type_hint=refresh_token", as_service),
        ("hint access_token", f"token_type_hint=access_token&token={other}", as_service),
        ("another client's token", f"token={service}", as_other),
        ("revoked", f"token={revoked}", as_service),
        ("expired", f"token={expired}", as_service),
        ("tampered", f"token={tampered}", as_service),
        ("not ours", "token=a.b.c", as_service),
        # For the Authlib path:
        ("opaque", "token=abcdef", as_service),
        ("client without the grant", f"token={service}",
         {"Authorization": basic("svc-code", OTHER_SECRET)}),
        ("wrong secret", f"token={service}", {"Authorization": basic("demo-service", "nope")}),
        ("unknown client", f"token={service}", {"Authorization": basic("nobody", SECRET)}),
        ("method not registered",
         f"client_id=svc-basic&client_secret={OTHER_SECRET}&token={other}", {}),
        ("no token", "token_type_hint=access_token", as_service),
        ("empty token", "token=", as_service),
        ("two tokens", f"token={service}&token={other}", as_service),
        ("another parameter", f"token={service}&resource=x", as_service),
        ("both methods", f"token={service}&client_secret={SECRET}", as_service),
        ("DPoP header", f"token={service}", {**as_service, "DPoP": "a.b.c"}),
        ("control character", "token=a.b%00.c", as_service),
    ]  # fmt: skip
    fast_ones = compare(servers, cases, "/introspect", "introspect")
    assert fast_ones == {name for name, *_ in cases[:11]} - {"opaque"} | {
        "client without the grant"  # introspection asks for no grant: it answers inactive
    }
    # A token seen (and its signature remembered) is inactive as soon as it is revoked.
    revoking = post(slow, f"token={service}", as_service, "setup-revoke-0001", "/revoke")
    assert revoking.status_code == 200
    for base in (fast, slow):
        passed_on.clear()
        answer = post(base, f"token={service}", as_service, "after-revoke-0001", "/introspect")
        assert answer.json() == {"active": False}
    assert not passed_on


def test_concurrent_tokens_each_have_a_committed_row_and_the_chain_verifies(servers):
    fast, _slow, passed_on, deps, _layer = servers
    tokens: list[str] = []
    failures: list[Any] = []

    def fetch(worker: int) -> None:
        for n in range(15):
            response = post(fast, "grant_type=client_credentials",
                            {"Authorization": basic("demo-service", SECRET)},
                            f"load-{worker:02d}-{n:04d}")  # fmt: skip
            if response.status_code != 200:
                failures.append(response.text)
                continue
            tokens.append(response.json()["access_token"])
            # Durable before the answer: the row is visible to another connection now.
            claims = jwt.decode(tokens[-1], deps.keyring.snapshot.verifying).claims
            with deps.sessions() as session:
                found = session.scalars(
                    select(AuditEvent.id).where(
                        AuditEvent.details["jti"].as_string() == claims["jti"]
                    )
                ).all()
            if len(found) != 1:
                failures.append(("row", claims["jti"], found))

    threads = [threading.Thread(target=fetch, args=(w,)) for w in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(tokens) == 180
    assert not passed_on
    Sealer(deps.sessions, interval=1).seal_now()
    with deps.sessions() as session:
        report = verify_chain(session)
    assert report.is_intact
    assert report.unsealed == 0
    assert report.checked >= 180


def test_a_failed_audit_commit_answers_no_token_from_the_fast_path(servers):
    fast, _slow, passed_on, deps, layer = servers
    # The fast path's committer loses its database (a port nothing listens on): the request
    # goes to the Authlib path, which writes its own row on its working connection.
    working = layer.token._audit
    layer.token._audit = GroupCommit(
        create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none"), INSERT_EVENT
    )
    try:
        before = last_row_id(deps)
        credentials = {"Authorization": basic("demo-service", SECRET)}
        response = post(fast, "grant_type=client_credentials", credentials, "broken-audit-0001")
    finally:
        layer.token._audit = working
    assert response.status_code == 200
    assert passed_on  # answered by the Authlib path
    rows = rows_after(deps, before)
    assert [r.event for r in rows] == ["token.issued"]
    jti = jwt.decode(response.json()["access_token"], deps.keyring.snapshot.verifying).claims["jti"]
    assert rows[0].details["jti"] == jti


def test_a_killed_audit_connection_answers_no_token_without_its_row_and_recovers(servers):
    fast, _slow, passed_on, deps, layer = servers
    credentials = {"Authorization": basic("demo-service", SECRET)}
    assert post(fast, "grant_type=client_credentials", credentials, "killed-0001").ok
    assert not passed_on
    # The database ends the committer's connection (a restart, a failover, an operator).
    backend = layer.token._audit._direct._connection.info.backend_pid
    with deps.sessions() as session:
        assert session.scalar(select(func.pg_terminate_backend(backend))) is True
    answers = []
    for n in range(2, 5):
        before = last_row_id(deps)
        response = post(fast, "grant_type=client_credentials", credentials, f"killed-{n:04d}")
        assert response.status_code == 200
        jti = jwt.decode(response.json()["access_token"], deps.keyring.snapshot.verifying)
        rows = rows_after(deps, before)
        # Exactly the answered token's row: the lost batch answered nothing.
        assert [row.details["jti"] for row in rows] == [jti.claims["jti"]]
        answers.append(bool(passed_on))
    assert answers == [True, True, True]  # the first by Authlib, then the fast path again
    assert len(passed_on) == 1


def test_a_forged_client_address_is_recorded_cut_to_its_column(settings, deps):
    # Behind a proxy that passes the caller's X-Forwarded-For on (or reached past it), the
    # client address is whatever the caller wrote: one longer than its column is recorded cut
    # to the column, costs no one else their token and answers no token without its row.
    seed(deps)
    deps = replace(deps, settings=settings.model_copy(update={"trusted_proxies": 1}))
    app = create_app(deps=deps, background=False)
    credentials = {"Authorization": basic("demo-service", SECRET)}
    forged = {**credentials, "X-Forwarded-For": "2001:db8::" + "f" * 80 + "'); --"}
    with serving(app) as base:
        before = last_row_id(deps)
        results: dict[str, list[int]] = {"forged": [], "honest": []}

        def call(kind: str, headers: dict[str, str], n: int) -> None:
            response = post(base, "grant_type=client_credentials", headers, f"{kind}-{n:05d}")
            results[kind].append(response.status_code)

        threads = [
            threading.Thread(target=call, args=(kind, headers, n))
            for n in range(10)
            for kind, headers in (("forged", forged), ("honest", credentials))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert results["honest"] == [200] * 10
    assert results["forged"] == [200] * 10
    issued = [row for row in rows_after(deps, before) if row.event == "token.issued"]
    assert len(issued) == 20
    cut = forged["X-Forwarded-For"][:CLIENT_IP_MAX]
    assert {row.client_ip for row in issued} == {"127.0.0.1", cut}
