"""CGD's channels (the Ministry's letter, ข้อ ๙) and the user's liability for an unreported
loss (ข้อ ๔) where people need them: login help, registration and the lost-phone report; the
registration period on the registration page. Values from settings, the letter's by default."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

from flask.testing import FlaskClient
from sqlalchemy import select

from idp import create_app
from idp.accounts.models import User
from idp.audit.service import NO_CONTEXT
from idp.deps import build_deps
from tests.factories import seed

LETTER = ("0 2032 2636", "@gfmiscc", "gfmiscc@gfmis.go.th", "กองระบบการคลังภาครัฐ")
LIABILITY = "จะต้องรับผิดชอบในความเสียหายที่เกิดขึ้น"


def browser(settings, deps, **changes: object) -> FlaskClient:
    """malee, signed in (her password alone: she may be registering, or her phone is gone)."""
    local = build_deps(settings.model_copy(update=changes), clock=deps.clock, store=deps.store,
                       engine=deps.engine)  # fmt: skip
    seed(local, "malee")
    with local.sessions.begin() as session:
        malee = session.scalar(select(User).where(User.username == "malee"))
        _, cookie = local.login_sessions.start(
            session,
            malee,
            acr=f"{settings.issuer}/acr/aal1-pwd",
            amr=["pwd"],
            now=deps.clock.now(),
            context=NO_CONTEXT,
        )
    client = create_app(deps=local, background=False).test_client()
    client.set_cookie("idp_auth", cookie, domain="localhost")
    return client


def section(html: str, element_id: str) -> str:
    return html.split(f'id="{element_id}"')[1].split("</div>")[0].split("</p>")[0]


def test_login_help_names_cgds_channels_and_the_liability(client):
    page = client.get("/signin?next=/account", follow_redirects=True)
    assert 'id="password"' in page.text
    channels = page.text.split('id="cgd-contact"')[1].split("</div>")[0]
    for channel in LETTER:
        assert channel in channels
    assert LIABILITY in section(page.text, "loss-liability")
    assert "๓ วันทำการ" in page.text or "3 วันทำการ" in page.text


def test_the_lost_phone_report_and_registration_show_them_too(settings, deps):
    client = browser(settings, deps)
    account = client.get("/account")
    assert LIABILITY in section(account.text, "loss-liability")
    assert "gfmiscc@gfmis.go.th" in account.text.split('id="cgd-contact"')[1]
    enrol = client.get("/enrol")
    assert enrol.status_code == 200
    assert LIABILITY in section(enrol.text, "loss-liability")
    assert "0 2032 2636" in enrol.text.split('id="cgd-contact"')[1]
    assert 'id="registration-period"' not in enrol.text  # no period set: none announced


def test_a_deployment_sets_its_own_channels_and_registration_period(settings, deps):
    client = browser(
        settings, deps, cgd_contact_phone="0 2127 7000", cgd_contact_line="@cgdhelp",
        cgd_contact_email="help@example.go.th", lost_phone_letter_days=5,
        registration_opens_at=datetime(2025, 2, 9, 17, 0, tzinfo=UTC),  # 10 Feb 2568, Bangkok
        registration_closes_at=datetime(2025, 4, 11, 16, 59, tzinfo=UTC),
    )  # fmt: skip
    enrol = client.get("/enrol")
    channels = enrol.text.split('id="cgd-contact"')[1].split("</div>")[0]
    assert "0 2127 7000" in channels
    assert "@cgdhelp" in channels
    assert "help@example.go.th" in channels
    assert "0 2032 2636" not in channels
    assert "ภายใน 5 วันทำการ" in section(enrol.text, "loss-liability")
    period = section(enrol.text, "registration-period")
    assert "10 ก.พ. 2568 – 11 เม.ย. 2568" in period
