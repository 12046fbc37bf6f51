"""Demo data (the accounts and clients docs/demo.md lists) and the all-in-one demo launcher
behind ``make demo``."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.service import get_user_by_username
from idp.audit.service import NO_CONTEXT
from idp.deps import Deps
from idp.oidc.clients import NewClient
from idp.oidc.clients import apply_profile
from idp.oidc.clients import with_ciba_poll
from idp.roles.assignments import held_roles
from idp.roles.authority import SYSTEM
from idp.roles.authority import grant_admin_role
from idp.roles.designations import assign_directly
from idp.roles.models import AdminRole
from idp.roles.models import Role
from idp.roles.models import Unit
from idp.roles.periods import thai_date
from idp.roles.units import create_unit
from idp.settings import Settings

DEMO_PASSWORD = "Demo-Pass-2025!"
DEMO_UNIT = "0000000001"
ROLES = "role:recorder role:approve-1 role:approve-2"
PORTAL_SECRET = "gfms-portal-demo-secret-not-for-production"
FAPI_CLIENT_ID = "demo-fapi"
FAPI_KEY_FILE = "demo-fapi.private.jwk.json"
PORTAL_CLIENT_ID = "gfms-portal"
# The portal's private key (private_key_jwt), read by the portal (PORTAL_CLIENT_KEY_FILE).
PORTAL_KEY_FILE = "gfms-portal.private.jwk.json"


@dataclass(frozen=True)
class DemoUser:
    username: str
    citizen_id: str
    given_name_th: str
    family_name_th: str
    given_name_en: str
    family_name_en: str
    what: str
    temporary: bool = False
    role: Role | None = None  # in the demo unit
    admin: AdminRole | None = None


DEMO_USERS = (
    DemoUser(
        "somchai",
        "1101700230074",
        "สมชาย",
        "ใจดี",
        "Somchai",
        "Jaidee",
        "recorder",
        role=Role.RECORDER,
    ),
    DemoUser(
        "malee", "3100601234565", "มาลี", "ศรีสุข", "Malee", "Srisuk", "approve-1", role=Role.APPROVE_1
    ),
    DemoUser(
        "prasert",
        "1409900123454",
        "ประเสริฐ",
        "วงศ์ไทย",
        "Prasert",
        "Wongthai",
        "approve-2",
        role=Role.APPROVE_2,
    ),
    DemoUser(
        "wichai",
        "1101700456781",
        "วิชัย",
        "มีสิทธิ์",
        "Wichai",
        "Meesit",
        "civil servant of the unit, no GFMS role: submits and signs his own claims",
    ),
    DemoUser(
        "suda",
        "1560100234562",
        "สุดา",
        "รักงาน",
        "Suda",
        "Rakngan",
        "recorder, and approve-1 as malee's substitute",
        role=Role.RECORDER,
    ),
    DemoUser(
        "newuser",
        "3501100456783",
        "นภา",
        "ใหม่ทอง",
        "Napa",
        "Maithong",
        "issued a password, not yet registered",
        temporary=True,
    ),
    DemoUser(
        "helpdesk1",
        "1700800123494",
        "วิไล",
        "ช่วยเหลือ",
        "Wilai",
        "Chuailuea",
        "helpdesk",
        admin=AdminRole.HELPDESK,
    ),
    DemoUser(
        "head1",
        "3102100678900",
        "สมศักดิ์",
        "หัวหน้า",
        "Somsak",
        "Huana",
        "head of unit",
        admin=AdminRole.HEAD_OF_UNIT,
    ),
    DemoUser(
        "admin",
        "1103700088121",
        "อรุณ",
        "ผู้ดูแล",
        "Arun",
        "Phudulae",
        "CGD administrator",
        admin=AdminRole.CGD_ADMIN,
    ),
    DemoUser(
        "auditor1",
        "3560400222191",
        "ปราณี",
        "ตรวจสอบ",
        "Pranee",
        "Truatsop",
        "auditor",
        admin=AdminRole.AUDITOR,
    ),
    DemoUser(
        "treasury1",
        "1100400765435",
        "ธนา",
        "คลังจังหวัด",
        "Thana",
        "Khlangchangwat",
        "treasury administrator (the demo unit's province)",
        admin=AdminRole.TREASURY_ADMIN,
    ),
)

# Substitute designations (ผู้ปฏิบัติงานแทน) in the demo unit: (who, role, for whom). suda
# keys requests in and approves withdrawals for malee: the portal refuses her the approval of a
# claim she signed herself (one person gives at most one of a document's signatures).
DEMO_SUBSTITUTES = (("suda", Role.APPROVE_1, "malee"),)

# The demo's disbursement units: the one the demo people work in, and one in another province
# (a head of unit or treasury office of the first has no say there).
DEMO_UNITS = (
    (
        "0000000001",
        "หน่วยเบิกจ่ายทดลอง กรมบัญชีกลาง",
        "Demo disbursement unit, CGD",
        "นนทบุรี",
        "สำนักงานคลังจังหวัดนนทบุรี",
    ),
    (
        "0000000002",
        "หน่วยเบิกจ่ายทดลอง จังหวัดเชียงใหม่",
        "Demo disbursement unit, Chiang Mai",
        "เชียงใหม่",
        "สำนักงานคลังจังหวัดเชียงใหม่",
    ),
)


def seed(db: Session, deps: Deps) -> list[str]:
    """Create what is missing of the demo users and clients; return lines to print."""
    now = deps.clock.now()
    settings = deps.settings
    lines = []
    for person in DEMO_USERS:
        if get_user_by_username(db, person.username) is not None:
            continue
        deps.accounts.create_user(
            db,
            username=person.username,
            password=DEMO_PASSWORD,
            now=now,
            temporary=person.temporary,
            citizen_id=person.citizen_id,
            given_name_th=person.given_name_th,
            family_name_th=person.family_name_th,
            given_name_en=person.given_name_en,
            family_name_en=person.family_name_en,
            actor="demo-seed",
        )
        lines.append(f"user {person.username}: {person.what}")
    lines += _seed_roles(db, deps)
    key_file = instance_dir(settings) / FAPI_KEY_FILE
    fapi_key = demo_fapi_key(key_file)
    portal_key_file = instance_dir(settings) / PORTAL_KEY_FILE
    portal_key = demo_client_key(portal_key_file, PORTAL_CLIENT_ID)
    for client in demo_clients(
        fapi_public_jwk=fapi_key.as_dict(private=False),
        portal_public_jwk=portal_key.as_dict(private=False),
    ):
        deps.registrations.register(db, NewClient(**client), now=now, actor="demo-seed")
        lines.append(f"client {client['client_id']}")
    lines.append(f"{FAPI_CLIENT_ID}'s private key: {key_file}")
    lines.append(f"{PORTAL_CLIENT_ID}'s private key: {portal_key_file}")
    return lines


def instance_dir(settings: Settings) -> Path:
    """The demo's instance folder: where its embedded database lives (``instance/`` by
    default), or ``instance/`` under the working directory when the database is elsewhere."""
    prefix = "sqlite:///"
    if settings.database_url.startswith(prefix) and settings.database_url != prefix:
        return Path(settings.database_url[len(prefix) :]).parent
    return Path("instance")


def demo_fapi_key(path: Path) -> ECKey:
    """demo-fapi's P-256 signing key: the one in ``path`` when it holds one, else a new one
    written there (for the demo's relying party, and for tests outside this repository)."""
    return demo_client_key(path, FAPI_CLIENT_ID)


def demo_client_key(path: Path, client_id: str) -> ECKey:
    """A demo client's P-256 signing key: the one in ``path`` when it holds one, else a new
    one written there (read by the client: demo-fapi's relying party, the GFMS portal)."""
    existing = _read_private_key(path)
    if existing is not None:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # a copy put there by hand: readable by its owner only
        return existing
    key = ECKey.generate_key(
        "P-256",
        parameters={"kid": f"{client_id}-{secrets.token_hex(4)}", "alg": "ES256", "use": "sig"},
        private=True,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    # Created readable by its owner only: written first and restricted later, the private
    # key would be readable by every local user in between (with the usual umask).
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(json.dumps(key.as_dict(private=True), indent=2) + "\n")
    try:
        # Atomic and refusing to replace: of two seeds at once, one key is kept, read by both.
        os.link(staged, path)
    except FileExistsError:
        pass
    finally:
        staged.unlink()
    return _read_private_key(path) or key


def _read_private_key(path: Path) -> ECKey | None:
    try:
        data = json.loads(path.read_text())
        key = ECKey.import_key(data)
    except (OSError, ValueError, JoseError):
        return None
    if key.curve_name != "P-256" or not key.is_private or not key.kid:
        return None
    return key


def _seed_roles(db: Session, deps: Deps) -> list[str]:
    """The demo units, the demo people's roles in the first, and the administrators."""
    now = deps.clock.now()
    lines = []
    for code, name_th, name_en, province, office in DEMO_UNITS:
        if db.get(Unit, code) is None:
            create_unit(
                db,
                SYSTEM,
                code=code,
                name_th=name_th,
                name_en=name_en,
                province=province,
                treasury_office=office,
                now=now,
                actor="demo-seed",
                audit=NO_CONTEXT,
            )
            lines.append(f"unit {code}: {name_en}")
    province = DEMO_UNITS[0][3]
    for person in DEMO_USERS:
        user = get_user_by_username(db, person.username)
        if user is None:
            continue
        if user.unit_code is None:
            user.unit_code = DEMO_UNIT
        if person.role and not held_roles(db, user.id, thai_date(now)):
            assign_directly(
                db,
                unit_code=DEMO_UNIT,
                user=user,
                role=person.role,
                valid_from=thai_date(now),
                now=now,
                actor="demo-seed",
                reason="demo seed",
                audit=NO_CONTEXT,
            )
        if person.admin:
            grant_admin_role(
                db,
                SYSTEM,
                user,
                person.admin,
                now=now,
                actor="demo-seed",
                audit=NO_CONTEXT,
                province=province,
                unit_code=DEMO_UNIT,
            )
    for username, role, absent_username in DEMO_SUBSTITUTES:
        user = get_user_by_username(db, username)
        absent = get_user_by_username(db, absent_username)
        if user is None or absent is None:
            continue
        if any(h.role == role for h in held_roles(db, user.id, thai_date(now))):
            continue
        assign_directly(
            db,
            unit_code=DEMO_UNIT,
            user=user,
            role=role,
            valid_from=thai_date(now),
            now=now,
            actor="demo-seed",
            reason="demo seed: substitute",
            audit=NO_CONTEXT,
            substitute_for=absent,
        )
        lines.append(f"{username}: {role} as {absent_username}'s substitute")
    return lines


def demo_clients(
    fapi_public_jwk: dict[str, Any] | None = None,
    portal_public_jwk: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The demo clients; demo-fapi and the GFMS portal too when their public keys are given."""
    clients: list[dict[str, Any]] = [
        {
            "client_id": "demo-public",
            "client_name": "Demo public client",
            "secret": None,
            "auth_methods": [],
            "redirect_uris": ["http://127.0.0.1:9999/callback"],
            "post_logout_redirect_uris": ["http://127.0.0.1:9999/logged-out"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": f"openid profile email offline_access {ROLES}",
        },
        {
            "client_id": "demo-confidential",
            "client_name": "Demo confidential client",
            "secret": "demo-confidential-secret",
            "auth_methods": ["client_secret_basic"],
            "redirect_uris": [
                "http://127.0.0.1:9999/callback",
                "http://127.0.0.1:9999/callback2",
            ],
            "post_logout_redirect_uris": ["http://127.0.0.1:9999/logged-out"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": f"openid profile email offline_access {ROLES} admin",
            "backchannel_logout_uri": "http://127.0.0.1:9998/backchannel-logout",
            "security_event_uri": "http://127.0.0.1:9998/security-events",
            "allow_weak_secret": True,
        },
        {
            "client_id": "demo-service",
            "client_name": "Demo service (ticketing integration)",
            "secret": "demo-service-secret",
            "auth_methods": ["client_secret_basic", "client_secret_post"],
            "redirect_uris": [],
            "post_logout_redirect_uris": [],
            "grant_types": ["client_credentials"],
            "scope": "helpdesk",
            "may_introspect": True,
            "allow_weak_secret": True,
        },
    ]
    if portal_public_jwk is not None:
        clients.insert(0, portal_client(portal_public_jwk, "http://127.0.0.1:8200"))
    if fapi_public_jwk is not None:
        clients.append(demo_fapi_client(fapi_public_jwk))
    return clients


def portal_client(public_jwk: dict[str, Any], url: str) -> dict[str, Any]:
    """The GFMS portal at ``url``: the FAPI 2.0 profile (every sign-in and approval pushed,
    private_key_jwt, DPoP-bound tokens) and CIBA poll mode (an approval sent to the phone from
    the document's page). The secret only fetches transaction evidence (``/evidence`` takes
    client_secret_basic alone); the OAuth endpoints refuse it."""
    return apply_profile(
        "fapi2",
        with_ciba_poll(
            {
                "client_id": PORTAL_CLIENT_ID,
                "client_name": "GFMS Portal",
                "secret": PORTAL_SECRET,
                "auth_methods": [],
                "redirect_uris": [f"{url}/auth/callback"],
                "post_logout_redirect_uris": [f"{url}/"],
                "grant_types": ["authorization_code"],
                "scope": f"openid profile email {ROLES}",
                "backchannel_logout_uri": f"{url}/auth/backchannel-logout",
                "security_event_uri": f"{url}/auth/security-events",
                "jwks": {"keys": [public_jwk]},
            }
        ),
    )


def demo_fapi_client(public_jwk: dict[str, Any]) -> dict[str, Any]:
    """demo-fapi: the FAPI 2.0 profile (pushed requests, private_key_jwt with ES256, DPoP),
    and CIBA in poll mode: an approval on the phone without a browser."""
    return apply_profile(
        "fapi2",
        with_ciba_poll(
            {
                "client_id": FAPI_CLIENT_ID,
                "client_name": "Demo FAPI 2.0 client",
                "secret": None,
                "auth_methods": [],
                "redirect_uris": ["http://127.0.0.1:9999/callback"],
                "post_logout_redirect_uris": ["http://127.0.0.1:9999/logged-out"],
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": "openid profile email offline_access",
                "jwks": {"keys": [public_jwk]},
            }
        ),
    )


# --- demo phones ----------------------------------------------------------------------------


def bind_demo_phones(deps: Deps, *, nexus_url: str) -> list[str]:
    """Bind phone-<username> in the mock Nexus for every registered demo user, through the
    real protocol (activation code, signed registration); return what was bound."""
    bound = []
    for person in DEMO_USERS:
        if person.temporary:
            continue  # newuser registers herself, through Paotang
        if bind_phone(deps, person.username, nexus_url=nexus_url):
            bound.append(f"phone-{person.username}")
    return bound


def bind_phone(deps: Deps, username: str, *, nexus_url: str) -> bool:
    """Bind phone-<username> as if its owner had registered already; False when the user is
    unknown or has a bound phone."""
    from idp.enrol.flow import EnrolmentState
    from idp.enrol.service import get_enrolment
    from idp.mfa.models import Device
    from idp.mfa.models import DeviceStatus

    with deps.sessions.begin() as db:
        user = get_user_by_username(db, username)
        if user is None or db.scalar(
            select(Device.id).where(Device.user_id == user.id, Device.status == DeviceStatus.ACTIVE)
        ):
            return False
        now = deps.clock.now()
        # These people registered before the demo starts: their proofing is the seed's.
        user.identity_proofed_at = now
        user.identity_evidence = {"provider": "demo-seed"}
        enrolment = get_enrolment(db, user, now=now)
        if enrolment.state == EnrolmentState.STARTED:
            enrolment.state = EnrolmentState.PROOFED
        code, _ = deps.binding.issue_activation_code(db, user, now=now, context=NO_CONTEXT, ttl=300)
    answer = requests.post(
        f"{nexus_url}/phones/phone-{username}/bind", json={"activation": code}, timeout=30
    )
    answer.raise_for_status()
    return True


# --- the launcher -------------------------------------------------------------------------

PROCESSES = (
    ("IdP", [sys.executable, "-m", "idp.cli", "run", "--port", "8000"], "http://127.0.0.1:8000"),
    (
        "Paotang",
        [sys.executable, "-m", "mock_paotang", "--port", "8101"],
        "http://127.0.0.1:8101",
    ),
    ("Nexus", [sys.executable, "-m", "mock_nexus", "--port", "8102"], "http://127.0.0.1:8102"),
    ("Portal", [sys.executable, "-m", "gfms_portal", "--port", "8200"], "http://127.0.0.1:8200"),
)


def run_demo() -> None:
    """Migrate and seed the embedded database, start every process, print where they are."""
    subprocess.run([sys.executable, "-m", "idp.cli", "db", "upgrade"], check=True)
    subprocess.run([sys.executable, "-m", "idp.cli", "demo", "seed"], check=True)
    # Quiet by default: the banner matters more than a log line per request.
    env = {**os.environ, "IDP_LOG_LEVEL": os.environ.get("IDP_LOG_LEVEL", "WARNING")}
    children = [subprocess.Popen(command, env=env) for _, command, _ in PROCESSES]

    def stop(*_args: object) -> None:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=10)
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, _, url in PROCESSES:
        _wait_until_up(f"{url}/healthz", name)
    subprocess.run([sys.executable, "-m", "idp.cli", "demo", "bind-phones"], check=True, env=env)
    _print_banner()
    while True:
        for child in children:
            if child.poll() is not None:
                print(f"a demo process exited with {child.returncode}; stopping", flush=True)
                stop()
        time.sleep(1)


def _wait_until_up(url: str, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback URL
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{name} did not start at {url}")


def _print_banner() -> None:
    lines = [
        "",
        "Soft Token IdP demo is running (Ctrl-C stops everything):",
        *(f"  {name:<9} {url}" for name, _, url in PROCESSES),
        "  discovery http://127.0.0.1:8000/.well-known/openid-configuration",
        "",
        f"Demo accounts (password {DEMO_PASSWORD}; unit {DEMO_UNIT}):",
        *(f"  {u.username:<10} {u.what}" for u in DEMO_USERS),
        "",
        "Mock Paotang knows 22 citizens (mock_paotang/citizens.csv); newuser is 3501100456783,"
        " laser code NP4-5678901-23. Register her at http://127.0.0.1:8000/enrol;"
        " her phone page is http://127.0.0.1:8102/phones/phone-newuser.",
        "The other users' phones are bound: http://127.0.0.1:8102/phones/phone-<username>.",
        "Every sign-in is confirmed on the phone: open the user's phone page, find the request,"
        " type the two-digit number the sign-in page shows and press Approve (or paste the"
        " page's QR link into the phone's Scan box, then Approve). When the relay is down,"
        " type the phone page's six-digit code into the sign-in page instead.",
        "",
        "GFMS portal: http://127.0.0.1:8200 — wichai submits and signs a claim, somchai (the"
        " finance officer) checks and signs it or sends it back, malee approves the withdrawal"
        " and prasert the payment, each confirming on the phone (or sent to it alone with"
        ' "ส่งไปยืนยันบนโทรศัพท์", CIBA); the document page exports the'
        " signed bundle, checked offline with `gfms-portal verify BUNDLE --jwks FILE` (FILE:"
        " http://127.0.0.1:8000/jwks/history.json)."
        " suda, malee's substitute, may approve a claim somchai checked but not her own claim.",
        "",
        "Demo clients: gfms-portal (FAPI 2.0 and CIBA poll, instance/gfms-portal.private.jwk.json),"
        " demo-public (PKCE), "
        "demo-confidential (secret demo-confidential-secret), "
        "demo-service (secret demo-service-secret), "
        "demo-fapi (FAPI 2.0: PAR, private_key_jwt with instance/demo-fapi.private.jwk.json, "
        "DPoP, CIBA poll)",
        "",
    ]
    print("\n".join(lines), flush=True)
