"""Registration, step 2: identity proofing at Paotang (a real mock Paotang on a loopback
port), matched to the issued account, every outcome audited, nothing half-made."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from idp import create_app
from idp.accounts.models import User
from idp.audit.models import AuditEvent
from idp.deps import build_deps
from idp.enrol.models import Enrolment
from idp.enrol.service import expire_abandoned
from idp.oidc.claims import requested_verified_claims
from tests.factories import make_user
from tests.factories import seed
from tests.paotang_server import NAPA
from tests.paotang_server import SOMCHAI
from tests.paotang_server import Paotang
from tests.paotang_server import running_paotang
from tests.rp import RP
from tests.rp import form_fields

NAPA_NAMES = {
    "given_name_th": "นภา",
    "family_name_th": "ใหม่ทอง",
    "given_name_en": "Napa",
    "family_name_en": "Maithong",
}


@pytest.fixture(scope="module")
def paotang(tmp_path_factory) -> Iterator[Paotang]:
    with running_paotang(tmp_path_factory.mktemp("paotang")) as server:
        yield server


@pytest.fixture
def enrolling(settings, deps, paotang):
    """The IdP pointed at the running mock Paotang, newuser signed in on /enrol."""
    paotang.knobs(outage=False, latency_ms=0, force_failure=None)
    local_settings = settings.model_copy(update={"paotang_issuer": paotang.url})
    local = build_deps(local_settings, clock=deps.clock, store=deps.store, engine=deps.engine)
    seed(local)
    with local.sessions.begin() as session:
        make_user(session, local, "newuser", citizen_id="3501100456783", **NAPA_NAMES)
    client = create_app(deps=local, background=False).test_client()
    page = RP(client).follow(client.get("/enrol"))
    page = RP(client).submit(page, username="newuser", password="Demo-Pass-2025!")
    assert 'id="enrol-state"' in page.get_data(as_text=True)
    return client, local


def start(client) -> str:
    """Press "Verify with Paotang"; return where the browser is sent."""
    fields = form_fields(client.get("/enrol").get_data(as_text=True))
    response = client.post("/enrol/proofing", data={"csrf_token": fields["csrf_token"]})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return str(response.headers["Location"])


def come_back(client, callback_url: str):
    parts = urlsplit(callback_url)
    return client.get(f"{parts.path}?{parts.query}")


def proof(client, paotang: Paotang, **fields: str):
    answer = paotang.play_app(start(client), **{**NAPA, **fields})
    assert answer.status_code == 303
    return come_back(client, answer.headers["Location"])


def outcome(response) -> str | None:
    html = response.get_data(as_text=True)
    marker = 'data-outcome="'
    return html.split(marker, 1)[1].split('"', 1)[0] if marker in html else None


def state(client) -> str:
    html = client.get("/enrol").get_data(as_text=True)
    return html.split('data-state="', 1)[1].split('"', 1)[0]


def events(deps) -> list[str]:
    with deps.sessions() as session:
        return list(session.scalars(select(AuditEvent.event).order_by(AuditEvent.id)))


def newuser(deps) -> User:
    with deps.sessions() as session:
        return session.scalar(select(User).where(User.username == "newuser"))


def test_verified_identity_of_the_account_holder_is_recorded(enrolling, paotang):
    client, deps = enrolling
    response = proof(client, paotang)
    assert response.status_code == 303
    assert state(client) == "proofed"
    user = newuser(deps)
    assert user.identity_proofed_at is not None
    evidence = user.identity_evidence
    assert evidence["trust_framework"] == "th_etda_digital_id"
    assert evidence["ial"] == "2.3"
    assert evidence["check_methods"] == ["data", "bvr", "pvr"]
    # PDPA: the laser code and the face are never kept.
    assert "NP4" not in str(evidence)
    assert "enrol.identity_proofed" in events(deps)


def test_someone_elses_identity_stops_the_registration(enrolling, paotang):
    client, deps = enrolling
    response = proof(client, paotang, **SOMCHAI)
    assert response.status_code == 403
    assert outcome(response) == "identity_mismatch"
    assert state(client) == "rejected"
    assert newuser(deps).identity_proofed_at is None
    assert "enrol.identity_mismatch" in events(deps)
    fields = form_fields(client.get("/enrol").get_data(as_text=True))
    again = client.post("/enrol/proofing", data={"csrf_token": fields.get("csrf_token", "")})
    assert again.status_code in (400, 409)


def test_same_citizen_id_but_other_names_is_a_mismatch(settings, deps, paotang):
    paotang.knobs(outage=False, latency_ms=0, force_failure=None)
    local = build_deps(settings.model_copy(update={"paotang_issuer": paotang.url}),
                       clock=deps.clock, store=deps.store, engine=deps.engine)  # fmt: skip
    seed(local)
    with local.sessions.begin() as session:
        make_user(session, local, "newuser", citizen_id="3501100456783",
                  given_name_th="นภาพร", family_name_th="ใหม่ทอง",
                  given_name_en="Napaporn", family_name_en="Maithong")  # fmt: skip
    client = create_app(deps=local, background=False).test_client()
    RP(client).submit(RP(client).follow(client.get("/enrol")), username="newuser",
                      password="Demo-Pass-2025!")  # fmt: skip
    assert outcome(proof(client, paotang)) == "identity_mismatch"


def test_names_are_compared_leniently(enrolling, paotang):
    client, deps = enrolling
    with deps.sessions.begin() as session:
        user = session.scalar(select(User).where(User.username == "newuser"))
        user.given_name_en, user.family_name_en = " NAPA ", "maithong"
        user.given_name_th = "นภา (ไม่ตรง)"  # the Thai spelling differs; English agrees
    proof(client, paotang)
    assert state(client) == "proofed"


def test_refused_face_can_be_tried_again(enrolling, paotang):
    client, deps = enrolling
    tx = paotang.open_app(start(client))
    for _ in range(2):
        assert paotang.send(tx, **{**NAPA, "face": "mismatch"}).status_code == 200
    answer = paotang.send(tx, **{**NAPA, "face": "mismatch"})
    response = come_back(client, answer.headers["Location"])
    assert outcome(response) == "kyc_refused"
    assert state(client) == "proofing"
    assert "enrol.proofing_failed" in events(deps)
    proof(client, paotang)
    assert state(client) == "proofed"


def test_cancel_in_paotang(enrolling, paotang):
    client, _ = enrolling
    authorize = start(client)
    answer = paotang.play_app(authorize, **NAPA, action="cancel")
    assert outcome(come_back(client, answer.headers["Location"])) == "kyc_cancelled"


def test_paotang_down_at_the_token_exchange_changes_nothing(enrolling, paotang):
    client, deps = enrolling
    answer = paotang.play_app(start(client), **NAPA)
    paotang.knobs(outage=True)
    response = come_back(client, answer.headers["Location"])
    assert response.status_code == 503
    assert outcome(response) == "kyc_unavailable"
    assert newuser(deps).identity_proofed_at is None
    paotang.knobs(outage=False)
    proof(client, paotang)
    assert state(client) == "proofed"


def test_paotang_too_slow_is_unavailable(settings, deps, paotang, enrolling):
    client, local = enrolling
    slow = build_deps(
        local.settings.model_copy(update={"paotang_timeout": 0.3}),
        clock=deps.clock, store=deps.store, engine=deps.engine,
    )  # fmt: skip
    slow_client = create_app(deps=slow, background=False).test_client()
    for cookie in client._cookies.values():
        slow_client.set_cookie(cookie.key, cookie.value)
    answer = paotang.play_app(start(slow_client), **NAPA)
    paotang.knobs(latency_ms=1500)
    try:
        response = come_back(slow_client, answer.headers["Location"])
    finally:
        paotang.knobs(latency_ms=0)
    assert outcome(response) == "kyc_unavailable"


def test_an_answer_to_an_older_attempt_is_not_believed(enrolling, paotang):
    client, deps = enrolling
    first = paotang.play_app(start(client), **NAPA)
    second = start(client)  # the user started over: the first attempt's nonce is stale
    old_code = urlsplit(first.headers["Location"]).query.split("code=")[1].split("&")[0]
    new_state = urlsplit(second).query.split("state=")[1].split("&")[0]
    response = client.get(f"/enrol/proofing/callback?code={old_code}&state={new_state}")
    assert outcome(response) == "kyc_response_invalid"
    assert newuser(deps).identity_proofed_at is None


def test_a_replayed_answer_finds_no_attempt(enrolling, paotang):
    client, _ = enrolling
    answer = paotang.play_app(start(client), **NAPA)
    come_back(client, answer.headers["Location"])
    assert outcome(come_back(client, answer.headers["Location"])) == "proofing_state"


def test_an_answer_naming_another_issuer_is_refused(enrolling, paotang):
    client, _ = enrolling
    answer = paotang.play_app(start(client), **NAPA)
    mixed_up = answer.headers["Location"].replace("iss=", "iss=http%3A%2F%2Fevil.example&x=")
    assert outcome(come_back(client, mixed_up)) == "kyc_response_invalid"


def test_registration_window_is_enforced(enrolling, paotang):
    client, deps = enrolling
    closed = build_deps(
        deps.settings.model_copy(
            update={"registration_closes_at": deps.clock.now() - timedelta(days=1)}
        ),
        clock=deps.clock, store=deps.store, engine=deps.engine,
    )  # fmt: skip
    closed_client = create_app(deps=closed, background=False).test_client()
    for cookie in client._cookies.values():
        closed_client.set_cookie(cookie.key, cookie.value)
    page = closed_client.get("/enrol").get_data(as_text=True)
    assert 'id="start-proofing"' not in page
    fields = form_fields(client.get("/enrol").get_data(as_text=True))  # same browser session
    response = closed_client.post("/enrol/proofing", data={"csrf_token": fields["csrf_token"]})
    assert response.status_code == 403
    assert outcome(response) == "registration_closed"
    with deps.sessions() as session:
        assert session.scalar(select(Enrolment.state)) == "started"


def test_the_answer_needs_the_signed_in_browser(enrolling, paotang, app):
    client, _ = enrolling
    answer = paotang.play_app(start(client), **NAPA)
    stranger = app.test_client()
    parts = urlsplit(answer.headers["Location"])
    response = stranger.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 400
    assert "login_expired" in response.get_data(as_text=True)


def test_signing_in_for_registration_needs_a_login_first(client, deps):
    seed(deps, "newuser")
    response = client.get("/enrol")
    assert response.status_code == 303
    assert "/signin" in response.headers["Location"]


def test_paotang_down_before_leaving_keeps_the_user_here(enrolling, paotang):
    client, _deps = enrolling
    paotang.knobs(outage=True)
    fields = form_fields(client.get("/enrol").get_data(as_text=True))
    response = client.post("/enrol/proofing", data={"csrf_token": fields["csrf_token"]})
    assert response.status_code == 503
    assert outcome(response) == "kyc_unavailable"
    assert state(client) == "started"


def test_an_abandoned_attempt_is_forgotten_but_the_registration_resumes(enrolling, paotang):
    client, deps = enrolling
    authorize = start(client)
    answer = paotang.play_app(authorize, **NAPA)
    deps.clock.advance(1800)
    client.get("/enrol")  # the user is still around (the session's idle timer restarts)
    deps.clock.advance(1801)
    with deps.sessions.begin() as session:
        assert expire_abandoned(session, now=deps.clock.now(), proofing_ttl=timedelta(hours=1))
    assert outcome(come_back(client, answer.headers["Location"])) == "proofing_state"
    proof(client, paotang)
    assert state(client) == "proofed"


def test_an_answer_without_iss_is_refused(enrolling, paotang):
    client, _ = enrolling
    answer = paotang.play_app(start(client), **NAPA)
    location = answer.headers["Location"]
    parts = urlsplit(location)
    query = "&".join(p for p in parts.query.split("&") if not p.startswith("iss="))
    assert outcome(client.get(f"{parts.path}?{query}")) == "kyc_response_invalid"


def test_a_state_that_is_not_ascii_is_a_clear_error(enrolling, paotang):
    client, _ = enrolling
    start(client)
    response = client.get("/enrol/proofing/callback?state=%C3%A9&code=x")
    assert response.status_code == 400
    assert outcome(response) == "proofing_state"


def test_only_names_paotang_verified_are_released_as_verified(enrolling, paotang):
    client, deps = enrolling
    with deps.sessions.begin() as session:
        user = session.scalar(select(User).where(User.username == "newuser"))
        user.given_name_en = "Mallory"  # the English name differs; the Thai one matches
    proof(client, paotang)
    with deps.sessions() as session:
        user = session.scalar(select(User).where(User.username == "newuser"))
        released = requested_verified_claims(
            user, {"id_token": {"verified_claims": {"claims": None}}}, "id_token"
        )
    names = released["verified_claims"]["claims"]
    assert names == {"given_name": "นภา", "family_name": "ใหม่ทอง", "family_name#en": "Maithong"}


def test_a_callback_after_the_window_closed_changes_nothing(enrolling, paotang):
    client, deps = enrolling
    answer = paotang.play_app(start(client), **NAPA)
    closed = build_deps(
        deps.settings.model_copy(update={"registration_closes_at": deps.clock.now()}),
        clock=deps.clock, store=deps.store, engine=deps.engine,
    )  # fmt: skip
    closed_client = create_app(deps=closed, background=False).test_client()
    for cookie in client._cookies.values():
        closed_client.set_cookie(cookie.key, cookie.value)
    assert outcome(come_back(closed_client, answer.headers["Location"])) == "registration_closed"
    assert newuser(deps).identity_proofed_at is None
