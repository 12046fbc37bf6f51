// The peer of `make bench`: node-oidc-provider with one confidential client.
//
//   node provider.mjs <port> <client_id> <client_secret>
//
// ES256 RFC 9068 JWT access tokens for the resource `urn:bench:jwt` (the default), opaque
// ones for `urn:bench:opaque` (node-oidc-provider introspects only opaque tokens), the
// in-memory adapter, nothing else enabled beyond what the workloads call.
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const [port, clientId, clientSecret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const JWT = 'urn:bench:jwt';
const OPAQUE = 'urn:bench:opaque';

const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const jwk = { ...signing.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
  }],
  jwks: { keys: [jwk] },
  scopes: ['helpdesk'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => JWT,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        audience: resource,
        scope: 'helpdesk',
        accessTokenTTL: 3600,
        accessTokenFormat: resource === OPAQUE ? 'opaque' : 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});

provider.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write(`peer listening on ${issuer}\n`);
});
