"""Plain functions that put what a test needs into the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.accounts.passwords import hash_password
from idp.demo import demo_clients
from idp.deps import Deps
from idp.oidc.clients import NewClient

PASSWORD = "Demo-Pass-2025!"
_hashes: dict[str, str] = {}


def password_hash(password: str) -> str:
    # argon2id costs ~40 ms by design; hash each test password once per run.
    if password not in _hashes:
        _hashes[password] = hash_password(password)
    return _hashes[password]


def make_user(
    session: Session,
    deps: Deps,
    username: str = "somchai",
    *,
    password: str = PASSWORD,
    temporary: bool = False,
    citizen_id: str | None = None,
    **fields: Any,
) -> User:
    now = deps.clock.now()
    if citizen_id is not None:
        fields["citizen_id_encrypted"] = deps.cipher.encrypt(
            citizen_id.encode(), context="users.citizen_id"
        )
        fields["citizen_id_hash"] = deps.cipher.keyed_hash(citizen_id, purpose="citizen_id")
    user = User(
        username=username,
        password_hash=password_hash(password),
        must_change_password=temporary,
        password_change_reason="issued" if temporary else None,
        password_changed_at=None if temporary else now,
        temporary_password_expires_at=now + timedelta(days=7) if temporary else None,
        given_name_th=fields.pop("given_name_th", "สมชาย"),
        family_name_th=fields.pop("family_name_th", "ใจดี"),
        given_name_en=fields.pop("given_name_en", "Somchai"),
        family_name_en=fields.pop("family_name_en", "Jaidee"),
        created_at=now,
        **fields,
    )
    session.add(user)
    session.flush()
    return user


def seed(deps: Deps, *usernames: str, temporary: tuple[str, ...] = ()) -> None:
    """The demo clients (as docs/demo.md lists them) and the given users, committed."""
    with deps.sessions.begin() as session:
        # The portal's key: its registration needs one (fapi2); no test here signs with it.
        portal_key = ECKey.generate_key("P-256", parameters={"kid": "gfms-portal-test"},
                                        private=True)  # fmt: skip
        for client in demo_clients(portal_public_jwk=portal_key.as_dict(private=False)):
            deps.registrations.register(session, NewClient(**client), now=deps.clock.now())
        for username in usernames:
            make_user(session, deps, username, temporary=username in temporary)
    deps.clients.invalidate()


def add_client(deps: Deps, client_id: str, **metadata: Any) -> None:
    defaults: dict[str, Any] = {
        "client_name": client_id,
        "secret": "s" * 40,
        "auth_methods": ["client_secret_basic"],
        "redirect_uris": ["http://127.0.0.1:9999/callback"],
        "post_logout_redirect_uris": [],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile email offline_access",
    }
    defaults.update(metadata)
    with deps.sessions.begin() as session:
        new = NewClient(client_id=client_id, **defaults)
        deps.registrations.register(session, new, now=deps.clock.now())
    deps.clients.invalidate()
