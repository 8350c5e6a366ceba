// A real OpenID provider (panva's oidc-provider, OpenID Certified) for Samsyn's identity
// tests, over HTTPS on 127.0.0.1, configured by the JSON file named on the command line:
//
//   { "port": 0, "tls": { "cert", "key", "ca" }, "audience", "algorithms": ["RS256", ...],
//     "clients": [{ "client_id", "client_secret", "alg", "bound", "ttl", "audience" }],
//     "accounts": { "<username>": { <claims> } } | "accounts_file": "<path>",
//     "web_client": { "client_id", "client_secret" } }
//
// Signing keys are generated at start (one per algorithm, fresh key ids), so restarting it
// on the same port is a key rotation. Access tokens are JWTs (RFC 9068) for `audience`,
// carrying the account's claims; a client with `"bound": true` gets tokens bound to the
// TLS client certificate it presented (RFC 8705, `cnf.x5t#S256`).
//
// Users get tokens without a browser through one test-only grant,
// `urn:samsyn:params:grant-type:test-user` with `username`: the provider mints the access
// token with its own models, formats and keys, exactly as after a login.
//
// A browser login (authorization code with PKCE) is possible when the configuration has a
// `"web_client": { "client_id", "client_secret" }`: the provider's own development login and
// consent pages (any username, which must be an account of `accounts`), ID tokens carrying
// the account's `name`, and OpenID Connect Dynamic Client Registration (RFC 7591) so that a
// test registers that client once it knows the gateway's redirect URI (its port is chosen
// at start); the registered client gets `client_id` and `client_secret` from the
// configuration.
//
// Prints one JSON line `{"issuer", "kids"}` once it listens; stops on SIGTERM.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';

import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const TEST_USER_GRANT = 'urn:samsyn:params:grant-type:test-user';
const RESOURCE = 'urn:samsyn:resource';

function signingKey(alg) {
  const { privateKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...privateKey.export({ format: 'jwk' }),
    alg,
    use: 'sig',
    kid: `${alg.toLowerCase()}-${crypto.randomUUID()}`,
  };
}

const keys = config.algorithms.map(signingKey);
// Accounts from the configuration, or read again at each use from `accounts_file` (a test
// that learns its people only after the provider has started).
const accounts = () => (config.accounts_file
  ? JSON.parse(fs.readFileSync(config.accounts_file, 'utf8'))
  : config.accounts);
const clientOf = Object.fromEntries(config.clients.map((c) => [c.client_id, c]));

const server = https.createServer({
  cert: fs.readFileSync(config.tls.cert),
  key: fs.readFileSync(config.tls.key),
  ca: fs.readFileSync(config.tls.ca),
  requestCert: true,
  rejectUnauthorized: false,
});

await new Promise((resolve) => { server.listen(config.port, '127.0.0.1', resolve); });
const issuer = `https://127.0.0.1:${server.address().port}`;

function resourceServer(clientId) {
  const client = clientOf[clientId] ?? {};
  return {
    scope: 'samsyn',
    audience: client.audience ?? config.audience,
    accessTokenFormat: 'jwt',
    accessTokenTTL: client.ttl ?? 600,
    jwt: { sign: { alg: client.alg ?? config.algorithms[0] } },
  };
}

function peerCertificate(ctx) {
  const peer = ctx.req.socket.getPeerCertificate?.();
  if (!peer || !peer.raw) {
    return undefined;
  }
  return new crypto.X509Certificate(peer.raw);
}

const web = config.web_client;

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials', TEST_USER_GRANT],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    tls_client_certificate_bound_access_tokens: !!c.bound,
  })),
  jwks: { keys },
  findAccount: (_ctx, id) => (accounts()[id] ? {
    accountId: id,
    claims: () => ({ sub: id, name: accounts()[id].name }),
  } : undefined),
  claims: { openid: ['sub', 'name'] },
  // The ID token carries `name` even though an access token is issued too.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: !!web },
    registration: {
      enabled: !!web,
      idFactory: () => web.client_id,
      secretFactory: () => web.client_secret,
    },
    clientCredentials: { enabled: true },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      getCertificate: peerCertificate,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, _indicator, client) => resourceServer(client.clientId),
    },
  },
  extraTokenClaims: (_ctx, token) => accounts()[token.accountId],
  scopes: ['samsyn'],
});

provider.registerGrantType(TEST_USER_GRANT, async (ctx) => {
  const { client, params } = ctx.oidc;
  const username = params.username;
  if (!username || !accounts()[username]) {
    throw new errors.InvalidGrant('unknown user');
  }
  const token = new provider.AccessToken({
    accountId: username,
    client,
    grantId: crypto.randomUUID(),
    gty: TEST_USER_GRANT,
    scope: 'samsyn',
  });
  token.resourceServer = new provider.ResourceServer(RESOURCE, resourceServer(client.clientId));
  if (client.tlsClientCertificateBoundAccessTokens) {
    const certificate = peerCertificate(ctx);
    if (!certificate) {
      throw new errors.InvalidGrant('mutual TLS client certificate not provided');
    }
    token.setThumbprint('x5t', certificate);
  }
  const value = await token.save();
  ctx.body = {
    access_token: value,
    token_type: 'Bearer',
    expires_in: token.expiration,
  };
}, ['username']);

server.on('request', provider.callback());
process.on('SIGTERM', () => { server.close(); process.exit(0); });
process.stdout.write(`${JSON.stringify({
  issuer,
  kids: Object.fromEntries(keys.map((k) => [k.alg, k.kid])),
})}\n`);
