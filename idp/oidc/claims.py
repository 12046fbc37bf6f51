"""User claims by scope (OIDC Core §5.4), for userinfo and ID tokens."""

from __future__ import annotations

from typing import Any

from idp.accounts.models import User


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
    if "email" in scopes and user.email:
        claims["email"] = user.email
        # Addresses are entered by administrators, never verified by a message from us.
        claims["email_verified"] = False
    return claims
