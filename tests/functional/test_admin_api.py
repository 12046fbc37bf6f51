"""The admin API over HTTP: bearer tokens of the IdP with the admin scope from a login the phone
confirmed, the same rules as the console, JSON errors, and a document naming every route."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import update

from idp.accounts.models import UserSession
from tests.factories import seed
from tests.functional.test_admin_console import PDF
from tests.functional.test_admin_console import STAFF
from tests.functional.test_admin_console import UNIT
from tests.functional.test_admin_console import set_up_office
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import Stack
from tests.push_stack import push_stack
from tests.rp import RP
from tests.unit.test_admin_api_schema import documented
from tests.unit.test_admin_api_schema import routes_of

API = "/api/admin/v1"


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=STAFF) as running:
        set_up_office(running.deps)
        yield running


def token_of(stack: Stack, username: str, scope: str = "openid admin") -> str:
    login = Login.start(stack, username, scope=scope)
    pushed = stack.nexus.wait_for_push(f"phone-{username}")
    stack.nexus.approve(f"phone-{username}", pushed["id"], match_number(login.page.text))
    login.reload()
    return str(login.tokens()["access_token"])


def call(stack: Stack, token: str | None, method: str, path: str, **kwargs) -> requests.Response:
    headers = {
        **kwargs.pop("headers", {}),
        **({"Authorization": f"Bearer {token}"} if token else {}),
    }
    return requests.request(method, f"{stack.idp}{API}{path}", headers=headers, timeout=10,
                            **kwargs)  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def designate(stack: Stack, token: str, content: bytes = PDF, **fields: str) -> requests.Response:
    data = {"unit_code": UNIT, "username": "malee", "role": "approve-1",
            "valid_from": "2026-11-01", "order_number": "7/2569", "order_date": "2026-10-01",
            **fields}  # fmt: skip
    return call(stack, token, "POST", "/designations", data=data,
                files={"order_file": ("order.pdf", content, "application/pdf")})  # fmt: skip


def test_designate_and_approve_through_the_api(stack):
    head = token_of(stack, "head1")
    submitted = designate(stack, head)
    assert submitted.status_code == 201, submitted.text
    request_id = submitted.json()["id"]
    assert submitted.json()["status"] == "pending"
    order = call(stack, head, "GET", f"/designations/{request_id}/order")
    assert order.content == PDF
    assert (
        call(stack, head, "POST", f"/designations/{request_id}/approve", json={}).status_code == 403
    )

    treasury = token_of(stack, "treasury1")
    pending = call(stack, treasury, "GET", "/designations", params={"status": "pending"}).json()
    assert [d["id"] for d in pending["designations"]] == [request_id]
    approved = call(stack, treasury, "POST", f"/designations/{request_id}/approve",
                    json={"reason": "ครบ"})  # fmt: skip
    assert approved.status_code == 200, approved.text
    assert approved.json()["assignment"]["role"] == "approve-1"
    again = call(stack, treasury, "POST", f"/designations/{request_id}/approve", json={})
    assert again.status_code == 409
    assert again.json()["error"] == "already_decided"
    roles = call(stack, treasury, "GET", "/users/malee/roles").json()
    assert roles["gfms_roles"] == [{"unit": UNIT, "role": "approve-1"}]

    conflicting = designate(stack, head, role="approve-2")
    assert conflicting.status_code == 409
    assert conflicting.json()["error"] == "separation_of_duties"


def test_bad_input_gets_a_json_error(stack):
    head = token_of(stack, "head1")
    disguised = designate(stack, head, content=b"GIF89a not a pdf")
    assert (disguised.status_code, disguised.json()["error"]) == (400, "invalid_order_file")
    be_year = designate(stack, head, valid_from="2569-11-01")
    assert (be_year.status_code, be_year.json()["error"]) == (400, "invalid_request")
    unknown = designate(stack, head, username="nobody")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_user")
    not_json = call(
        stack, head, "POST", "/units", data="{", headers={"Content-Type": "application/json"}
    )
    assert (not_json.status_code, not_json.json()["error"]) == (400, "invalid_request")
    assert (
        call(stack, head, "POST", "/designations/nope/reject", json={"reason": "x"}).status_code
        == 404
    )


def test_who_may_call(stack):
    assert call(stack, None, "GET", "/units").headers["WWW-Authenticate"] == 'Bearer realm="admin"'
    assert call(stack, "junk", "GET", "/units").status_code == 401
    without_scope = token_of(stack, "treasury1", scope="openid")
    refused = call(stack, without_scope, "GET", "/units")
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    nobody = token_of(stack, "somchai")
    assert call(stack, nobody, "GET", "/units").status_code == 403
    service = requests.post(f"{stack.idp}/token", timeout=10,
                            data={"grant_type": "client_credentials", "scope": "helpdesk"},
                            auth=("demo-service", "demo-service-secret"))  # fmt: skip
    service = service.json()["access_token"]
    assert call(stack, service, "GET", "/units").json() == {"units": []}
    assert designate(stack, service).status_code == 403  # systems never designate


def test_accounts_are_issued_through_the_api(stack):
    treasury = token_of(stack, "treasury1")
    issued = call(stack, treasury, "POST", "/users", json={
        "citizen_id": "3501100456783", "given_name_th": "นภา", "family_name_th": "ใหม่ทอง",
        "given_name_en": "Napa", "family_name_en": "Maithong", "unit_code": UNIT})  # fmt: skip
    assert issued.status_code == 201, issued.text
    assert issued.json()["username"] == "napa.m"
    assert len(issued.json()["temporary_password"]) == 19
    again = call(stack, treasury, "POST", "/users", json={
        "citizen_id": "3501100456783", "given_name_th": "นภา", "family_name_th": "ใหม่ทอง",
        "unit_code": UNIT})  # fmt: skip
    assert (again.status_code, again.json()["error"]) == (409, "citizen_id_taken")
    csv = ("citizen_id,given_name_th,family_name_th,given_name_en,family_name_en,unit_code\n"
           "1101700230074,สมชาย,ใจดี,Somchai,Jaidee,๐๐๐๐๐๐๐๐๐๑\n"
           "1101700230074,ซ้ำ,ซ้ำ,Dup,Licate,0000000001\n")  # fmt: skip
    report = call(stack, treasury, "POST", "/users/import", data=csv.encode(),
                  headers={"Content-Type": "text/csv"}).json()  # fmt: skip
    assert report["issued"] == 1
    assert report["rows"][1]["row"] == 3
    assert (report["rows"][1]["issued"], report["rows"][1]["error"]) == (False, "citizen_id_taken")


def test_admin_tokens_live_only_as_long_as_their_login(stack):
    login = Login.start(stack, "treasury1", scope="openid admin offline_access")
    pushed = stack.nexus.wait_for_push("phone-treasury1")
    stack.nexus.approve("phone-treasury1", pushed["id"], match_number(login.page.text))
    login.reload()
    tokens = login.tokens()
    assert "admin" not in tokens["scope"].split()  # never on an offline grant
    assert call(stack, tokens["access_token"], "GET", "/units").status_code == 403
    live = token_of(stack, "treasury1")
    assert call(stack, live, "GET", "/units").status_code == 200
    with stack.deps.sessions.begin() as session:
        session.execute(update(UserSession).values(ended_at=stack.deps.clock.now()))
    ended = call(stack, live, "GET", "/units")
    assert (ended.status_code, ended.json()["error"]) == (401, "invalid_token")


def test_a_password_only_token_must_step_up(client, deps):
    seed(deps, "admin")
    tokens = RP(client).login_and_exchange("admin", scope="openid admin")
    response = client.get(
        f"{API}/units", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert "acr/aal2-softtoken" in challenge


def test_the_document_names_every_route(app):
    document = app.test_client().get(f"{API}/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    # The whole application's routes, not only the blueprint's (see the unit test).
    assert routes_of(app) == documented(document)


def test_an_order_moves_a_person_from_approve_1_to_approve_2_through_the_api(stack):
    head, treasury = token_of(stack, "head1"), token_of(stack, "treasury1")
    first = designate(stack, head, valid_from="2026-01-01").json()["id"]
    call(stack, treasury, "POST", f"/designations/{first}/approve", json={"reason": "ครบ"})
    refused = designate(stack, head, kind="change", ends_role="approve-2", role="recorder")
    assert (refused.status_code, refused.json()["error"]) == (409, "nothing_to_end")
    submitted = designate(stack, head, kind="change", ends_role="approve-1", role="approve-2",
                          valid_from="2026-01-01")  # fmt: skip
    assert submitted.status_code == 201, submitted.text
    assert (submitted.json()["kind"], submitted.json()["ends_role"]) == ("change", "approve-1")
    approved = call(stack, treasury, "POST", f"/designations/{submitted.json()['id']}/approve",
                    json={"reason": "ตามคำสั่ง"}).json()  # fmt: skip
    assert approved["assignment"]["role"] == "approve-2"
    assert [a["role"] for a in approved["ended"]] == ["approve-1"]
    roles = call(stack, treasury, "GET", "/users/malee/roles").json()
    assert roles["gfms_roles"] == [{"unit": UNIT, "role": "approve-2"}]

    ended = designate(stack, head, kind="end", role="approve-2", valid_from="2026-01-01")
    done = call(stack, treasury, "POST", f"/designations/{ended.json()['id']}/approve",
                json={"reason": "ย้าย"}).json()  # fmt: skip
    assert done["assignment"] is None
    assert [a["role"] for a in done["ended"]] == ["approve-2"]
    unknown = designate(stack, head, kind="promote")
    assert (unknown.status_code, unknown.json()["error"]) == (400, "unknown_order_kind")
