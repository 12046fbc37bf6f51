"""private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core §9) on Authlib's
``JWTBearerClientAssertion``: a short-lived JWT the client signs with one of its registered keys.

What Authlib leaves to us, and what we tighten:
- the keys: the client's registered JWK Set (client_keys.py), looked up again once when the
  ``kid`` is new to us;
- the algorithms: ES256 and PS256 only (FAPI 2.0 §5.4), so neither "none" nor an HMAC made
  with the client's secret passes;
- the time: our clock, a little leeway, and an ``exp`` at most ``MAX_LIFETIME`` ahead;
- the audience: our issuer, as the sole audience (FAPI 2.0 §5.3.2.1, draft-ietf-oauth-
  rfc7523bis). Endpoint URLs, which RFC 7523 §3 allowed, let a malicious authorization server
  the client also uses name our token endpoint as one of its own and replay here what the
  client signed for it ("audience injection");
- ``jti``: single use across every instance, through the shared ephemeral store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError

from idp.oidc.client_keys import InvalidClientKeysError
from idp.oidc.clients import CLIENT_SIGNING_ALGS
from idp.oidc.clients import RegisteredClient
from idp.store.secrets import sha256_hex

if TYPE_CHECKING:
    from idp.oidc.server import IdpAuthorizationServer

MAX_LIFETIME = 600  # seconds from now to exp; clients commonly use 60 to 300
LEEWAY = 30


class PrivateKeyJwt(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, server: IdpAuthorizationServer) -> None:
        super().__init__(validate_jti=True, leeway=LEEWAY)
        self.server = server

    def __call__(self, query_client: Any, request: Any) -> RegisteredClient | None:
        client = super().__call__(query_client, request)
        # RFC 7521 §4.2: a client_id beside the assertion must name the same client.
        form_client_id = request.form.get("client_id")
        if client is not None and form_client_id and form_client_id != client.client_id:
            raise InvalidClientError(description="'client_id' does not match the assertion.")
        return client  # type: ignore[no-any-return]

    def get_audiences(self) -> list[str]:
        return [self.server.deps.settings.issuer]

    def resolve_client_public_key(self, client: RegisteredClient) -> Any:
        return self.server.client_keys.resolver(client)

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        try:
            # SECURITY: the algorithm list is ours, never the token's header's choice alone.
            token = jwt.decode(assertion, resolve_key, algorithms=list(CLIENT_SIGNING_ALGS))
        except InvalidClientKeysError as exc:
            raise InvalidClientError(description="The client's keys are not available.") from exc
        except (JoseError, ValueError, UnicodeError) as exc:
            raise InvalidClientError(description="The client assertion is not valid.") from exc
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: Any) -> None:
        now = int(self.server.deps.clock.now().timestamp())
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=self.leeway,
            iss={"essential": True},
            sub={"essential": True},
            aud={"essential": True, "values": self.get_audiences()},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise InvalidClientError(description=f"Client assertion refused: {exc.error}.") from exc
        aud = claims["aud"]
        # The registry is content with our issuer among others: it must be the only one.
        if ([aud] if isinstance(aud, str) else aud) != self.get_audiences():
            raise InvalidClientError(description="The assertion's aud must be the issuer alone.")
        if claims["sub"] != claims["iss"]:
            raise InvalidClientError(description="The assertion's iss and sub differ.")
        if claims["exp"] - now > MAX_LIFETIME:
            raise InvalidClientError(description="The client assertion lives too long.")
        jti = claims["jti"]
        if not isinstance(jti, str) or not 8 <= len(jti) <= 256:
            raise InvalidClientError(description="Invalid 'jti' in the client assertion.")
        if not self.validate_jti(claims, jti):
            raise InvalidClientError(description="The client assertion was used before.")

    def validate_jti(self, claims: Any, jti: str) -> bool:
        deps = self.server.deps
        # Kept until the assertion expires (with the leeway): after that, exp refuses it.
        ttl = max(claims["exp"] - deps.clock.now().timestamp(), 0) + self.leeway + 1
        key = deps.keys.client_assertion_jti(sha256_hex(str(claims["iss"])), sha256_hex(jti))
        attempt = self.server.attempt_id().encode()
        if deps.store.set(key, attempt, ttl=ttl, only_if_new=True):
            return True
        # Marked already: by another request (a replay), or by this very one before the web
        # layer ran it again on a fresh database connection.
        return deps.store.get(key) == attempt
