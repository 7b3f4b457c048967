// An OpenID Connect provider for the integration tests: oidc-provider (npm)
// issuing JWT access tokens for the client_credentials grant, plus two
// test-only hooks the auth-oidc test needs.
//
//   node oidc.mjs keys OUT.json LABEL [OUT.json LABEL ...]
//                                       writes key sets: an RSA 2048 key (kid
//                                       LABEL-rsa, RS256) and an EC P-256 key
//                                       (kid LABEL-ec, ES256), private JWKs
//   node oidc.mjs serve CONFIG.json     serves until SIGTERM; prints "ready"
//
// CONFIG: { "port": 1234, "keys": ["a.json", ...] (merged, the first key of
// an alg signs), "hits": "jwks-hits.log" (one line appended per GET /jwks),
// "clients": [{ "client_id", "client_secret", "claims": {...} }] (claims are
// added to every access token of that client), "resources": { "urn:x":
// { "audience", "alg", "ttl" } } (resource indicators: each one a resource
// server with its own audience, signing alg and token lifetime) }.
//
// Test hooks (loopback only, the provider binds 127.0.0.1):
//   POST /test/mint {header, claims, kid?, alg?}  a compact JWS signed with
//     the provider's key `kid`, or with a throwaway key of `alg` when kid is
//     not one of the provider's (for unknown-kid tokens); header is merged.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

function makeKeys(out, label) {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const keys = [
    { ...rsa.export({ format: 'jwk' }), kid: `${label}-rsa`, alg: 'RS256', use: 'sig' },
    { ...ec.export({ format: 'jwk' }), kid: `${label}-ec`, alg: 'ES256', use: 'sig' },
  ];
  fs.writeFileSync(out, JSON.stringify({ keys }, null, 1));
}

const b64u = (buf) => Buffer.from(buf).toString('base64url');

// RS256 | PS256 | ES256 | ES384 with node:crypto (no JOSE library needed).
function sign(alg, key, input) {
  const hash = { RS256: 'sha256', PS256: 'sha256', ES256: 'sha256', ES384: 'sha384' }[alg];
  if (!hash) throw new Error(`cannot sign ${alg}`);
  const opts = { key };
  if (alg.startsWith('ES')) opts.dsaEncoding = 'ieee-p1363';
  if (alg === 'PS256') Object.assign(opts, { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  return crypto.sign(hash, Buffer.from(input), opts);
}

const throwaway = {
  RS256: () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  PS256: () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
  ES256: () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  ES384: () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
};
const throwawayCache = {};

function mint(keys, body) {
  const jwk = keys.find((k) => k.kid === body.kid);
  const alg = body.alg || (jwk ? jwk.alg : 'RS256');
  const key = jwk ? crypto.createPrivateKey({ key: jwk, format: 'jwk' })
    : (throwawayCache[alg] ||= throwaway[alg]());
  const header = { alg, typ: 'at+jwt', kid: body.kid, ...(body.header || {}) };
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(body.claims || {}))}`;
  return `${input}.${b64u(sign(alg, key, input))}`;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString()));
    req.on('error', reject);
  });
}

function providerFor(cfg, issuer, keys) {
  const claims = Object.fromEntries(cfg.clients.map((c) => [c.client_id, c.claims || {}]));
  const resources = cfg.resources;
  return new Provider(issuer, {
    clients: cfg.clients.map((c) => ({
      client_id: c.client_id, client_secret: c.client_secret, grant_types: ['client_credentials'],
      redirect_uris: [], response_types: [], scope: 'api',
    })),
    jwks: { keys },
    cookies: { keys: ['test-only-cookie-key'] },
    scopes: ['api'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => Object.keys(resources)[0],
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          const r = resources[resource];
          if (!r) throw new errors.InvalidTarget();
          return { scope: 'api', audience: r.audience, accessTokenTTL: r.ttl || 600,
                   accessTokenFormat: 'jwt', jwt: { sign: { alg: r.alg || 'RS256' } } };
        },
      },
    },
    extraTokenClaims: (ctx, token) => claims[token.clientId],
  });
}

function serve(cfgPath) {
  const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  const keys = cfg.keys.flatMap((f) => JSON.parse(fs.readFileSync(f, 'utf8')).keys);
  const issuer = cfg.issuer || `http://127.0.0.1:${cfg.port}`;
  const provider = providerFor(cfg, issuer, keys);
  const handle = provider.callback();
  const server = http.createServer(async (req, res) => {
    const path = req.url.split('?')[0];
    if (req.method === 'POST' && path === '/test/mint') {
      try {
        const token = mint(keys, JSON.parse(await readBody(req)));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ token }));
      } catch (e) {
        res.writeHead(400);
        res.end(String(e));
      }
      return;
    }
    if (path === '/jwks' && cfg.hits) fs.appendFileSync(cfg.hits, `${Date.now()}\n`);
    handle(req, res);
  });
  server.listen(cfg.port, '127.0.0.1', () => console.log('ready'));
  process.on('SIGTERM', () => process.exit(0));
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'keys') for (let i = 0; i + 1 < args.length; i += 2) makeKeys(args[i], args[i + 1]);
else if (cmd === 'serve') serve(args[0]);
else {
  console.error('usage: oidc.mjs keys OUT.json LABEL [...] | serve CONFIG.json');
  process.exit(2);
}
