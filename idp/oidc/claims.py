"""User claims by scope (OIDC Core §5.4), for userinfo and ID tokens."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.enrol.service import names_agree
from idp.roles.models import Unit

# OpenID Connect for Identity Assurance 1.0: names as the account holds them, once proofed.
VERIFIABLE_CLAIMS = ("given_name", "family_name", "given_name#en", "family_name#en")


def requested_verified_claims(
    user: User, claims_request: dict[str, Any] | None, target: str
) -> dict[str, Any]:
    """``verified_claims`` for ``target`` ("id_token" or "userinfo") when the client asked
    for them (OIDC Core §5.5) and the user's identity was proofed; otherwise nothing.

    ``acr`` stays about how the user authenticated; how the user was proofed is here.
    """
    request = (claims_request or {}).get(target, {}).get("verified_claims")
    evidence = user.identity_evidence or {}
    if request is None or "trust_framework" not in evidence or user.identity_proofed_at is None:
        return {}
    account = {
        "given_name": user.given_name_th,
        "family_name": user.family_name_th,
        "given_name#en": user.given_name_en,
        "family_name#en": user.family_name_en,
    }
    # Only what Paotang vouched for, and only while the account still says the same.
    verified = evidence.get("verified_names") or {}
    available = {
        name: value
        for name, value in account.items()
        if value and names_agree(value, str(verified.get(name, "")))
    }
    asked = request.get("claims") if isinstance(request, dict) else None
    names = [n for n in VERIFIABLE_CLAIMS if not isinstance(asked, dict) or n in asked]
    return {
        "verified_claims": {
            "verification": {
                "trust_framework": evidence["trust_framework"],
                "assurance_level": evidence.get("ial"),
                "time": evidence.get("verified_at"),
                "evidence": [
                    {
                        "type": "document",
                        "check_details": [
                            {"check_method": m} for m in evidence.get("check_methods", [])
                        ],
                        "document_details": {"type": evidence.get("document_type", "idcard")},
                    }
                ],
            },
            "claims": {n: available[n] for n in names if n in available},
        }
    }


def user_claims(user: User, scope: str, *, in_id_token: bool = False) -> dict[str, Any]:
    """The claims ``scope`` releases about ``user``.

    OIDC Core §5.4: when an access token is issued, profile and email claims are fetched from
    userinfo, so the ID token carries only the subject (and what identifies the login).
    """
    scopes = set(scope.split())
    claims: dict[str, Any] = {"sub": user.sub}
    if in_id_token:
        return claims
    if "profile" in scopes:
        claims["preferred_username"] = user.username
        # OIDC Core §5.2: the Thai names untagged (the default language) and English ones
        # tagged, so a relying party picks what its page shows.
        claims["given_name"] = user.given_name_th
        claims["family_name"] = user.family_name_th
        claims["name"] = user.display_name("th")
        if user.given_name_en:
            claims["given_name#en"] = user.given_name_en
            claims["family_name#en"] = user.family_name_en
            claims["name#en"] = user.display_name("en")
        claims["locale"] = "th-TH"
        if user.unit_code:
            # The disbursement unit the account was issued for: a claimant's unit.
            claims["gfms_unit"] = user.unit_code
    if "email" in scopes and user.email:
        claims["email"] = user.email
        # Addresses are entered by administrators, never verified by a message from us.
        claims["email_verified"] = False
    return claims


def requested_id_token_claims(
    user: User, scope: str, claims_request: dict[str, Any] | None
) -> dict[str, Any]:
    """OIDC Core §5.5: the standard claims a client asks for in the ID token itself (so a
    signed name travels with a signature), released only under the scope that covers them.
    """
    wanted = (claims_request or {}).get("id_token") or {}
    available = user_claims(user, scope)
    return {name: available[name] for name in wanted if name in available and name != "sub"}


def directory_claims(db: Session, scope: str, gfms_roles: list[dict[str, str]]) -> dict[str, Any]:
    """``gfms_directory`` with ``profile``: the names of the units in ``gfms_roles`` and of the
    people acted for there, so a relying party shows people and units by name, never by
    code or ``sub`` alone (names tagged as in OIDC Core §5.2)."""
    if "profile" not in scope.split() or not gfms_roles:
        return {}
    codes = sorted({r["unit"] for r in gfms_roles if r.get("unit")})
    subs = sorted({r["substitute_for"] for r in gfms_roles if r.get("substitute_for")})
    units = list(db.scalars(select(Unit).where(Unit.code.in_(codes))))
    people = list(db.scalars(select(User).where(User.sub.in_(subs)))) if subs else []
    return {
        "gfms_directory": {
            "units": {u.code: _tagged(u.name_th, u.name_en) for u in units},
            "people": {p.sub: _tagged(p.display_name("th"), p.display_name("en")) for p in people},
        }
    }


def _tagged(thai: str, english: str) -> dict[str, str]:
    return {"name": thai, "name#en": english} if english else {"name": thai}
