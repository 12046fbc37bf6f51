// A FAPI 2.0 relying party on openid-client (v6), against the IdP under test: a signed
// request object (JAR) pushed (PAR), private_key_jwt, DPoP-bound tokens used at userinfo.
//   node fapi_client.mjs start ISSUER CLIENT_ID KEY_FILE REDIRECT_URI STATE_FILE
//     -> prints the authorization URL (with the pushed request_uri)
//   node fapi_client.mjs finish ISSUER CLIENT_ID KEY_FILE CALLBACK_URL STATE_FILE
//     -> prints the token response, the ID token's claims and userinfo as JSON
import { readFileSync, writeFileSync } from "node:fs";
import * as client from "openid-client";

const [mode, issuer, clientId, keyFile, url, stateFile] = process.argv.slice(2);
const jwk = JSON.parse(readFileSync(keyFile, "utf8"));
const key = await crypto.subtle.importKey(
  "jwk",
  { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d },
  { name: "ECDSA", namedCurve: "P-256" },
  false,
  ["sign"],
);
const config = await client.discovery(
  new URL(issuer),
  clientId,
  {},
  client.PrivateKeyJwt({ key, kid: jwk.kid }),
  // The IdP under test listens on loopback over plain HTTP.
  { execute: [client.allowInsecureRequests] },
);

if (mode === "start") {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const signed = await client.buildAuthorizationUrlWithJAR(
    config,
    {
      redirect_uri: url,
      scope: "openid profile",
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
      state,
      nonce,
    },
    { key, kid: jwk.kid },
  );
  // The signed request object travels by the back channel: pushed, not in the browser's URL.
  const authorizationUrl = await client.buildAuthorizationUrlWithPAR(config, signed.searchParams);
  writeFileSync(stateFile, JSON.stringify({ codeVerifier, state, nonce }));
  process.stdout.write(authorizationUrl.href);
} else {
  const { codeVerifier, state, nonce } = JSON.parse(readFileSync(stateFile, "utf8"));
  const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));
  const tokens = await client.authorizationCodeGrant(
    config,
    new URL(url),
    { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce },
    undefined,
    { DPoP },
  );
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });
  process.stdout.write(JSON.stringify({ tokens, claims, userinfo }));
}
