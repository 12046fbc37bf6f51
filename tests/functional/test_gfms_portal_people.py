"""The portal as people read it (issue 18): people and units by name in the page's language,
never a ``sub``; file names as uploaded; what is signed shown as it is."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import select
from sqlalchemy import update

from idp.accounts.models import User
from idp.demo import DEMO_USERS
from idp.demo import bind_phone
from idp.demo import seed as seed_demo
from tests.functional.test_gfms_portal import CLAIMANT
from tests.functional.test_gfms_portal import checked
from tests.functional.test_gfms_portal import portal_with
from tests.functional.test_gfms_portal import sub_of
from tests.functional.test_gfms_portal import user
from tests.functional.test_role_tokens import assign
from tests.portal_stack import PortalStack
from tests.portal_stack import error_code
from tests.portal_stack import portal_stack
from tests.portal_stack import status_of
from tests.push_stack import push_stack

USERS = ("somchai", "malee", "prasert", CLAIMANT)
NAMES = {u.username: (f"{u.given_name_th} {u.family_name_th}",
                      f"{u.given_name_en} {u.family_name_en}")
         for u in DEMO_USERS}  # fmt: skip
UNIT_TH = "หน่วยทดลอง (0000000001)"


def named_as_in_the_demo(deps, *usernames: str) -> None:
    with deps.sessions.begin() as session:
        for demo in DEMO_USERS:
            if demo.username in usernames:
                session.execute(
                    update(User)
                    .where(User.username == demo.username)
                    .values(
                        given_name_th=demo.given_name_th,
                        family_name_th=demo.family_name_th,
                        given_name_en=demo.given_name_en,
                        family_name_en=demo.family_name_en,
                    )
                )


@pytest.fixture
def portal(settings, deps, tmp_path) -> Iterator[PortalStack]:
    with portal_with(settings, deps, tmp_path, USERS) as running:
        named_as_in_the_demo(running.stack.deps, *USERS)
        yield running


def assert_no_sub(portal: PortalStack, html: str) -> None:
    for username in USERS:
        assert sub_of(portal, username) not in html, f"{username}'s sub is on the page"


def test_the_header_greets_by_name_in_the_pages_language(portal):
    somchai = user(portal, "somchai")
    text = somchai.page.text
    assert f'id="who">{NAMES["somchai"][0]}<' in text
    assert NAMES["somchai"][0] in text.split('id="welcome"')[1].split("</h1>")[0]
    assert UNIT_TH in text
    assert_no_sub(portal, text)
    english = somchai.go(f"{portal.url}/?lang=en").text
    assert f'id="who">{NAMES["somchai"][1]}<' in english
    assert "Test unit" not in english  # the unit has no English name: the Thai one stands
    assert UNIT_TH in english


def test_the_document_names_its_recorder_and_signers(portal):
    url = checked(portal)
    user(portal, "malee").approve(url, "approve-1")
    prasert = user(portal, "prasert")
    prasert.approve(url, "approve-2")
    text = prasert.page.text
    assert status_of(text) == "payment_approved"
    assert f'id="recorder">{NAMES[CLAIMANT][0]}<' in text
    for username in (CLAIMANT, "somchai", "malee", "prasert"):
        assert f'class="signer">{NAMES[username][0]}<' in text
    assert f'id="unit">{UNIT_TH}<' in text
    # Thai time with a full stop, the Buddhist-era year (not "10:59 น.").
    assert re.search(r'id="created-at">\d{1,2} \S+ 25\d\d \d\d\.\d\d น\.<', text)
    assert_no_sub(portal, text)
    english = prasert.go(f"{url}?lang=en").text
    assert f'id="recorder">{NAMES[CLAIMANT][1]}<' in english
    for username in (CLAIMANT, "somchai", "malee", "prasert"):
        assert f'class="signer">{NAMES[username][1]}<' in english
    assert_no_sub(portal, english)
    # The list pages and the form name units too.
    assert_no_sub(portal, prasert.go(f"{portal.url}/documents").text)


def test_userinfo_releases_the_directory_with_profile(portal):
    from gfms_portal.models import KnownUnit

    user(portal, "somchai")
    with portal.app.extensions["portal"].sessions() as db:
        unit = db.scalars(select(KnownUnit)).one()
    assert (unit.code, unit.name_th) == ("0000000001", "หน่วยทดลอง")


def test_the_person_acted_for_is_named(portal):
    deps = portal.stack.deps
    with deps.sessions() as session:
        malee_id = session.scalar(select(User.id).where(User.username == "malee"))
    assign(deps, "somchai", "approve-1", substitute_for=malee_id)
    text = user(portal, "somchai").page.text
    assert f"ปฏิบัติงานแทน {NAMES['malee'][0]}" in text
    assert_no_sub(portal, text)


def test_userinfo_without_profile_names_no_units(portal):
    from idp.oidc.claims import directory_claims

    with portal.stack.deps.sessions() as session:
        roles = [{"unit": "0000000001", "role": "recorder"}]
        assert directory_claims(session, "openid role:recorder", roles) == {}
        assert directory_claims(session, "openid profile", []) == {}
        named = directory_claims(session, "openid profile role:recorder", roles)
    assert named == {"gfms_directory": {"units": {"0000000001": {"name": "หน่วยทดลอง"}},
                                        "people": {}}}  # fmt: skip


RECEIPT = "ใบเสร็จรับเงิน.pdf"


def test_a_thai_file_name_is_kept_on_the_page_and_in_the_download(portal):
    from urllib.parse import unquote

    somchai = user(portal, "somchai")
    pdf = b"%PDF-1.4 hotel receipt\n"
    url = somchai.record(files={"files": (RECEIPT, pdf, "application/pdf")})
    text = somchai.page.text
    assert f">{RECEIPT}</a>" in text
    link = text.split(f">{RECEIPT}</a>")[0].rsplit('href="', 1)[1].split('"')[0]
    download = somchai.go(portal.url + link)
    assert download.content == pdf
    header = download.headers["Content-Disposition"]
    assert header.startswith('attachment; filename="attachment-')
    assert unquote(header.split("filename*=UTF-8''")[1]) == RECEIPT
    assert status_of(somchai.go(url).text) == "recorded"


def test_the_confirmation_page_and_the_phone_show_what_is_approved(portal):
    url = checked(portal, description="ค่าที่พักและค่ารถไฟ เชียงใหม่ 3 วัน")
    malee = user(portal, "malee")
    malee.start_approval(url, "approve-1")
    page = malee.page.text
    assert '<dd class="kind">ค่าใช้จ่ายในการเดินทางไปราชการ</dd>' in page
    assert '<dd class="description">ค่าที่พักและค่ารถไฟ เชียงใหม่ 3 วัน</dd>' in page
    pushed = portal.stack.nexus.wait_for_push(malee.phone)
    digest = pushed["authorization_details"][0]["document_sha256"]
    # The hash is there for the careful reader, folded away and wrapping, not as the text.
    assert f"<details><summary>{digest[:12]}…</summary><code>{digest}</code>" in page
    phone = requests.get(f"{portal.stack.nexus.url}/phones/{malee.phone}", timeout=10).text
    assert '<dd class="kind">ค่าใช้จ่ายในการเดินทางไปราชการ</dd>' in phone
    assert '<dd class="description">ค่าที่พักและค่ารถไฟ เชียงใหม่ 3 วัน</dd>' in phone
    assert f"<code>{digest}</code>" in phone
    malee.confirm_on_phone()
    assert status_of(malee.page.text) == "withdrawal_approved"


def test_a_long_description_is_shortened_for_the_phone_and_still_bound(portal):
    long = "ค่าเดินทาง " * 60
    url = checked(portal, description=long)
    malee = user(portal, "malee")
    malee.approve(url, "approve-1")
    assert status_of(malee.page.text) == "withdrawal_approved"


def test_the_edit_form_is_refused_once_the_claim_is_signed(portal):
    wichai = user(portal, CLAIMANT)
    url = wichai.record()
    assert 'id="document-form"' in wichai.go(f"{url}/edit").text
    # Neither its author nor its claimant: not even the form (the finance officer).
    somchai = user(portal, "somchai")
    refused = somchai.go(f"{url}/edit")
    assert refused.status_code == 403
    assert 'id="document-form"' not in refused.text
    wichai.approve(url, "claim")
    # The claimant follows an old link (or types the URL): no form that invites a change.
    closed = wichai.go(f"{url}/edit")
    assert closed.status_code == 409
    assert error_code(closed.text) == "editing_closed"
    assert 'id="document-form"' not in closed.text
    assert 'id="edit"' not in wichai.go(url).text


def service_token(portal: PortalStack) -> str:
    answer = requests.post(f"{portal.stack.idp}/token", timeout=10,
                           data={"grant_type": "client_credentials", "scope": "helpdesk"},
                           auth=("demo-service", "demo-service-secret"))  # fmt: skip
    return str(answer.json()["access_token"])


def suspend_phone(portal: PortalStack, username: str, **body: str) -> requests.Response:
    return requests.post(
        f"{portal.stack.idp}/api/admin/v1/users/{username}/suspend-phone", timeout=10,
        json={"reason": "lost", **body},
        headers={"Authorization": f"Bearer {service_token(portal)}"},
    )  # fmt: skip


def test_a_session_ended_by_a_suspension_says_so_on_the_sign_in_page(portal):
    malee = user(portal, "malee")
    somchai = user(portal, "somchai")
    assert suspend_phone(portal, "malee").status_code == 201
    portal.notices()
    page = malee.go(f"{portal.url}/documents")
    assert page.status_code == 401
    assert 'data-notice="err:session:suspended"' in page.text
    assert "Soft Token ของท่านถูกระงับ" in page.text
    # No more than she may know: not who, not why, no case.
    for word in ("lost", "หาย", "helpdesk1", "demo-service", "letter"):
        assert word not in page.text.split('id="notice"')[1].split("</p>")[0]
    english = malee.go(f"{portal.url}/?lang=en").text
    assert "your Soft Token was suspended" in english
    # Others' sessions carry on; a browser without a session is only asked to sign in.
    assert somchai.go(f"{portal.url}/documents").status_code == 200
    stranger = requests.get(f"{portal.url}/documents", timeout=10)
    assert 'data-notice="err:session"' in stranger.text


def test_the_demo_substitute_cannot_approve_her_own_claim(settings, deps, tmp_path):
    # The demo's own data: suda keys requests in, and approves withdrawals as malee's
    # substitute; wichai claims, somchai checks.
    with push_stack(settings, deps, tmp_path, users=()) as stack:
        with stack.deps.sessions.begin() as session:
            seed_demo(session, stack.deps)
        for username in ("somchai", "suda", CLAIMANT):
            assert bind_phone(stack.deps, username, nexus_url=stack.nexus.url)
        with portal_stack(stack, tmp_path) as running:
            suda = user(running, "suda")
            assert f"ปฏิบัติงานแทน {NAMES['malee'][0]}" in suda.page.text
            somchai = user(running, "somchai")
            own = suda.record()
            suda.approve(own, "claim")
            somchai.approve(own, "check")
            assert status_of(somchai.page.text) == "checked"
            assert 'id="approve-1"' not in suda.go(own).text
            suda.start_approval(own, "approve-1")
            assert error_code(suda.page.text) == "separation_of_duties"
            wichai = user(running, CLAIMANT)
            theirs = wichai.record()
            wichai.approve(theirs, "claim")
            somchai.approve(theirs, "check")
            suda.approve(theirs, "approve-1")
            assert status_of(suda.page.text) == "withdrawal_approved"
