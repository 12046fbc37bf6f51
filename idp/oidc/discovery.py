"""OpenID Connect Discovery 1.0 §3 provider metadata: only what this OP really does."""

from __future__ import annotations

from typing import Any

from idp.accounts.flow import Assurance
from idp.accounts.flow import acr_uri
from idp.oidc.authorization_details import SUPPORTED_TYPES
from idp.oidc.ciba import discovery_metadata as ciba_metadata
from idp.oidc.claims import VERIFIABLE_CLAIMS
from idp.oidc.clients import CIBA_GRANT_TYPE
from idp.oidc.clients import CLIENT_SIGNING_ALGS
from idp.oidc.clients import KEY_METHODS
from idp.oidc.clients import SECRET_METHODS
from idp.oidc.clients import SUPPORTED_SCOPES
from idp.oidc.dpop import DPOP_SIGNING_ALGS
from idp.oidc.keys import SUPPORTED_ALGS


def build_discovery_document(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks.json",
        # Not registered metadata: every key that ever signed, with its period, for archives.
        "signing_key_history_uri": f"{issuer}/jwks/history.json",
        "end_session_endpoint": f"{issuer}/logout",
        "introspection_endpoint": f"{issuer}/introspect",
        "revocation_endpoint": f"{issuer}/revoke",
        # RFC 9126 §5; a client may be registered to push every request (its own metadata).
        "pushed_authorization_request_endpoint": f"{issuer}/par",
        "require_pushed_authorization_requests": False,
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            CIBA_GRANT_TYPE,
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "token_endpoint_auth_methods_supported": [*SECRET_METHODS, *KEY_METHODS, "none"],
        "token_endpoint_auth_signing_alg_values_supported": list(CLIENT_SIGNING_ALGS),
        "introspection_endpoint_auth_methods_supported": [*SECRET_METHODS, *KEY_METHODS],
        "introspection_endpoint_auth_signing_alg_values_supported": list(CLIENT_SIGNING_ALGS),
        "revocation_endpoint_auth_methods_supported": [*SECRET_METHODS, *KEY_METHODS, "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": list(CLIENT_SIGNING_ALGS),
        "code_challenge_methods_supported": ["S256"],
        # RFC 9449 §5.1: DPoP proofs at the token endpoint, userinfo and the admin API.
        "dpop_signing_alg_values_supported": list(DPOP_SIGNING_ALGS),
        "acr_values_supported": [acr_uri(issuer, level) for level in Assurance],
        # RFC 9396 §10: transaction confirmation on the phone.
        "authorization_details_types_supported": list(SUPPORTED_TYPES),
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "sid",
            "azp",
            "authorization_details",
            "txn",
            "at_hash",
            "name",
            "given_name",
            "family_name",
            "preferred_username",
            "locale",
            "email",
            "email_verified",
            "gfms_roles",
            "gfms_unit",
            "gfms_directory",
        ],
        "claims_parameter_supported": True,
        # OpenID Connect for Identity Assurance 1.0 §8.
        "verified_claims_supported": True,
        "trust_frameworks_supported": ["th_etda_digital_id"],
        "evidence_supported": ["document"],
        "documents_supported": ["idcard"],
        "claims_in_verified_claims_supported": list(VERIFIABLE_CLAIMS),
        # RFC 9101: signed request objects by value; request_uri only from our PAR endpoint
        # (no request object is fetched from the web), hence false.
        "request_parameter_supported": True,
        "request_uri_parameter_supported": False,
        "request_object_signing_alg_values_supported": list(CLIENT_SIGNING_ALGS),
        "require_signed_request_object": False,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": ["th-TH", "en"],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
        # CIBA Core 1.0 §4 (push mode left out; signed requests not offered, so no alg list).
        **ciba_metadata(issuer),
    }
